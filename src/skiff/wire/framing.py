"""Docker's multiplexed stdio stream (attach, exec start, logs without a tty).

Each frame is an 8-byte header `[stream, 0, 0, 0, size as uint32 big-endian]` followed by
`size` bytes of payload. With a tty the stream is raw bytes and none of this applies.
"""

import struct

from skiff.wire.errors import ProtocolError

STDIN, STDOUT, STDERR = 0, 1, 2
# dockerd sends errors that happen mid-stream (e.g. a failing log driver) on stream 3.
SYSTEMERR = 3
STREAMS = frozenset({STDIN, STDOUT, STDERR, SYSTEMERR})

HEADER_SIZE = 8
MAX_PAYLOAD = 0xFFFFFFFF  # what the uint32 size field can express
DEFAULT_MAX_FRAME = 16 * 1024 * 1024  # dockerd writes 32 KiB frames; leave ample room
_HEADER = struct.Struct(">B3xI")


def encode_frame(stream: int, data: bytes) -> bytes:
    if stream not in STREAMS:
        raise ProtocolError(f"invalid stream {stream!r}", remote=False)
    if len(data) > MAX_PAYLOAD:
        raise ProtocolError(f"frame of {len(data)} bytes is too large", remote=False)
    return _HEADER.pack(stream, len(data)) + bytes(data)


class FrameDecoder:
    """Incremental decoder: `feed` bytes as they arrive, get complete frames back.

    Buffers at most one header plus `max_frame` bytes of payload; a larger announced size,
    an unknown stream id or non-zero padding raises ProtocolError(remote=True).
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME):
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._want: tuple[int, int] | None = None  # (stream, size) of the frame being read

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        offset = 0
        buffer = self._buffer
        while True:
            if self._want is None:
                if len(buffer) - offset < HEADER_SIZE:
                    break
                self._want = self._parse_header(buffer, offset)
                offset += HEADER_SIZE
            stream, size = self._want
            if len(buffer) - offset < size:
                break
            frames.append((stream, bytes(buffer[offset:offset + size])))
            offset += size
            self._want = None
        # One deletion per feed keeps many small frames linear rather than quadratic.
        del buffer[:offset]
        return frames

    def _parse_header(self, buffer: bytearray, offset: int) -> tuple[int, int]:
        header = bytes(buffer[offset:offset + HEADER_SIZE])
        stream, size = _HEADER.unpack(header)
        if stream not in STREAMS or header[1:4] != b"\0\0\0":
            raise ProtocolError(f"bad stream frame header {header.hex()}")
        if size > self.max_frame:
            raise ProtocolError(
                f"stream frame of {size} bytes exceeds the limit of {self.max_frame}")
        return stream, size

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held (header included)."""
        return len(self._buffer) + (HEADER_SIZE if self._want else 0)

    def at_eof(self) -> bool:
        """True when the stream may end here: no partial frame is buffered."""
        return self._want is None and not self._buffer

    def close(self) -> None:
        """Call at end of stream: raises ProtocolError if it ended inside a frame."""
        if not self.at_eof():
            raise ProtocolError(f"stream ended inside a frame ({self.buffered} bytes buffered)")
