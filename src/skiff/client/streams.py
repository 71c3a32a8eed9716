"""Streams that outlive a request: the hijacked connection of attach and exec, and the two
decoders run over a body as it arrives (stdout/stderr frames, JSON progress messages).

The decoders themselves live in skiff.wire (sans-IO); this module only feeds them bytes.
"""

from __future__ import annotations

import _socket  # not `socket`: see transport.py

from skiff.client.errors import ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:   # annotations only: collections' import costs every command ~1 ms
    from collections.abc import Iterable, Iterator

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def iter_frames(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(stream, payload) pairs from the 8-byte-header framing; stream 1 stdout, 2 stderr."""
    from skiff.wire.errors import ProtocolError as WireError
    from skiff.wire.framing import FrameDecoder

    decoder = FrameDecoder()
    for chunk in chunks:
        try:
            frames = decoder.feed(chunk)
        except WireError as exc:
            raise ProtocolError(exc.message) from exc
        yield from frames


def iter_json(chunks: Iterable[bytes]) -> Iterator[dict]:
    """Objects from a newline-delimited (or concatenated) JSON message stream."""
    from skiff.wire.errors import ProtocolError as WireError
    from skiff.wire.progress import JSONStreamDecoder

    decoder = JSONStreamDecoder()
    for chunk in chunks:
        try:
            messages = decoder.feed(chunk)
        except WireError as exc:
            raise ProtocolError(exc.message) from exc
        yield from messages


class HijackedStream:
    """The raw two-way byte stream left after `101 UPGRADED`.

    Bytes the client already read past the response head are kept and returned first by
    `recv`; while `pending` is true a caller multiplexing with select() must call `recv`
    before waiting on `fileno()`. `close_write()` half-closes (the container sees EOF on its
    stdin) while output keeps flowing.

    `multiplexed` is True when the daemon said the stream is framed (no tty), False when it
    said raw (tty), None when it did not say.
    """

    def __init__(self, sock: socket.socket, buffered: bytes = b"", headers: dict | None = None):
        self.sock = sock
        self._buffered = buffered
        self.headers = headers or {}
        content_type = self.headers.get("content-type", "")
        if MULTIPLEXED_STREAM in content_type:
            self.multiplexed: bool | None = True
        elif RAW_STREAM in content_type:
            self.multiplexed = False
        else:
            self.multiplexed = None
        self._write_closed = False
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def pending(self) -> bool:
        """Bytes to read that select() cannot see: ours, or decrypted ones TLS holds."""
        if self._buffered:
            return True
        tls_pending = getattr(self.sock, "pending", None)
        return bool(tls_pending and tls_pending())

    def recv(self, size: int = 65536) -> bytes:
        """Up to `size` bytes; b"" at end of stream (also after a reset by the peer)."""
        if self._buffered:
            data, self._buffered = self._buffered[:size], self._buffered[size:]
            return data
        try:
            return self.sock.recv(size)
        except ConnectionResetError:
            return b""

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Half-close: no more input from us; the output side stays open."""
        if self._write_closed or self.closed:
            return
        self._write_closed = True
        try:
            self.sock.shutdown(_socket.SHUT_WR)  # over TLS: close_notify (client/tls.py)
        except OSError:
            pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()

    def iter_chunks(self, size: int = 65536) -> Iterator[bytes]:
        while True:
            data = self.recv(size)
            if not data:
                return
            yield data

    def iter_frames(self) -> Iterator[tuple[int, bytes]]:
        return iter_frames(self.iter_chunks())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
