"""skiffd's set-up: systemd socket activation (-H fd://) and daemon.json."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

pytestmark = pytest.mark.root
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ping(path: str) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)   # the first connection starts skiffd: slow on a loaded machine
    s.connect(path)
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    s.close()
    return data


def own_network(tag: str) -> tuple[dict, list[str]]:
    """Its own bridge, subnet and nft table: a daemon on the defaults would take (and at its
    stop remove) those of the machine's own skiffd."""
    from tests.integration import netfixture

    net = netfixture.pick(tag)
    return net, netfixture.flags(net)


def stop(proc, tmp, net=None):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    pid_file = os.path.join(tmp, "run", "monitor.pid")
    if os.path.exists(pid_file):
        try:
            os.kill(int(open(pid_file).read()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
    if net is not None:
        from tests.integration import netfixture

        netfixture.cleanup(net)
    shutil.rmtree(tmp, ignore_errors=True)


def test_socket_activation_and_daemon_json():
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        pytest.skip("systemd-socket-activate is not installed")
    tmp = tempfile.mkdtemp(prefix="skiff-act-", dir="/var/tmp")
    sock = os.path.join(tmp, "api.sock")
    config = os.path.join(tmp, "daemon.json")
    with open(config, "w") as f:
        json.dump({"data-root": os.path.join(tmp, "root"),
                   "exec-root": os.path.join(tmp, "run"),
                   "log-opts": {"max-size": "1m"}}, f)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    net, net_flags = own_network(os.path.basename(tmp))
    proc = subprocess.Popen([activate, "-l", sock, sys.executable, "-m", "skiff.api.daemon",
                             "-H", "fd://", "--config-file", config, "--cgroup-parent",
                             "skiff-act-test", *net_flags], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "log"), "w"))
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.02)
        # The first connection is what starts skiffd: systemd-socket-activate waits for it.
        answer = ping(sock)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"OK"), answer
        assert os.path.isdir(os.path.join(tmp, "root", "containers"))  # data-root from the file
        assert os.path.exists(os.path.join(tmp, "run", "monitor.sock"))
    finally:
        stop(proc, tmp, net)


def test_bad_daemon_json_is_refused(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text('{"data-root": "/x", "no-such-option": 1}')
    result = subprocess.run([sys.executable, "-m", "skiff.api.daemon", "--config-file",
                             str(config)], capture_output=True, timeout=30,
                            env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
    assert result.returncode != 0
    assert b"no-such-option" in result.stderr


def test_sighup_reloads_log_defaults(tmp_path):
    tmp = tempfile.mkdtemp(prefix="skiff-hup-", dir="/var/tmp")
    config = os.path.join(tmp, "daemon.json")
    with open(config, "w") as f:
        json.dump({"log-opts": {"max-size": "1m"}}, f)
    sock = os.path.join(tmp, "run", "skiff.sock")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    net, net_flags = own_network(os.path.basename(tmp))
    proc = subprocess.Popen([sys.executable, "-m", "skiff.api.daemon", "-H", f"unix://{sock}",
                             "--root", os.path.join(tmp, "root"), "--exec-root",
                             os.path.join(tmp, "run"), "--config-file", config,
                             "--cgroup-parent", "skiff-hup-test", *net_flags], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "log"), "w"))
    try:
        import docker

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                ping(sock)
                break
            except OSError:
                time.sleep(0.05)
        client = docker.DockerClient(base_url=f"unix://{sock}", version="1.45")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_test_images.py"),
                        "--out", "/var/tmp/skiff-test-images"], check=True,
                       stdout=subprocess.DEVNULL)
        with open("/var/tmp/skiff-test-images/busybox.tar", "rb") as f:
            client.images.load(f.read())
        first = client.containers.create("busybox", "true")
        assert first.attrs["HostConfig"]["LogConfig"]["Config"] == {"max-size": "1m"}
        with open(config, "w") as f:
            json.dump({"log-opts": {"max-size": "5m", "max-file": "2"}}, f)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        second = client.containers.create("busybox", "true")
        assert second.attrs["HostConfig"]["LogConfig"]["Config"] == \
            {"max-size": "5m", "max-file": "2"}
        first.remove()
        second.remove()
    finally:
        stop(proc, tmp, net)
