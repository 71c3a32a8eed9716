"""TarStream: tarfile's headers, member data read straight from the stream, Go's end rules."""

import io
import tarfile

import pytest

from skiff.snapshot.tarstream import TarStream


def _tar(members, end=True) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw = out.getvalue()
    if not end:
        raw = raw.rstrip(b"\0")
        raw += b"\0" * (-len(raw) % 512)
    return raw


class Dribble(io.RawIOBase):
    """A pipe-like stream that returns at most 7 bytes per read."""

    def __init__(self, data):
        self.data = memoryview(data)

    def read(self, n=-1):
        n = 7 if n < 0 else min(n, 7)
        out, self.data = bytes(self.data[:n]), self.data[n:]
        return out


def _read_all(stream):
    tar = TarStream(stream)
    out = []
    for info in tar:
        out.append((info.name, b"".join(iter(tar.read, b"")) if info.isreg() else None))
    tar.drain()
    return out


def test_members_and_data_as_tarfile_reads_them():
    long_name = "d/" + "n" * 300 + "/\udcff-not-utf8"
    members = [("d", None), ("d/a", b"x" * 70000), (long_name, b"long"), ("d/empty", b"")]
    raw = _tar(members)
    assert _read_all(io.BytesIO(raw)) == members
    assert _read_all(Dribble(raw)) == members


def test_unread_data_is_skipped():
    tar = TarStream(io.BytesIO(_tar([("a", b"1" * 1000), ("b", b"2")])))
    names = [info.name for info in tar]
    assert names == ["a", "b"]


def test_clean_end_without_zero_blocks_is_the_end():
    raw = _tar([("a", b"abc")], end=False)
    assert _read_all(io.BytesIO(raw)) == [("a", b"abc")]


@pytest.mark.parametrize("cut", [100, 512 + 10, 512 + 600, 2 * 512 + 300])
def test_truncation_is_an_error(cut):
    raw = _tar([("a", b"q" * 700), ("b", b"r" * 10)])
    with pytest.raises(tarfile.ReadError):
        _read_all(io.BytesIO(raw[:cut]))


def test_empty_and_garbage_are_errors():
    with pytest.raises(tarfile.ReadError):
        _read_all(io.BytesIO(b""))
    with pytest.raises(tarfile.ReadError):
        _read_all(io.BytesIO(b"not a tar" * 100))
