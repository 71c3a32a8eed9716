"""A commit writes its layer once, as a blob; the layer's snapshot is unpacked from that blob
when it is first needed. What that snapshot holds must be the container's upper dir again, in
overlay form, for every kind of change an upper dir holds (whiteouts, opaque dirs, hard links,
xattrs incl. capabilities, setuid, device nodes, fifos, symlinks, long and non-UTF-8 names,
empty files), and the size the commit records must be the snapshot's."""

from __future__ import annotations

import os
import stat

import pytest

from skiff.snapshot import Snapshotter, chain_id
from skiff.snapshot import diff as snapdiff
from skiff.store import ContentStore

pytestmark = pytest.mark.root


def _tree(top) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [""] + dirnames + filenames:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            info = [stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid, st.st_gid,
                    st.st_nlink, st.st_rdev, int(st.st_mtime)]
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    info.append(f.read())
            elif stat.S_ISLNK(st.st_mode):
                info.append(os.readlink(p))
            if not stat.S_ISLNK(st.st_mode):
                info.append(sorted((k, os.getxattr(p, k)) for k in os.listxattr(p)))
            out[os.path.relpath(p, top)] = info
    return out


def test_commit_layer_unpacks_to_its_upper_dir(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (device nodes, ownership, trusted xattrs)")
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc" / "group", stat.S_IFCHR | 0o600, os.makedev(0, 0))  # a deletion
    (upper / "opaque").mkdir()
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    (upper / "opaque" / "kept").write_bytes(b"kept\n")
    (upper / "bin").mkdir()
    ping = upper / "bin" / "ping"
    ping.write_bytes(b"\x7fELF" + os.urandom(3000))
    os.chown(ping, 0, 12)
    os.chmod(ping, 0o4755)       # after the chown, which clears setuid (and capabilities)
    os.setxattr(ping, "security.capability",
                bytes.fromhex("0100000200200000000000000000000000000000"))
    os.link(ping, upper / "bin" / "ping6")
    (upper / "big").write_bytes(os.urandom(3 << 20))
    (upper / "empty").write_bytes(b"")
    os.symlink("/etc/passwd", upper / "link")
    os.mkfifo(upper / "fifo")
    os.mknod(upper / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    long = upper / ("d" * 120) / ("e" * 120)
    long.mkdir(parents=True)
    (long / ("f" * 200)).write_bytes(b"long\n")
    os.makedirs(os.fsencode(upper) + b"/caf\xe9")
    with open(os.fsencode(upper) + b"/caf\xe9/\xff.txt", "wb") as f:
        f.write(b"latin-1\n")
    os.setxattr(upper / "big", "user.note", b"hello")
    os.utime(upper / "big", (1_600_000_000, 1_600_000_000))

    root = tmp_path / "root"
    root.mkdir()
    store, snaps = ContentStore(root), Snapshotter(root)
    with store.writer() as blob:
        unpacked = snapdiff.write_layer(str(upper), blob)
        digest, size = blob.commit()
    assert store.size(digest) == size
    chain = chain_id(None, digest)
    assert snaps.unpack(chain, None, store.path(digest), known_digest=digest) == digest
    assert snaps.size(chain) == snaps.usage(chain).size == unpacked
    assert unpacked == 3004 + (3 << 20) + 5 + 5 + 8   # ping (linked twice), big, kept, long, é
    built = _tree(snaps.path(chain))
    source = _tree(str(upper))
    del built["."], source["."]
    assert built == source
    assert built["etc/group"][0] == stat.S_IFCHR and built["etc/group"][5] == 0
    assert ("trusted.overlay.opaque", b"y") in built["opaque"][-1]
    assert built["bin/ping"][4] == 2 and built["bin/ping"][1] == 0o4755
    assert any(k == "security.capability" for k, _ in built["bin/ping"][-1])
