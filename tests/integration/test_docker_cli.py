"""The real docker CLI as a client of skiffd (skipped where no docker CLI is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess

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
        return subprocess.run([path, *args], env=env, capture_output=True, timeout=60, **kw)
    return run


def test_version_and_info(docker):
    version = docker("version")
    assert version.returncode == 0, version.stderr
    assert b"Server:" in version.stdout and b"skiff" in version.stdout
    info = docker("info")
    assert info.returncode == 0, info.stderr
    assert b"Server Version" in info.stdout


def test_run_rm_echo(docker):
    result = docker("run", "--rm", "busybox", "echo", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello\n"


def test_run_exit_codes(docker):
    assert docker("run", "--rm", "busybox", "sh", "-c", "exit 5").returncode == 5
    missing = docker("run", "--rm", "busybox", "nosuchcmd")
    assert missing.returncode == 127
    assert b"executable file not found" in missing.stderr


def test_ps_and_images(docker):
    created = docker("run", "--name", "cli-ps-test", "busybox", "true")
    assert created.returncode == 0, created.stderr
    try:
        ps = docker("ps", "-a")
        assert ps.returncode == 0, ps.stderr
        assert b"cli-ps-test" in ps.stdout and b"Exited (0)" in ps.stdout
        images = docker("images")
        assert images.returncode == 0
        assert b"busybox" in images.stdout and b"latest" in images.stdout
    finally:
        docker("rm", "-f", "cli-ps-test")


def test_stdin_is_passed(docker):
    result = docker("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input=b"shout\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"SHOUT\n"
