"""Docker's json-file log format: one JSON object per line of container output.

Each record is `{"log": "text\\n", "stream": "stdout", "time": "2026-11-23T05:09:09.123456789Z"}`,
with `"attrs": {...}` before "time" when the container's log options ask for labels or
environment variables in every record (docker's `--log-opt labels=...,env=...`).
Output is cut at newlines; a line longer than `MAX_PARTIAL` is written in pieces without the
newline, as docker does, so one endless line cannot grow our memory.
"""

from __future__ import annotations

import json
import os

from skiff.timefmt import rfc3339_nano

MAX_PARTIAL = 16 * 1024
STREAM_NAMES = {1: "stdout", 2: "stderr"}


def encode_record(stream: int, data: bytes, ns: int | None = None,
                  attrs: dict | None = None) -> bytes:
    record = {"log": data.decode("utf-8", "replace"), "stream": STREAM_NAMES[stream]}
    if attrs:
        record["attrs"] = attrs
    record["time"] = rfc3339_nano(ns)
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


class JsonFileLog:
    """Appends a container's output to its log file; `write` takes whatever the pipe gave.

    With `max_size`, the file is rotated before it would grow past it: `log` becomes `log.1`,
    `log.1` becomes `log.2`, ... and the oldest beyond `max_files` goes (docker's `max-size`
    and `max-file`; with one file, the log starts again empty)."""

    def __init__(self, path: str, max_size: int | None = None, max_files: int = 1,
                 attrs: dict | None = None):
        self.path = path
        self.attrs = attrs or None
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._partial: dict[int, bytes] = {1: b"", 2: b""}

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: int, data: bytes) -> None:
        buffered = self._partial[stream] + data
        lines = buffered.split(b"\n")
        rest = lines.pop()
        attrs = self.attrs
        out = [encode_record(stream, line + b"\n", attrs=attrs) for line in lines]
        while len(rest) > MAX_PARTIAL:
            out.append(encode_record(stream, rest[:MAX_PARTIAL], attrs=attrs))
            rest = rest[MAX_PARTIAL:]
        self._partial[stream] = rest
        if out:
            self._append(out)

    def _append(self, records: list[bytes]) -> None:
        if self.max_size is None:
            data = b"".join(records)
            os.write(self._fd, data)
            self._size += len(data)
            return
        batch: list[bytes] = []
        size = 0
        for record in records:  # whole records only: a reader never sees half a line
            if self._size + size + len(record) > self.max_size and (self._size + size) > 0:
                if batch:
                    os.write(self._fd, b"".join(batch))
                    self._size += size
                    batch, size = [], 0
                self._rotate()
            batch.append(record)
            size += len(record)
        if batch:
            os.write(self._fd, b"".join(batch))
            self._size += size

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_files > 1:
            for n in range(self.max_files - 1, 0, -1):
                older = f"{self.path}.{n}"
                if os.path.exists(older):
                    if n + 1 < self.max_files:
                        os.replace(older, f"{self.path}.{n + 1}")
                    else:
                        os.unlink(older)
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        if self._fd < 0:
            return
        tail = [encode_record(s, data, attrs=self.attrs) for s, data in self._partial.items()
                if data]
        if tail:
            self._append(tail)
        os.close(self._fd)
        self._fd = -1


def parse_size(text: str) -> int:
    """docker's `max-size`: bytes, or with k, m, g (powers of 1024), any case."""
    text = str(text).strip().lower()
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    number, unit = text, ""
    if text and text[-1] == "b":
        text = text[:-1]
    if text and text[-1] in units:
        number, unit = text[:-1], text[-1]
    try:
        value = float(number) * units.get(unit, 1)
    except ValueError:
        raise ValueError(f"invalid size: {text!r}") from None
    if value <= 0:
        raise ValueError(f"invalid size: {text!r}")
    return int(value)
