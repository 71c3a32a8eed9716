"""Docker's json-file log format: one JSON object per line of container output.

Each record is `{"log": "text\\n", "stream": "stdout", "time": "2026-11-23T05:09:09.123456789Z"}`.
Output is cut at newlines; a line longer than `MAX_PARTIAL` is written in pieces without the
newline, as docker does, so one endless line cannot grow our memory.
"""

from __future__ import annotations

import json
import os

from skiff.timefmt import rfc3339_nano

MAX_PARTIAL = 16 * 1024
STREAM_NAMES = {1: "stdout", 2: "stderr"}


def encode_record(stream: int, data: bytes, ns: int | None = None) -> bytes:
    record = {"log": data.decode("utf-8", "replace"), "stream": STREAM_NAMES[stream],
              "time": rfc3339_nano(ns)}
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


class JsonFileLog:
    """Appends a container's output to its log file; `write` takes whatever the pipe gave."""

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._partial: dict[int, bytes] = {1: b"", 2: b""}

    def write(self, stream: int, data: bytes) -> None:
        buffered = self._partial[stream] + data
        lines = buffered.split(b"\n")
        rest = lines.pop()
        out = [encode_record(stream, line + b"\n") for line in lines]
        while len(rest) > MAX_PARTIAL:
            out.append(encode_record(stream, rest[:MAX_PARTIAL]))
            rest = rest[MAX_PARTIAL:]
        self._partial[stream] = rest
        if out:
            os.write(self._fd, b"".join(out))

    def close(self) -> None:
        if self._fd < 0:
            return
        tail = [encode_record(s, data) for s, data in self._partial.items() if data]
        if tail:
            os.write(self._fd, b"".join(tail))
        os.close(self._fd)
        self._fd = -1
