"""Interactive containers through a real pty: `skiff run -it` and `docker run -it` against skiffd."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.root
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def drive_shell(command: list[str], env: dict) -> None:
    child = pexpect.spawn(command[0], command[1:], env=env, dimensions=(33, 101), timeout=20)
    try:
        child.expect(r"[#$] ")
        child.sendline("stty size; echo $((6*7))")
        child.expect(r"33 101")
        child.expect(r"42")
        child.expect(r"[#$] ")
        child.setwinsize(40, 120)  # SIGWINCH on the client: the new size reaches the container
        child.sendline("stty size")
        child.expect(r"40 120")
        child.expect(r"[#$] ")  # Ctrl-D only ends the shell at its prompt
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before


def test_skiff_run_it(daemon):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"), TERM="xterm")
    drive_shell([sys.executable, "-m", "skiff.cli.main", "-H", daemon.host, "run", "-it",
                 "--rm", "busybox", "sh"], env)


@pytest.mark.needs_docker
def test_docker_run_it(daemon):
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host, TERM="xterm")
    drive_shell([docker, "run", "-it", "--rm", "busybox", "sh"], env)


@pytest.mark.needs_docker
def test_docker_detach_keys_leave_the_container_running(daemon):
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host, TERM="xterm")
    child = pexpect.spawn(docker, ["run", "-it", "--name", "detachable", "busybox", "sh"],
                          env=env, timeout=20)
    try:
        child.expect(r"[#$] ")
        child.sendcontrol("p")
        child.sendcontrol("q")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    sdk = daemon.client()
    try:
        assert sdk.containers.get("detachable").status == "running"
    finally:
        sdk.containers.get("detachable").remove(force=True)
