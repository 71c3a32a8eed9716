import struct

import pytest

from skiff.wire.errors import ProtocolError
from skiff.wire.framing import (
    STDERR, STDIN, STDOUT, SYSTEMERR, FrameDecoder, encode_frame,
)


def test_encode_frame():
    assert encode_frame(STDOUT, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert encode_frame(STDERR, b"") == b"\x02" + b"\x00" * 7
    assert encode_frame(STDIN, bytearray(b"x"))[8:] == b"x"
    assert len(encode_frame(STDOUT, b"a" * 70000)) == 70008
    assert encode_frame(STDOUT, b"a" * 70000)[4:8] == struct.pack(">I", 70000)


@pytest.mark.parametrize("stream", [-1, 4, 255, "1", None])
def test_encode_frame_rejects_bad_streams(stream):
    with pytest.raises(ProtocolError) as info:
        encode_frame(stream, b"x")
    assert info.value.remote is False


def test_round_trip_whole_and_bytewise():
    frames = [(STDOUT, b"out\n"), (STDERR, b"err\n"), (STDOUT, b""), (STDIN, b"\x00" * 9),
              (SYSTEMERR, b"log driver failed")]
    data = b"".join(encode_frame(s, p) for s, p in frames)
    assert FrameDecoder().feed(data) == frames
    decoder, got = FrameDecoder(), []
    for i in range(len(data)):
        got += decoder.feed(data[i:i + 1])
    assert got == frames and decoder.at_eof()
    decoder.close()


def test_partial_frames_are_held():
    decoder = FrameDecoder()
    data = encode_frame(STDOUT, b"hello")
    assert decoder.feed(data[:3]) == []
    assert not decoder.at_eof() and decoder.buffered == 3
    assert decoder.feed(data[3:10]) == []
    assert decoder.buffered == 10
    assert decoder.feed(data[10:] + data[:8]) == [(STDOUT, b"hello")]
    assert not decoder.at_eof()
    assert decoder.feed(b"hello") == [(STDOUT, b"hello")]
    assert decoder.at_eof() and decoder.buffered == 0


@pytest.mark.parametrize("truncated", [
    b"\x01", b"\x01\x00\x00\x00\x00\x00\x00", b"\x01\x00\x00\x00\x00\x00\x00\x05abc",
])
def test_truncated_stream_is_reported_at_close(truncated):
    decoder = FrameDecoder()
    assert decoder.feed(truncated) == []
    with pytest.raises(ProtocolError, match="ended inside a frame") as info:
        decoder.close()
    assert info.value.remote is True


@pytest.mark.parametrize("header", [
    b"\x04\x00\x00\x00\x00\x00\x00\x01",   # unknown stream
    b"\xff\x00\x00\x00\x00\x00\x00\x01",
    b"\x01\x01\x00\x00\x00\x00\x00\x01",   # padding must be zero
    b"\x01\x00\x00\x07\x00\x00\x00\x01",
    b"HTTP/1.1",                           # an HTTP response where frames were expected
    b"{\"messa",                           # a JSON error body
])
def test_bad_headers(header):
    with pytest.raises(ProtocolError, match="bad stream frame header") as info:
        FrameDecoder().feed(header + b"x")
    assert info.value.remote is True


def test_huge_announced_size_is_refused_before_buffering():
    decoder = FrameDecoder(max_frame=1024)
    assert decoder.feed(encode_frame(STDOUT, b"a" * 1024)) == [(STDOUT, b"a" * 1024)]
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        decoder.feed(b"\x01\x00\x00\x00\x00\x00\x04\x01")
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        FrameDecoder().feed(b"\x01\x00\x00\x00\xff\xff\xff\xff")


def test_frame_after_good_frames_in_one_chunk():
    data = encode_frame(STDOUT, b"ok") + b"\x09" + b"\x00" * 7
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(data)


def test_many_small_frames_in_one_feed_are_fast():
    data = encode_frame(STDOUT, b"x") * 20_000
    frames = FrameDecoder().feed(data)
    assert len(frames) == 20_000 and frames[-1] == (STDOUT, b"x")


def test_large_frame_in_small_chunks():
    payload = bytes(range(256)) * 4096  # 1 MiB
    data = encode_frame(STDERR, payload)
    decoder, got = FrameDecoder(), []
    for i in range(0, len(data), 4093):
        got += decoder.feed(data[i:i + 4093])
    assert got == [(STDERR, payload)]
