"""Layer extraction: metadata kept, whiteouts converted, hostile entries refused.

Each hostile case builds its own tar and proves that nothing outside the snapshot changed and
that a refused layer leaves nothing behind.
"""

import gzip
import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from skiff.errors import InvalidArgument, NotFound
from skiff.snapshot import Snapshotter, apply_layer, chain_id
from skiff.store import failpoint

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown, trusted xattrs)")
SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


# -- building tars ----------------------------------------------------------------------------

def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, linkname="", uid=0, gid=0,
          mtime=1700000000, pax=None, dev=(0, 0)):
    return dict(name=name, kind=kind, data=data, mode=mode, linkname=linkname, uid=uid, gid=gid,
                mtime=mtime, pax=pax or {}, dev=dev)


def d(name, mode=0o755, **kw):
    return entry(name, tarfile.DIRTYPE, mode=mode, **kw)


def sym(name, target):
    return entry(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hard(name, target):
    return entry(name, tarfile.LNKTYPE, linkname=target)


def make_tar(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type, info.mode, info.linkname = e["kind"], e["mode"], e["linkname"]
            info.uid, info.gid, info.mtime = e["uid"], e["gid"], e["mtime"]
            info.devmajor, info.devminor = e["dev"]
            info.pax_headers = e["pax"]
            info.size = len(e["data"])
            tar.addfile(info, io.BytesIO(e["data"]) if e["data"] else None)
    return buf.getvalue()


def diff_id(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fingerprint(top) -> dict:
    """Everything observable about a tree: type, mode, owner, size, nlink, content, target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [""] + dirnames + filenames:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            info = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid, st.st_nlink,
                    st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    info += (f.read(),)
            elif stat.S_ISLNK(st.st_mode):
                info += (os.readlink(p),)
            out[os.path.relpath(p, top)] = info
    return out


@pytest.fixture
def world(tmp_path):
    """A snapshotter and, beside it, an `outside` tree that no layer may touch."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("do not touch")
    (outside / "dir").mkdir()
    (outside / "dir" / "file").write_text("nor this")
    snaps = Snapshotter(tmp_path / "root")
    return snaps, outside, tmp_path


def unpack_bytes(snaps, tmp_path, data, parent=None):
    """Unpack `data` (gzip or plain) as the layer on `parent`; returns (chain id, diff id)."""
    plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    chain = chain_id(parent, diff_id(plain))
    blob = tmp_path / "layer.tar"
    blob.write_bytes(data)
    try:
        return chain, snaps.unpack(chain, parent, str(blob))
    finally:
        blob.unlink()


def snapshot_dir_is_clean(snaps):
    left = sorted(n for n in os.listdir(snaps.dir) if n not in ("active", "empty"))
    return left == [] and os.listdir(snaps.active_dir) == []


# -- what a layer keeps -----------------------------------------------------------------------

@root_only
def test_metadata_kept(world):
    snaps, _, tmp = world
    data = make_tar([
        d("./", mode=0o755),
        d("etc/", mode=0o750, uid=1000, gid=1001, mtime=1600000000),
        entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", mode=0o600, uid=1000, gid=1001),
        entry("bin/su", data=b"ELF", mode=0o4755),
        sym("bin/sh", "/bin/busybox"),
        sym("rel", "../../../../outside"),
        hard("etc/passwd-", "etc/passwd"),
        entry("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        entry("dev/sda", tarfile.BLKTYPE, mode=0o660, dev=(8, 0), gid=6),
        entry("run/fifo", tarfile.FIFOTYPE, mode=0o620),
        d("tmp/", mode=0o1777),
        entry("x", data=b"x", pax={"SCHILY.xattr.user.note": "hello",
                                    "SCHILY.xattr.trusted.overlay.redirect": "/etc"}),
    ])
    chain, did = unpack_bytes(snaps, tmp, data)
    assert did == diff_id(data) == chain
    fs = snaps.path(chain)
    st = os.lstat(f"{fs}/etc")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o750, 1000, 1001,
                                                                              1600000000)
    st = os.lstat(f"{fs}/etc/passwd")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_mtime, st.st_nlink) == (0o600, 1000,
                                                                               1700000000, 2)
    assert os.lstat(f"{fs}/etc/passwd-").st_ino == st.st_ino
    assert stat.S_IMODE(os.lstat(f"{fs}/bin/su").st_mode) == 0o4755
    assert os.readlink(f"{fs}/bin/sh") == "/bin/busybox"
    assert os.readlink(f"{fs}/rel") == "../../../../outside"  # content, never followed
    st = os.lstat(f"{fs}/dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    st = os.lstat(f"{fs}/dev/sda")
    assert stat.S_ISBLK(st.st_mode) and st.st_gid == 6 and stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_ISFIFO(os.lstat(f"{fs}/run/fifo").st_mode)
    assert stat.S_IMODE(os.lstat(f"{fs}/tmp").st_mode) == 0o1777
    assert os.getxattr(f"{fs}/x", "user.note") == b"hello"
    assert "trusted.overlay.redirect" not in os.listxattr(f"{fs}/x")
    assert snaps.diff_id(chain) == did
    assert snaps.list() == [chain]


@root_only
def test_whiteouts_converted(world):
    snaps, _, tmp = world
    data = make_tar([
        d("a/"), entry("a/.wh.gone"), entry("b/.wh..wh..opq"), entry("b/kept", data=b"k"),
        entry(".wh..wh.plnk/123"), entry("c/.wh..wh..opq"),
    ])
    chain, _ = unpack_bytes(snaps, tmp, data)
    fs = snaps.path(chain)
    st = os.lstat(f"{fs}/a/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(f"{fs}/b", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(f"{fs}/c", "trusted.overlay.opaque") == b"y"
    assert os.listdir(f"{fs}/b") == ["kept"]
    assert not os.path.exists(f"{fs}/.wh..wh.plnk")


@root_only
def test_whiteout_and_entry_of_the_same_name_in_one_layer(world):
    """A whiteout hides only lower layers: with a same-named entry in the same layer, that
    entry stays and (for a directory) becomes opaque, whichever comes first."""
    snaps, _, tmp = world
    data = make_tar([
        entry(".wh.a"), d("a/"), entry("a/new", data=b"n"),      # whiteout, then the dir
        entry(".wh.b"), entry("b/inner", data=b"i"),            # whiteout, then a child
        d("c/"), entry("c/kept", data=b"k"), entry(".wh.c"),    # dir, then its whiteout
        entry("f", data=b"f"), entry(".wh.f"),                  # file, then its whiteout
    ])
    chain, _ = unpack_bytes(snaps, tmp, data)
    fs = snaps.path(chain)
    for name, child in (("a", "new"), ("b", "inner"), ("c", "kept")):
        assert os.path.isdir(f"{fs}/{name}") and os.listdir(f"{fs}/{name}") == [child]
        assert os.getxattr(f"{fs}/{name}", "trusted.overlay.opaque") == b"y"
    assert open(f"{fs}/f").read() == "f"


def test_gzip_and_idempotent(world):
    snaps, _, tmp = world
    plain = make_tar([entry("hello", data=b"world" * 1000)])
    chain, did = unpack_bytes(snaps, tmp, gzip.compress(plain))
    assert did == diff_id(plain)
    assert open(os.path.join(snaps.path(chain), "hello"), "rb").read() == b"world" * 1000
    # idempotent: the blob is not even opened the second time
    assert snaps.unpack(chain, None, "/nonexistent") == did
    assert snaps.usage(chain).size == 5000


def test_zstd(world):
    zstandard = pytest.importorskip("zstandard")
    snaps, _, tmp = world
    plain = make_tar([entry("z", data=b"zstd" * 100)])
    blob = tmp / "l.zst"
    blob.write_bytes(zstandard.ZstdCompressor().compress(plain))
    assert snaps.unpack(diff_id(plain), None, str(blob)) == diff_id(plain)


def test_parent_chain_and_delete(world):
    snaps, _, tmp = world
    l1, l2 = make_tar([entry("one")]), make_tar([entry("two")])
    c1, _ = unpack_bytes(snaps, tmp, l1)
    with pytest.raises(NotFound):
        unpack_bytes(snaps, tmp, l2, parent=chain_id(None, diff_id(l2)))
    c2, _ = unpack_bytes(snaps, tmp, l2, parent=c1)
    assert c2 == chain_id(c1, diff_id(l2)) != diff_id(l2)
    assert snaps.exists(c1) and snaps.exists(c2)
    assert snaps.delete(c2) and not snaps.exists(c2) and not snaps.delete(c2)
    assert snaps.list() == [c1]


# -- refused and neutralised ------------------------------------------------------------------

def test_wrong_diff_id_leaves_nothing(world):
    snaps, _, tmp = world
    data = make_tar([entry("a", data=b"a")])
    with pytest.raises(InvalidArgument, match="does not match the image config"):
        blob = tmp / "b.tar"
        blob.write_bytes(data)
        other = diff_id(b"other")
        snaps.unpack(other, None, str(blob), expected_diff_id=other)
    with pytest.raises(InvalidArgument, match="does not produce chain id"):
        snaps.unpack(diff_id(b"other"), None, str(blob))
    assert snapshot_dir_is_clean(snaps)


@pytest.mark.parametrize("mangle", ["truncate", "garbage", "gzip-truncate", "empty"])
def test_corrupt_layers_leave_nothing(world, mangle):
    snaps, _, tmp = world
    data = make_tar([entry("big", data=os.urandom(200000)), entry("after", data=b"x")])
    blob = {"truncate": data[:100000], "garbage": b"\x00garbage" * 100 + data,
            "gzip-truncate": gzip.compress(data)[:50000], "empty": b""}[mangle]
    path = tmp / "bad.tar"
    path.write_bytes(blob)
    with pytest.raises(InvalidArgument):
        snaps.unpack(diff_id(data), None, str(path))
    assert snapshot_dir_is_clean(snaps)


HOSTILE = {
    # name: (entries (OUT = the outside dir), message expected or None if neutralised)
    "dotdot": ([entry("../escape", data=b"x")], "escapes the layer root"),
    "dotdot-nested": ([entry("a/b/../../../escape", data=b"x")], "escapes"),
    "dotdot-to-outside": ([entry("../../outside/secret", data=b"pwned")], "escapes"),
    "symlink-then-write": ([sym("evil", "OUT"), entry("evil/secret", data=b"pwned")],
                           "not a directory"),
    "symlink-relative-then-write": ([sym("evil", "../../../outside"),
                                     entry("evil/secret", data=b"pwned")], "not a directory"),
    "symlink-nested-then-write": ([d("a/"), sym("a/b", "OUT"), entry("a/b/dir/file", data=b"p")],
                                  "not a directory"),
    "symlink-then-mkdir-inside": ([sym("evil", "OUT"), d("evil/newdir/")], "not a directory"),
    "symlink-then-whiteout": ([sym("evil", "OUT"), entry("evil/.wh.secret")], "not a directory"),
    "symlink-then-opaque": ([sym("evil", "OUT"), entry("evil/.wh..wh..opq")], "not a directory"),
    "symlink-then-hardlink-through": ([sym("evil", "OUT"), hard("h", "evil/secret")],
                                      "not a directory"),
    "hardlink-absolute-outside": ([hard("h", "OUT/secret")], "not an earlier file"),
    "hardlink-dotdot": ([hard("h", "../outside/secret")], "escapes"),
    "hardlink-missing": ([hard("h", "nothing")], "not an earlier file"),
    "hardlink-to-dir": ([d("dir/"), hard("h", "dir")], "not an earlier file"),
    "hardlink-to-root": ([hard("h", "./")], "hard link to the root"),
    "whiteout-dotdot": ([entry("a/.wh...")], "bad whiteout"),
    "whiteout-empty": ([entry("a/.wh.")], "bad whiteout"),
    "root-not-dir": ([entry("./", data=b"x")], "must be a directory"),
    # neutralised: allowed, but nothing leaves the layer
    "absolute-name": ([entry("OUT/secret", data=b"pwned")], None),
    "symlink-replaced-by-file": ([sym("f", "OUT/secret"), entry("f", data=b"pwned")], None),
    "symlink-replaced-by-dir": ([sym("f", "OUT"), d("f/"), entry("f/secret", data=b"p")], None),
    "hardlink-to-symlink": ([sym("s", "OUT/secret"), hard("h", "s")], None),
    "chmod-through-symlink": ([sym("s", "OUT/secret"), d("s/", mode=0o777)], None),
    "dir-then-file": ([d("x/"), entry("x/y", data=b"1"), entry("x", data=b"file")], None),
    "overlay-xattr": ([entry("f", pax={"SCHILY.xattr.trusted.overlay.redirect": "OUT"})], None),
}


@root_only
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layer(world, case):
    snaps, outside, tmp = world
    entries, message = HOSTILE[case]
    out = str(outside).lstrip("/")
    for e in entries:
        e["name"] = e["name"].replace("OUT", "/" + out)
        e["linkname"] = e["linkname"].replace("OUT", "/" + out)
    before = fingerprint(tmp)
    data = make_tar(entries)
    blob = tmp.parent / f"{tmp.name}-layer.tar"
    blob.write_bytes(data)
    try:
        if message:
            with pytest.raises(InvalidArgument, match=message):
                snaps.unpack(diff_id(data), None, str(blob))
            assert snapshot_dir_is_clean(snaps)
        else:
            snaps.unpack(diff_id(data), None, str(blob))
            fs = snaps.path(diff_id(data))
            if case == "absolute-name":
                assert open(os.path.join(fs, out, "secret")).read() == "pwned"
            if case == "dir-then-file":
                assert open(os.path.join(fs, "x")).read() == "file"
            if case == "overlay-xattr":
                assert not any(x.startswith("trusted.overlay.")
                               for x in os.listxattr(os.path.join(fs, "f")))
            snaps.delete(diff_id(data))
    finally:
        blob.unlink()
    assert fingerprint(tmp) == before


def test_crash_before_rename_leaves_no_snapshot(world):
    snaps, _, tmp = world
    data = make_tar([entry("a", data=b"a")])
    (tmp / "l.tar").write_bytes(data)
    code = (f"from skiff.snapshot import Snapshotter; Snapshotter({str(snaps.root)!r})"
            f".unpack({diff_id(data)!r}, None, {str(tmp / 'l.tar')!r})")
    env = dict(os.environ, SKIFF_FAILPOINTS="snapshot.unpack.before_rename",
               PYTHONPATH=os.path.abspath(SRC))
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == \
        failpoint.EXIT_STATUS
    assert not snaps.exists(diff_id(data))
    assert snaps.cleanup_temp() == 1
    assert snapshot_dir_is_clean(snaps)
    assert snaps.unpack(diff_id(data), None, str(tmp / "l.tar")) == diff_id(data)


def test_apply_layer_reports_sizes(tmp_path):
    data = make_tar([entry("a", data=b"12345"), hard("b", "a")])
    dest = tmp_path / "fs"
    dest.mkdir()
    result = apply_layer(io.BytesIO(data), str(dest), chown=False)
    assert (result.diff_id, result.tar_size, result.content_size) == (diff_id(data), len(data), 5)


def test_known_digest_only_stands_for_an_uncompressed_stream(tmp_path):
    """The content store's verified digest of a plain layer is its diff id (not hashed again);
    a compressed layer's blob digest is not, so it is still hashed."""
    data = make_tar([entry("a", data=b"hello")])
    known = "sha256:" + hashlib.sha256(data).hexdigest()
    out = tmp_path / "plain"
    out.mkdir()
    assert apply_layer(io.BytesIO(data), str(out), known_digest=known).diff_id == known
    packed = gzip.compress(data)
    out = tmp_path / "gz"
    out.mkdir()
    blob_digest = "sha256:" + hashlib.sha256(packed).hexdigest()
    result = apply_layer(io.BytesIO(packed), str(out), known_digest=blob_digest)
    assert result.diff_id == known and result.tar_size == len(data)
