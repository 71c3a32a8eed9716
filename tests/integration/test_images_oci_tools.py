"""skiff's saved archives are OCI image layouts that skopeo and umoci read, and what they write
(docker-archive and OCI layouts) loads and runs in skiff. Skipped where a tool is absent
(scripts/install.sh installs both)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

import pytest

pytestmark = pytest.mark.root
PROBE = ["sh", "-c", "cat /tmp/x; test -e /etc/group && echo group-present || echo group-gone"]


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is not installed (scripts/install.sh installs it)")
    return path


def _run(*args, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, timeout=120, **kw)
    assert result.returncode == 0, (args, result.stderr.decode())
    return result


@pytest.fixture(scope="module")
def saved(daemon, test_images, tmp_path_factory):
    """A committed image with a whiteout, saved by skiff; (archive, image id, work dir)."""
    daemon.load_busybox(test_images)
    client = daemon.client()
    c = client.containers.run("busybox", ["sh", "-c", "echo oci > /tmp/x; rm /etc/group"],
                              detach=True)
    c.wait(timeout=30)
    image = c.commit("ocitools", "v1")
    c.remove()
    work = str(tmp_path_factory.mktemp("ocitools"))
    path = os.path.join(work, "saved.tar")
    result = daemon.cli("save", "-o", path, "ocitools:v1")
    assert result.returncode == 0, result.stderr
    yield path, image.id, work
    shutil.rmtree(work, ignore_errors=True)


def _load_and_probe(daemon, archive: str, name: str) -> tuple[str, str]:
    client = daemon.client()
    result = daemon.cli("load", "-i", archive)
    assert result.returncode == 0, result.stderr.decode() + daemon.log()
    image = client.images.get(name)
    out = client.containers.run(name, PROBE, remove=True).decode()
    return image.id, out


def test_skopeo_reads_skiffs_archive_both_ways(daemon, saved):
    skopeo = _need("skopeo")
    path, image_id, work = saved
    # as a docker-archive and as an OCI archive: the same config, so the same image id
    for transport in ("docker-archive", "oci-archive"):
        info = json.loads(_run(skopeo, "inspect", "--config", f"{transport}:{path}").stdout)
        assert info["rootfs"]["diff_ids"][-1].startswith("sha256:")
        raw = _run(skopeo, "inspect", "--raw", "--config", f"{transport}:{path}").stdout
        assert "sha256:" + __import__("hashlib").sha256(raw).hexdigest() == image_id
    # copied out by skopeo (docker-archive -> OCI layout -> docker-archive), back into skiff
    layout = os.path.join(work, "skopeo-layout")
    _run(skopeo, "copy", f"docker-archive:{path}", f"oci:{layout}:v1")
    back = os.path.join(work, "from-skopeo.tar")
    _run(skopeo, "copy", f"oci:{layout}:v1", f"docker-archive:{back}:fromskopeo:v1")
    loaded_id, out = _load_and_probe(daemon, back, "fromskopeo:v1")
    assert out == "oci\ngroup-gone\n"
    # (skopeo rewrites the config for a docker-archive, so the id differs; the layers do not)
    client = daemon.client()
    assert client.images.get(loaded_id).attrs["RootFS"]["Layers"] == \
        client.images.get(image_id).attrs["RootFS"]["Layers"]
    # and skopeo's OCI archive (no manifest.json: the OCI layout alone)
    oci_back = os.path.join(work, "from-skopeo-oci.tar")
    _run(skopeo, "copy", f"oci-archive:{path}",
         f"oci-archive:{oci_back}:docker.io/library/fromskopeo:oci")
    with tarfile.open(oci_back) as tar:
        assert "manifest.json" not in tar.getnames()
    loaded_id, out = _load_and_probe(daemon, oci_back, "fromskopeo:oci")
    assert loaded_id == image_id and out == "oci\ngroup-gone\n"


def test_umoci_unpacks_skiffs_layout(daemon, saved):
    umoci = _need("umoci")
    path, image_id, work = saved
    layout = os.path.join(work, "umoci-layout")
    os.mkdir(layout)
    with tarfile.open(path) as tar:
        tar.extractall(layout)
    bundle = os.path.join(work, "bundle")
    try:
        _run(umoci, "unpack", "--image", f"{layout}:v1", bundle)
        rootfs = os.path.join(bundle, "rootfs")
        with open(os.path.join(rootfs, "tmp", "x")) as f:
            assert f.read() == "oci\n"
        assert not os.path.lexists(os.path.join(rootfs, "etc", "group"))  # the whiteout
        assert os.path.exists(os.path.join(rootfs, "bin", "busybox"))
        config = json.load(open(os.path.join(bundle, "config.json")))
        assert config["process"]["args"]  # the image's command reached the runtime spec
    finally:
        shutil.rmtree(bundle, ignore_errors=True)


def test_umoci_built_image_loads_in_skiff(daemon, saved):
    """umoci adds a layer to skiff's image in its own layout; the layout, tarred, loads."""
    umoci = _need("umoci")
    path, image_id, work = saved
    layout = os.path.join(work, "umoci-built")
    os.mkdir(layout)
    with tarfile.open(path) as tar:
        tar.extractall(layout)
    bundle = os.path.join(work, "umoci-bundle")
    try:
        _run(umoci, "unpack", "--image", f"{layout}:v1", bundle)
        with open(os.path.join(bundle, "rootfs", "tmp", "x"), "w") as f:
            f.write("umoci\n")
        os.unlink(os.path.join(bundle, "rootfs", "bin", "true"))
        _run(umoci, "repack", "--image", f"{layout}:v2", bundle)
        _run(umoci, "config", "--image", f"{layout}:v2", "--tag", "v2",
             "--config.label", "made.by=umoci")
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
    # umoci names images by a bare tag: make it a full reference, as `oci-archive:` users do
    index_path = os.path.join(layout, "index.json")
    index = json.load(open(index_path))
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                          == "v2"]
    annotations = index["manifests"][0]["annotations"]
    annotations.pop("io.containerd.image.name", None)  # umoci kept skiff's name of the base
    annotations["org.opencontainers.image.ref.name"] = "docker.io/library/umocibuilt:v2"
    os.unlink(os.path.join(layout, "manifest.json"))   # skiff's docker list: not umoci's
    with open(index_path, "w") as f:
        json.dump(index, f)
    archive = os.path.join(work, "umoci.tar")
    with tarfile.open(archive, "w") as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(os.path.join(layout, name), arcname=name)
    client = daemon.client()
    result = daemon.cli("load", "-i", archive)
    assert result.returncode == 0, result.stderr.decode() + daemon.log()
    assert b"Loaded image: umocibuilt:v2" in result.stdout, (result.stdout, index)
    image = client.images.get("umocibuilt:v2")
    assert image.labels.get("made.by") == "umoci"
    out = client.containers.run("umocibuilt:v2", ["sh", "-c", "cat /tmp/x; ls /bin/true || "
                                                  "echo true-gone"], remove=True).decode()
    assert out == "umoci\ntrue-gone\n"
