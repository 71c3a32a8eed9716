"""JSON message streams: pull/push/load/build progress, as dockerd writes them.

Building messages: `progress_message`, `stream_message`, `error_message`, `aux_message`,
then `encode` each into one line. Reading them: `JSONStreamDecoder`, which takes bytes in
any chunking and accepts newline-separated objects as well as objects written back to back
(`}{`), as Go's json.Decoder does.
"""

import json
import re
from typing import Any

from skiff.wire.errors import ProtocolError

DEFAULT_MAX_LINE = 16 * 1024 * 1024  # one message; build output lines can be long

# Go's units.HumanSize: decimal multiples, four significant digits.
_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """`2155000` -> `"2.155MB"`, as docker prints sizes."""
    unit = 0
    while size >= 1000 and unit < len(_SIZE_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{size:.4g}{_SIZE_UNITS[unit]}"


def render_progress_bar(current: int, total: int, width: int = 50) -> str:
    """`[=========>        ]`: `width` cells of `=` up to the arrow; "" without a total."""
    if total <= 0:
        return ""
    filled = max(0, min(width, current * width // total))
    return "[" + "=" * filled + ">" + " " * (width - filled) + "]"


def render_progress(current: int | None, total: int | None) -> str:
    """The `progress` field dockerd sends: bar and sizes, e.g.
    `[=====>        ]  1.049MB/4.194MB`."""
    current, total = current or 0, total or 0
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    numbers = f"{human_size(current):>8}"
    if current <= total:  # docker hides a total that a wonky current has overtaken
        numbers += f"/{human_size(total)}"
    return render_progress_bar(current, total) + " " + numbers


def progress_message(status: str, id: str | None = None, current: int | None = None,
                     total: int | None = None) -> dict:
    """`{"status": ..., "progressDetail": {...}, "progress": "[==> ]...", "id": ...}`; the
    detail and bar only when a count is given."""
    message: dict[str, Any] = {"status": status}
    if current is not None or total is not None:
        detail = {}
        if current is not None:
            detail["current"] = current
        if total is not None:
            detail["total"] = total
        message["progressDetail"] = detail
        bar = render_progress(current, total)
        if bar:
            message["progress"] = bar
    if id is not None:
        message["id"] = id
    return message


def stream_message(text: str) -> dict:
    return {"stream": text}


def error_message(text: str) -> dict:
    """An error inside a 200 stream: the CLI prints it and exits non-zero."""
    return {"errorDetail": {"message": text}, "error": text}


def aux_message(obj: Any) -> dict:
    return {"aux": obj}


def encode(obj: Any) -> bytes:
    """One compact JSON line. dockerd ends each with CRLF; readers treat both the same."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\r\n"


# Where a JSON object may end: outside strings only braces, brackets and quotes matter;
# inside a string only quotes and escapes. Scanning by regex skips everything else in C.
_OUTSIDE_STRING = re.compile(rb'["{}\[\]]')
_INSIDE_STRING = re.compile(rb'["\\]')
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_CLOSER = {ord("{"): ord("}"), ord("["): ord("]")}


class JSONStreamDecoder:
    """Incremental decoder of a stream of JSON objects; `feed(bytes) -> list[dict]`.

    Buffers at most `max_line` bytes of one unfinished object. Anything but an object at
    the top level, malformed JSON or an over-long object raises ProtocolError(remote=True).
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE):
        self.max_line = max_line
        self._buffer = bytearray()
        # Scan state of the unfinished object at the front of the buffer, kept across
        # feeds so that a large object arriving in small chunks is scanned once.
        self._pos = 0
        self._open: list[int] = []  # the brackets still open, to catch `[}` at once
        self._in_string = False

    def feed(self, data: bytes) -> list[dict]:
        self._buffer += data
        buffer = self._buffer
        messages: list[dict] = []
        start = 0
        while True:
            if not self._open:
                start = _WHITESPACE.match(buffer, start).end()
                if start == len(buffer):
                    break
                if buffer[start] != ord("{"):
                    found = bytes(buffer[start:start + 20])
                    raise ProtocolError(f"expected a JSON object in the stream, got {found!r}")
                self._pos = start
                fast = self._try_line(buffer, start)
                if fast is not None:
                    message, start = fast
                    messages.append(message)
                    continue
            end = self._scan(buffer)
            if end is None:
                if len(buffer) - start > self.max_line:
                    raise ProtocolError(
                        f"JSON message longer than the limit of {self.max_line} bytes")
                break
            if end - start > self.max_line:
                raise ProtocolError(
                    f"JSON message longer than the limit of {self.max_line} bytes")
            messages.append(self._decode(buffer[start:end]))
            start = end
        del buffer[:start]
        self._pos -= start
        return messages

    def _scan(self, buffer: bytearray) -> int | None:
        """Advance over the object; return the offset just past it, or None if unfinished."""
        pos = self._pos
        while True:
            if self._in_string:
                match = _INSIDE_STRING.search(buffer, pos)
                if match is None:
                    # max(): an escape at the very end already skipped the next byte.
                    self._pos = max(pos, len(buffer))
                    return None
                if match.group() == b"\\":
                    pos = match.end() + 1  # may point past the end until the next feed
                    continue
                self._in_string = False
                pos = match.end()
                continue
            match = _OUTSIDE_STRING.search(buffer, pos)
            if match is None:
                self._pos = len(buffer)
                return None
            pos = match.end()
            char = match.group()
            if char == b'"':
                self._in_string = True
            elif char in (b"{", b"["):
                self._open.append(char[0])
            else:
                if _CLOSER[self._open.pop()] != char[0]:
                    raise ProtocolError(f"malformed JSON message: unbalanced {char.decode()}")
                if not self._open:
                    self._pos = pos
                    return pos

    def _try_line(self, buffer: bytearray, start: int) -> tuple[dict, int] | None:
        """Fast path for the usual one-object-per-line stream: decode up to the newline in
        one call. None when there is no full line or it is not exactly one object (`}{`,
        pretty-printed JSON), and the scanner takes over."""
        newline = buffer.find(b"\n", start, start + self.max_line + 1)
        if newline < 0:
            return None
        try:
            message = json.loads(bytes(buffer[start:newline]))
        except ValueError:
            return None
        return (message, newline + 1) if isinstance(message, dict) else None

    @staticmethod
    def _decode(raw: bytearray) -> dict:
        try:
            return json.loads(bytes(raw))
        except ValueError as exc:
            raise ProtocolError(f"malformed JSON message: {exc}") from None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def at_eof(self) -> bool:
        """True when the stream may end here: no partial object is buffered."""
        return not self._open and not self._buffer.strip()

    def close(self) -> None:
        """Call at end of stream: raises ProtocolError if it ended inside an object."""
        if not self.at_eof():
            raise ProtocolError(f"stream ended inside a JSON message ({self.buffered} bytes)")
