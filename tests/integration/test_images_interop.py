"""Images move between skiff, docker and podman as tarballs: a committed image (with a
whiteout) saved by skiff loads and runs in docker and podman, and what they save loads and
runs in skiff. Private peers as bench/run.py starts them; skipped where a peer is absent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.root, pytest.mark.needs_docker]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = "cat /tmp/x; test -e /etc/group && echo group-present || echo group-gone"


@pytest.fixture(scope="module")
def saved(daemon):
    client = daemon.client()
    c = client.containers.run("busybox", ["sh", "-c", "echo moved > /tmp/x; rm /etc/group"],
                              detach=True)
    c.wait(timeout=30)
    image = c.commit("interop", "1")
    c.remove()
    path = os.path.join(daemon.dir, "interop.tar")
    result = daemon.cli("save", "-o", path, "interop:1")
    assert result.returncode == 0, result.stderr
    client.images.remove("interop:1")
    yield path, image.id
    os.unlink(path)


def _peers():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        from run import Docker, Podman
    finally:
        sys.path.pop(0)
    return {"docker": Docker, "podman": Podman}


@pytest.mark.parametrize("peer", ["docker", "podman"])
def test_images_travel_between_engines(daemon, saved, peer):
    cls = _peers()[peer]
    if not cls.available():
        pytest.skip(f"{peer} is not installed")
    path, image_id = saved
    back = os.path.join(daemon.dir, f"from-{peer}.tar")
    with cls() as engine:
        env = getattr(engine, "env", None)

        def run(*args):
            return subprocess.run(engine.cli + list(args), env=env, capture_output=True,
                                  timeout=120)

        loaded = run("load", "-i", path)
        assert loaded.returncode == 0, loaded.stderr
        out = run("run", "--rm", "--network", "none", "interop:1", "sh", "-c", PROBE)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [b"moved", b"group-gone"]
        assert run("save", "-o", back, "interop:1").returncode == 0
    try:
        result = daemon.cli("load", "-i", back)
        assert result.returncode == 0, result.stderr
        name = result.stdout.decode().split("Loaded image: ")[1].split()[0]
        client = daemon.client()
        assert client.images.get(name).id == image_id  # the same config, byte for byte
        assert client.containers.run(name, ["sh", "-c", PROBE], remove=True).split() == \
            [b"moved", b"group-gone"]
        client.images.remove(name)
    finally:
        os.unlink(back)
