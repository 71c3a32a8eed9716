"""The CLI's own tar headers read back by tarfile: short, long and non-ASCII names, links,
directories, PAX records where ustar has no room."""

import io
import tarfile

from skiff.cli import tarwriter


def entries(*parts):
    data = b"".join(parts) + b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, m.type, m.mode, m.size, m.mtime, m.linkname, m.uid, m.gid,
                 tar.extractfile(m).read() if m.isfile() else None) for m in tar]


def test_round_trip_through_tarfile():
    long_name = "deep/" * 30 + "file.txt"
    parts = [
        tarwriter.header("dir", mode=0o755, mtime=1_700_000_000, kind=tarwriter.DIRECTORY),
        tarwriter.header("dir/a.txt", mode=0o640, size=3, mtime=5) + b"abc" +
        tarwriter.padding(3),
        tarwriter.header(long_name, mode=0o600, size=1) + b"x" + tarwriter.padding(1),
        tarwriter.header("héllo", mode=0o644, size=0),
        tarwriter.header("link", mode=0o777, kind=tarwriter.SYMLINK, link="t" * 150),
    ]
    got = entries(*parts)
    assert got[0][:5] == ("dir", tarfile.DIRTYPE, 0o755, 0, 1_700_000_000)
    assert got[1] == ("dir/a.txt", tarfile.REGTYPE, 0o640, 3, 5, "", 0, 0, b"abc")
    assert got[2][0] == long_name and got[2][-1] == b"x"
    assert got[3][0] == "héllo"
    assert got[4][1] == tarfile.SYMTYPE and got[4][5] == "t" * 150


def test_padding():
    assert tarwriter.padding(0) == b"" and len(tarwriter.padding(1)) == 511
    assert len(tarwriter.padding(512)) == 0
