"""Push with skiff, pull with docker, podman and skopeo, and the reverse, through the real
registry on loopback. skiff pushes layers it stores uncompressed gzip-compressed (as docker
does); the peers verify every digest. Peers run privately (bench/run.py's Docker and Podman);
each part is skipped where its peer is absent."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest

from tests.integration.test_registry import _registry

pytestmark = [pytest.mark.root]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = "cat /tmp/x; test -e /etc/group && echo group-present || echo group-gone"
ACCEPT = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.oci.image.manifest.v1+json"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = _registry(tmp_path_factory)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def pushed(daemon, registry):
    """A committed image (a file and a whiteout over busybox) pushed by skiff."""
    client = daemon.client()
    c = client.containers.run("busybox", ["sh", "-c", "echo peers > /tmp/x; rm /etc/group"],
                              detach=True)
    c.wait(timeout=30)
    repo = f"{registry.host}/skiff/peers"
    image = c.commit(repo, "v1")
    c.remove()
    lines = list(client.api.push(repo, "v1", stream=True, decode=True))
    assert not [l for l in lines if "error" in l], lines
    return repo, image


def _peer(name):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        from run import Docker, Podman
    finally:
        sys.path.pop(0)
    cls = {"docker": Docker, "podman": Podman}[name]
    if not cls.available():
        pytest.skip(f"{name} is not installed")
    return cls


def test_pushed_layers_are_gzip(pushed, registry):
    repo, image = pushed
    path = repo.partition("/")[2]
    req = urllib.request.Request(f"http://{registry.host}/v2/{path}/manifests/v1",
                                 headers={"Accept": ACCEPT})
    manifest = json.loads(urllib.request.urlopen(req, timeout=10).read())
    diff_ids = image.attrs["RootFS"]["Layers"]
    assert len(manifest["layers"]) == len(diff_ids)
    for layer, diff_id in zip(manifest["layers"], diff_ids):
        assert layer["mediaType"].endswith(("tar.gzip", "tar+gzip")), layer
        blob = urllib.request.urlopen(
            f"http://{registry.host}/v2/{path}/blobs/{layer['digest']}", timeout=10).read()
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
        assert len(blob) == layer["size"]
        assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == diff_id
    assert manifest["config"]["digest"] == image.id


def test_skopeo_pulls_what_skiff_pushed_and_pushes_to_skiff(daemon, pushed, registry,
                                                             test_images, tmp_path):
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    repo, image = pushed
    archive = tmp_path / "from-registry.tar"
    run = lambda *a: subprocess.run(a, capture_output=True, timeout=120)  # noqa: E731
    got = run("skopeo", "copy", "--src-tls-verify=false", f"docker://{repo}:v1",
              f"docker-archive:{archive}:viaskopeo:v1")
    assert got.returncode == 0, got.stderr
    info = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}").stdout)
    assert info["rootfs"]["diff_ids"] == image.attrs["RootFS"]["Layers"]
    # the reverse: skopeo pushes (its own gzip), skiff pulls and runs
    sent = run("skopeo", "copy", "--dest-tls-verify=false",
               f"docker-archive:{test_images}/busybox.tar",
               f"docker://{registry.host}/skopeo/busybox:v1")
    assert sent.returncode == 0, sent.stderr
    client = daemon.client()
    pulled = daemon.cli("pull", f"{registry.host}/skopeo/busybox:v1")
    assert pulled.returncode == 0, pulled.stderr
    assert client.containers.run(f"{registry.host}/skopeo/busybox:v1", ["echo", "ok"],
                                 remove=True) == b"ok\n"


@pytest.mark.parametrize("peer", ["docker", "podman"])
def test_peer_pulls_what_skiff_pushed_and_pushes_to_skiff(daemon, pushed, registry,
                                                          test_images, peer):
    cls = _peer(peer)
    repo, image = pushed
    theirs = f"{registry.host}/{peer}/busybox:v1"
    insecure = ["--tls-verify=false"] if peer == "podman" else []
    with cls() as engine:
        env = getattr(engine, "env", None)

        def run(*args):
            return subprocess.run(engine.cli + list(args), env=env, capture_output=True,
                                  timeout=180)

        got = run("pull", *insecure, f"{repo}:v1")
        assert got.returncode == 0, got.stderr
        out = run("run", "--rm", "--network", "none", f"{repo}:v1", "sh", "-c", PROBE)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [b"peers", b"group-gone"]
        # the reverse: the peer pushes busybox, skiff pulls and runs it
        assert run("tag", "busybox", theirs).returncode == 0
        sent = run("push", *insecure, theirs)
        assert sent.returncode == 0, sent.stderr
    client = daemon.client()
    pulled = daemon.cli("pull", theirs)
    assert pulled.returncode == 0, pulled.stderr.decode() + daemon.log()
    assert client.containers.run(theirs, ["echo", peer], remove=True) == \
        peer.encode() + b"\n"
    client.images.remove(theirs)


def test_multi_layer_pull_into_an_empty_store(daemon, pushed):
    """Every layer unpacks while it downloads, side by side, each checked against its chain
    (the last test of the module: it empties the daemon's image store)."""
    repo, image = pushed
    client = daemon.client()
    for c in client.containers.list(all=True):
        c.remove(force=True)
    for img in client.images.list():
        client.images.remove(img.id, force=True)
    result = daemon.cli("pull", f"{repo}:v1")
    assert result.returncode == 0, result.stderr.decode() + daemon.log()
    assert result.stdout.count(b"Pull complete") == 2
    pulled = client.images.get(f"{repo}:v1")
    assert pulled.id == image.id
    out = client.containers.run(f"{repo}:v1", ["sh", "-c", PROBE], remove=True)
    assert out.split() == [b"peers", b"group-gone"]
