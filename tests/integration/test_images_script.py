"""scripts/make_test_images.py: deterministic, idempotent, and in the layouts docker writes."""

import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "make_test_images.py")
BUSYBOX = "/bin/busybox"

pytestmark = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="apt-get install busybox-static")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def members(path):
    with tarfile.open(path) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isreg() else None)
                for m in tar.getmembers()}


def test_deterministic_and_idempotent(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("--out", str(a)).returncode == 0
    assert run("--out", str(b)).returncode == 0
    for name in ("busybox.tar", "busybox-oci.tar", "busybox-oci/index.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    mtime = os.stat(a / "busybox.tar").st_mtime_ns
    again = run("--out", str(a))
    assert again.returncode == 0 and "up to date" in again.stdout
    assert os.stat(a / "busybox.tar").st_mtime_ns == mtime
    (a / "busybox-oci.tar").unlink()
    assert "wrote" in run("--out", str(a)).stdout
    assert (a / "busybox-oci.tar").read_bytes() == (b / "busybox-oci.tar").read_bytes()


def test_docker_archive_layout(test_images):
    files = members(os.path.join(test_images, "busybox.tar"))
    [entry] = json.loads(files["manifest.json"][1])
    assert entry["RepoTags"] == ["busybox:latest"]
    config_bytes = files[entry["Config"]][1]
    assert entry["Config"] == "blobs/sha256/" + digest(config_bytes)[7:]
    config = json.loads(config_bytes)
    assert config["os"] == "linux" and config["architecture"] in ("amd64", "arm64")
    assert config["config"]["Cmd"] == ["sh"]
    assert config["config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    [layer_path] = entry["Layers"]
    layer = files[layer_path][1]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [digest(layer)]}
    assert json.loads(files["repositories"][1]) == {"busybox": {"latest": digest(layer)[7:]}}
    # the same archive is an OCI layout whose manifest names the same blobs
    assert json.loads(files["oci-layout"][1]) == {"imageLayoutVersion": "1.0.0"}
    [desc] = json.loads(files["index.json"][1])["manifests"]
    assert desc["annotations"]["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    manifest = json.loads(files["blobs/sha256/" + desc["digest"][7:]][1])
    assert manifest["config"]["digest"] == digest(config_bytes)
    assert [l["digest"] for l in manifest["layers"]] == [digest(layer)]
    for name, (info, data) in files.items():
        if data is not None and name.startswith("blobs/"):
            assert digest(data)[7:] == name.rsplit("/", 1)[1]


def test_layer_contents(test_images, tmp_path):
    with tarfile.open(os.path.join(test_images, "busybox.tar")) as tar:
        layer = tar.extractfile(json.load(tar.extractfile("manifest.json"))[0]["Layers"][0])
        (tmp_path / "layer.tar").write_bytes(layer.read())
    entries = members(tmp_path / "layer.tar")
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "bin/busybox":
            info = entries[applet][0]
            assert info.islnk() and info.linkname == "bin/busybox", applet
    assert entries["bin/busybox"][1] == open(BUSYBOX, "rb").read()
    assert entries["tmp"][0].mode == 0o1777 and entries["root"][0].mode == 0o700
    passwd = entries["etc/passwd"][1].decode()
    for user in ("root:x:0:0:", "daemon:x:1:1:", "nobody:x:65534:65534:"):
        assert user in passwd
    assert "root:x:0:" in entries["etc/group"][1].decode()
    assert {i.mtime for i, _ in entries.values()} == {1704067200}
    assert {(i.uid, i.gid) for i, _ in entries.values()} == {(0, 0)}


def test_oci_layout_dir_matches_tarball(test_images):
    files = members(os.path.join(test_images, "busybox-oci.tar"))
    root = os.path.join(test_images, "busybox-oci")
    for name, (info, data) in files.items():
        if data is not None:
            assert open(os.path.join(root, name), "rb").read() == data, name
    [desc] = json.loads(files["index.json"][1])["manifests"]
    manifest = json.loads(files["blobs/sha256/" + desc["digest"][7:]][1])
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"


def test_missing_busybox_says_what_to_install(tmp_path):
    result = run("--out", str(tmp_path), "--busybox", str(tmp_path / "nope"))
    assert result.returncode != 0
    assert "apt-get install busybox-static" in result.stderr
