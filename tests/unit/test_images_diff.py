"""snapshot.diff: changes, layer tars and merged tars from overlay-form directories."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile

import pytest

from skiff.engine.config_changes import apply_changes
from skiff.errors import InvalidArgument
from skiff.snapshot import apply_layer
from skiff.snapshot import diff

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts need mknod (root)")
LONG = "d" * 120
ODD = os.fsdecode(b"caf\xe9")  # not UTF-8


@pytest.fixture
def tmp():
    path = tempfile.mkdtemp(prefix="skiff-diff-", dir="/var/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write(path: str, data: bytes = b"x", mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _whiteout(path: str) -> None:
    os.mknod(path, stat.S_IFCHR | 0, os.makedev(0, 0))


@pytest.fixture
def layers(tmp):
    """lower: etc/{passwd,group}, opt/{old,keep}, usr/bin/tool; upper: the container's
    changes in overlay form."""
    lower, upper = os.path.join(tmp, "lower"), os.path.join(tmp, "upper")
    _write(os.path.join(lower, "etc/passwd"), b"root\n")
    _write(os.path.join(lower, "etc/group"), b"root\n")
    _write(os.path.join(lower, "opt/old"), b"old")
    _write(os.path.join(lower, "opt/keep"), b"keep")
    _write(os.path.join(lower, "usr/bin/tool"), b"tool", 0o755)
    os.makedirs(os.path.join(upper, "etc"))
    _whiteout(os.path.join(upper, "etc/group"))
    _write(os.path.join(upper, "etc/passwd"), b"root\nann\n")
    os.makedirs(os.path.join(upper, "opt"))
    os.setxattr(os.path.join(upper, "opt"), "trusted.overlay.opaque", b"y")
    _write(os.path.join(upper, "opt/new"), b"new")
    _write(os.path.join(upper, "new/" + LONG + "/f"), b"long")
    _write(os.path.join(upper, "new/" + ODD), b"odd")
    _write(os.path.join(upper, "new/suid"), b"s", 0o4755)
    os.link(os.path.join(upper, "new/suid"), os.path.join(upper, "new/hard"))
    os.symlink("/etc/passwd", os.path.join(upper, "new/sym"))
    os.mkfifo(os.path.join(upper, "new/fifo"))
    os.setxattr(os.path.join(upper, "new/suid"), "security.capability",
                bytes.fromhex("0100000200200000000000000000000000000000"))
    _write(os.path.join(upper, "etc/hosts"), b"")  # a mount point the runtime made
    return upper, [lower]


@root_only
def test_changes_in_docker_terms(layers):
    upper, lowers = layers
    found = diff.changes(upper, lowers, frozenset({"/etc/hosts", "/etc"}))
    assert ("D", "/etc/group") in found and ("C", "/etc/passwd") in found
    assert ("C", "/etc") in found
    assert ("D", "/opt") in found and ("A", "/opt/new") in found
    assert ("A", "/new/suid") in found and ("A", f"/new/{ODD}") in found
    assert ("A", "/etc/hosts") not in found and ("C", "/etc/hosts") not in found
    assert found.index(("A", "/new")) < found.index(("A", "/new/fifo"))


@root_only
def test_layer_tar_round_trips_through_unpack(layers, tmp):
    upper, lowers = layers
    out = io.BytesIO()
    diff.write_layer(upper, out, lowers=lowers, exclude=frozenset({"/etc/hosts"}))
    data = out.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                      errors="surrogateescape") as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    assert "etc/.wh.group" in members and "opt/.wh..wh..opq" in members
    assert "etc/group" not in members and "etc/hosts" not in members
    assert members["new/hard"].islnk() or members["new/suid"].islnk()
    assert members["new/suid"].mode & 0o4000
    assert members["new/sym"].issym() and members["new/sym"].linkname == "/etc/passwd"
    assert members["new/fifo"].isfifo()
    assert f"new/{LONG}/f" in members and f"new/{ODD}" in members
    assert "SCHILY.xattr.security.capability" in members["new/suid"].pax_headers
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for m in members.values()
                   for k in m.pax_headers)
    # unpacked again, it is the same upper dir in overlay form
    dest = os.path.join(tmp, "again")
    os.mkdir(dest)
    result = apply_layer(io.BytesIO(data), dest)
    assert result.tar_size == len(data)
    st = os.lstat(os.path.join(dest, "etc/group"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(dest, "opt"), "trusted.overlay.opaque") == b"y"
    assert os.stat(os.path.join(dest, "new/hard")).st_ino == \
        os.stat(os.path.join(dest, "new/suid")).st_ino
    assert os.getxattr(os.path.join(dest, "new/suid"), "security.capability") == \
        bytes.fromhex("0100000200200000000000000000000000000000")
    with open(os.path.join(dest, f"new/{LONG}/f"), "rb") as f:
        assert f.read() == b"long"


@root_only
def test_merged_tar_applies_whiteouts_and_opaque_dirs(layers):
    upper, lowers = layers
    out = io.BytesIO()
    diff.write_merged([upper] + lowers, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), encoding="utf-8",
                      errors="surrogateescape") as tar:
        names = {n.rstrip("/") for n in tar.getnames()}
        assert tar.extractfile("etc/passwd").read() == b"root\nann\n"
    assert "etc/group" not in names
    assert "opt/new" in names and "opt/old" not in names and "opt/keep" not in names
    assert "usr/bin/tool" in names and f"new/{ODD}" in names
    assert not any(os.path.basename(n).startswith(".wh.") for n in names)


@root_only
def test_redirects_are_refused(tmp):
    upper = os.path.join(tmp, "upper")
    os.makedirs(os.path.join(upper, "moved"))
    os.setxattr(os.path.join(upper, "moved"), "trusted.overlay.redirect", b"/orig")
    with pytest.raises(InvalidArgument):
        diff.write_layer(upper, io.BytesIO())
    with pytest.raises(InvalidArgument):
        diff.changes(upper, [])


def test_config_changes():
    base = {"Cmd": ["sh"], "Env": ["PATH=/bin", "A=0"], "WorkingDir": "/srv"}
    out = apply_changes(base, ['CMD ["top", "-b"]', "ENV A=1 B='two words'", "ENV C three",
                               "EXPOSE 80 53/udp", "LABEL a=b", "VOLUME /data",
                               "WORKDIR sub", "USER 1000:1000", "STOPSIGNAL SIGINT",
                               "ENTRYPOINT echo hi"])
    assert out["Entrypoint"] == ["/bin/sh", "-c", "echo hi"] and out["Cmd"] is None
    assert out["Env"] == ["PATH=/bin", "A=1", "B=two words", "C=three"]
    assert out["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert out["Labels"] == {"a": "b"} and out["Volumes"] == {"/data": {}}
    assert out["WorkingDir"] == "/srv/sub" and out["User"] == "1000:1000"
    assert out["StopSignal"] == "SIGINT"
    assert base["Cmd"] == ["sh"]  # the input is not changed
    for bad in ("FROM busybox", "RUN true", "EXPOSE nope", "ENV", "USER"):
        with pytest.raises(InvalidArgument):
            apply_changes(base, [bad])
