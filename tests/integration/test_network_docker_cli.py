"""The real docker CLI driving skiffd's networking (skipped where no docker CLI is
installed): run on the default bridge, network create/ls/inspect/connect/rm, -p and port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid

import pytest

pytestmark = [pytest.mark.root, pytest.mark.needs_docker]


@pytest.fixture(scope="module")
def docker(daemon):
    path = shutil.which("docker")
    if not path:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host)
    env.pop("DOCKER_CONTEXT", None)

    def run(*args, **kw):
        result = subprocess.run([path, *args], env=env, capture_output=True, timeout=60, **kw)
        return result
    return run


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_run_on_the_default_bridge(docker):
    text = ok(docker("run", "--rm", "busybox", "cat", "/proc/net/dev"))
    assert "eth0:" in text


def test_network_lifecycle(docker):
    name = f"dnet-{uuid.uuid4().hex[:8]}"
    nid = ok(docker("network", "create", "--label", "x=y", name)).strip()
    try:
        listing = ok(docker("network", "ls", "--format", "{{.Name}} {{.Driver}}"))
        assert f"{name} bridge" in listing.splitlines()
        assert "bridge bridge" in listing.splitlines()
        assert "host host" in listing.splitlines() and "none null" in listing.splitlines()
        doc = json.loads(ok(docker("network", "inspect", name)))[0]
        assert doc["Id"] == nid and doc["Labels"] == {"x": "y"}
        cid = ok(docker("run", "-d", "--network", name, "--network-alias", "db", "busybox",
                        "httpd", "-f", "-p", "8000", "-h", "/etc")).strip()
        try:
            text = ok(docker("run", "--rm", "--network", name, "busybox", "sh", "-c",
                             "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 db 8000 "
                             "| tail -n 1"))
            assert text.strip() == cid[:12]
            ip = ok(docker("inspect", "-f",
                           "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % name,
                           cid)).strip()
            assert ip
            ok(docker("network", "disconnect", name, cid))
            ok(docker("network", "connect", "--alias", "db2", name, cid))
        finally:
            docker("rm", "-f", cid)
        result = docker("network", "create", name)
        assert result.returncode == 1
        assert f"network with name {name} already exists".encode() in result.stderr
    finally:
        ok(docker("network", "rm", name))


def test_publish_and_port(docker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cid = ok(docker("run", "-d", "-p", f"127.0.0.1:{port}:8000", "busybox", "httpd", "-f",
                    "-p", "8000", "-h", "/etc")).strip()
    try:
        assert ok(docker("port", cid)).strip() == f"8000/tcp -> 127.0.0.1:{port}"
        assert f"127.0.0.1:{port}->8000/tcp" in ok(docker("ps", "--filter", f"id={cid}"))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data.decode().strip().endswith(cid[:12])
    finally:
        docker("rm", "-f", cid)


def test_run_on_two_networks_at_once(docker):
    a, b = (f"dnet-{uuid.uuid4().hex[:8]}" for _ in range(2))
    ok(docker("network", "create", a))
    ok(docker("network", "create", b))
    try:
        text = ok(docker("run", "--rm", "--network", a, "--network", b, "busybox", "sh", "-c",
                         "ls /sys/class/net | sort | tr '\\n' ' '; ip route | grep -c default"))
        assert text.split() == ["eth0", "eth1", "lo", "1"]
    finally:
        docker("network", "rm", a, b)
