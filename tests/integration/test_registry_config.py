"""Registry settings from daemon.json (and skiffd's flags): a Docker Hub mirror that `pull
busybox` uses (on loopback: Docker Hub itself is never contacted), insecure registries and
concurrency limits shown by `GET /info` as dockerd shows them."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests.integration import conftest
from tests.integration.test_registry import _registry, free_port, load_as


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = _registry(tmp_path_factory)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def mirror(registry, daemon, test_images):
    """The registry holds library/busybox, pushed by the suite's usual daemon."""
    load_as(daemon, test_images, f"{registry.host}/library/busybox:latest")
    lines = list(daemon.client().api.push(f"{registry.host}/library/busybox", "latest",
                                          stream=True, decode=True))
    assert not [l for l in lines if "error" in l], lines
    return registry


def _start(extra_args: list[str]):
    tmp = tempfile.mkdtemp(prefix="skiff-it-", dir="/var/tmp")
    d = conftest.Daemon(tmp)
    d.extra_args = list(extra_args)
    return d, tmp


def _stop(d, tmp):
    d.stop()
    pid = d.monitor_pid()
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    for parent in conftest.cgroup_dirs_under(d.cgroup_parent):
        for dirpath, _, _ in sorted(os.walk(parent), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
    cleanup = getattr(conftest, "netfixture_cleanup", None)
    if cleanup:
        cleanup(d)
    shutil.rmtree(tmp, ignore_errors=True)


def test_daemon_json_mirror_and_insecure_registries(mirror, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({
        "registry-mirrors": [dead, f"http://{mirror.host}"],
        "insecure-registries": ["registry.internal:5000", "10.99.0.0/16"],
        "max-concurrent-downloads": 2, "max-concurrent-uploads": 1}))
    d, tmp = _start(["--config-file", str(config)])
    try:
        d.start()
        sdk = d.client()
        info = sdk.info()["RegistryConfig"]
        assert info["Mirrors"] == [dead + "/", f"http://{mirror.host}/"]
        assert info["IndexConfigs"]["docker.io"]["Mirrors"] == info["Mirrors"]
        assert info["IndexConfigs"]["registry.internal:5000"]["Secure"] is False
        assert "10.99.0.0/16" in info["InsecureRegistryCIDRs"]
        # `busybox` is docker.io/library/busybox: served by the second mirror
        result = d.cli("pull", "busybox")
        assert result.returncode == 0, result.stderr.decode() + d.log()
        assert b"Status: Downloaded newer image for busybox:latest" in result.stdout
        assert sdk.images.get("busybox:latest").attrs["RootFS"]["Layers"]
    finally:
        _stop(d, tmp)


def test_flags_and_conflicts(mirror, tmp_path):
    d, tmp = _start(["--registry-mirror", f"http://{mirror.host}",
                     "--insecure-registry", "registry.internal:5000"])
    try:
        d.start()
        info = d.client().info()["RegistryConfig"]
        assert info["Mirrors"] == [f"http://{mirror.host}/"]
        assert "registry.internal:5000" in info["IndexConfigs"]
    finally:
        _stop(d, tmp)
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"registry-mirrors": [f"http://{mirror.host}"]}))
    for args, message in (
            (["--config-file", str(config), "--registry-mirror", "http://127.0.0.1:1"],
             b"specified both as a flag and in the configuration file: registry-mirrors"),
            (["--registry-mirror", "ftp://mirror"], b"must use either 'https://' or 'http://'"),
            (["--max-concurrent-downloads", "0"], b"invalid max-concurrent-downloads")):
        result = subprocess.run([sys.executable, "-m", "skiff.api.daemon", "--root",
                                 str(tmp_path / "r"), "--exec-root", str(tmp_path / "e"),
                                 "-H", f"unix://{tmp_path}/s.sock", *args],
                                capture_output=True, timeout=30,
                                env=dict(os.environ, PYTHONPATH=os.path.join(
                                    conftest.ROOT, "src")))
        assert result.returncode != 0 and message in result.stderr, result.stderr
