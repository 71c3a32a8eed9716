"""Snapshots stacked by a real overlay mount: whiteouts and opaque dirs across two layers."""

import io
import os
import subprocess
import tarfile

import pytest

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.snapshot import Snapshotter, chain_id

pytestmark = pytest.mark.root


def layer(files: dict) -> bytes:
    """name -> bytes (a file), None (a directory) or ("->", target) (a symlink)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.fixture
def snaps(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root for overlay mounts")
    return Snapshotter(tmp_path / "root")


def unpack_chain(snaps, tmp_path, layers):
    chain, chains = None, []
    for i, data in enumerate(layers):
        blob = tmp_path / f"l{i}.tar"
        blob.write_bytes(data)
        import hashlib
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        chain = chain_id(chain, d)
        snaps.unpack(chain, chains[-1] if chains else None, str(blob), expected_diff_id=d)
        chains.append(chain)
    return chains


class mounted:
    """Mount the overlay that `prepare` described on `target`; always unmount."""

    def __init__(self, mount, target):
        self.mount, self.target = mount, str(target)

    def __enter__(self):
        os.makedirs(self.target, exist_ok=True)
        opts = ",".join(self.mount.options)
        proc = subprocess.run(["mount", "-t", self.mount.type, "-o", opts, self.mount.source,
                               self.target], capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"overlay mount failed here: {proc.stderr.strip()}")
        return self.target

    def __exit__(self, *exc):
        subprocess.run(["umount", self.target], check=True)


def test_whiteouts_through_overlay(snaps, tmp_path):
    lower = layer({"a/": None, "a/file1": b"1", "a/file2": b"2", "b/": None, "b/x": b"x",
                   "b/sub/": None, "b/sub/deep": b"d", "c/": None, "c/old": b"o",
                   "link": ("->", "a/file1")})
    upper = layer({"a/.wh.file1": b"", "b/.wh..wh..opq": b"", "b/y": b"y", ".wh.c": b"",
                   ".wh.link": b"", "new": b"n"})
    chains = unpack_chain(snaps, tmp_path, [lower, upper])
    [m] = snaps.prepare("ctr1", chains)
    assert m.type == "overlay" and m.source == "overlay" and m.target == "/"
    assert m.options[0] == "lowerdir=" + snaps.path(chains[1]) + ":" + snaps.path(chains[0])
    try:
        with mounted(m, tmp_path / "merged") as root:
            assert sorted(os.listdir(root)) == ["a", "b", "new"]
            assert os.listdir(f"{root}/a") == ["file2"]
            assert sorted(os.listdir(f"{root}/b")) == ["y"]
            assert open(f"{root}/new").read() == "n"
            # writes land in the container's upper dir, never in the layers
            with open(f"{root}/a/file2", "w") as f:
                f.write("changed")
            os.unlink(f"{root}/new")
        assert open(os.path.join(snaps.upper("ctr1"), "a", "file2")).read() == "changed"
        assert open(os.path.join(snaps.path(chains[0]), "a", "file2")).read() == "2"
        assert os.path.exists(os.path.join(snaps.path(chains[1]), "new"))
        assert snaps.active_usage("ctr1").size == len("changed")
        assert snaps.mounts("ctr1") == [m]
    finally:
        assert snaps.remove("ctr1")
    assert not snaps.remove("ctr1")
    assert snaps.active() == []


def test_single_layer_readonly_is_still_overlay(snaps, tmp_path):
    chains = unpack_chain(snaps, tmp_path, [layer({"etc/": None, "etc/hostname": b"h"})])
    [m] = snaps.prepare("view", chains, readonly=True)
    assert m.type == "overlay" and "ro" in m.options
    assert not any(o.startswith("upperdir=") for o in m.options)
    try:
        with mounted(m, tmp_path / "ro") as root:
            assert open(f"{root}/etc/hostname").read() == "h"
            with pytest.raises(OSError):
                open(f"{root}/etc/new", "w")
    finally:
        snaps.remove("view")


def test_prepare_errors(snaps, tmp_path):
    chains = unpack_chain(snaps, tmp_path, [layer({"f": b"f"})])
    snaps.prepare("k", chains)
    try:
        with pytest.raises(Conflict):
            snaps.prepare("k", chains)
        with pytest.raises(NotFound):
            snaps.prepare("k2", ["sha256:" + "0" * 64])
        with pytest.raises(InvalidArgument):
            snaps.prepare("../evil", chains)
        assert sorted(snaps.active()) == ["k"]
    finally:
        snaps.remove("k")


def test_no_layers(snaps, tmp_path):
    [m] = snaps.prepare("scratch", [])
    try:
        with mounted(m, tmp_path / "s") as root:
            assert os.listdir(root) == []
    finally:
        snaps.remove("scratch")
