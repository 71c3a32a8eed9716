"""Reading a container's json-file log back: filters as `docker logs` has them, and follow."""

from __future__ import annotations

import asyncio
import json
import os
import re
from typing import AsyncIterator, Callable

from skiff.timefmt import parse_rfc3339

STREAMS = {"stdout": 1, "stderr": 2}
FOLLOW_POLL = 0.05
BATCH = 8192  # records per batch handed to the reader


def parse_timestamp(text: str) -> float:
    """RFC 3339 (with nanoseconds) or Unix seconds (`1700000000.5`) to Unix seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    return parse_rfc3339(text)


def record_attributes(log_opts: dict, labels: dict | None, env: list | None) -> dict | None:
    """What docker's json-file adds to every record as "attrs": the container labels named
    by the `labels` log option (or matching `labels-regex`), the environment variables named
    by `env` (or matching `env-regex`). None when nothing is asked or found."""
    import re as regex

    attrs: dict[str, str] = {}
    labels = labels or {}
    variables = dict(item.split("=", 1) for item in env or [] if "=" in item)
    for option, source in (("labels", labels), ("env", variables)):
        for key in filter(None, (log_opts.get(option) or "").split(",")):
            if key in source:
                attrs[key] = source[key]
        pattern = log_opts.get(option + "-regex")
        if pattern:
            try:
                matcher = regex.compile(pattern)
            except regex.error:
                continue
            attrs.update({k: v for k, v in source.items() if matcher.search(k)})
    return attrs or None


def details_prefix(attrs: dict | None) -> str:
    """`logs --details`: the record's attributes as docker prints them before each line,
    key=value pairs, query-escaped, joined by commas, then a space."""
    if not attrs:
        return ""
    from urllib.parse import quote_plus

    return ",".join(f"{quote_plus(k)}={quote_plus(str(v))}"
                    for k, v in sorted(attrs.items())) + " "


def _entry(record: dict, details: bool) -> tuple[int, str, str]:
    text = record["log"]
    if details:
        text = details_prefix(record.get("attrs")) + text
    return STREAMS[record["stream"]], text, record["time"]


def decode_line(line: bytes, details: bool = False) -> tuple[int, str, str] | None:
    try:
        return _entry(json.loads(line), details)
    except (ValueError, KeyError, TypeError):
        return None  # a torn last line while the monitor writes it


def decode_lines(lines: list[bytes], details: bool = False) -> list[tuple[int, str, str]]:
    """Many records at once: one json.loads over the whole batch (the per-call overhead of
    json.loads, not the parsing, is what costs with short lines); line by line only if the
    batch holds a torn or foreign line."""
    if not lines:
        return []
    try:
        batch = json.loads(b"[" + b",".join(lines) + b"]")
        if details:
            return [_entry(r, True) for r in batch]
        return [(STREAMS[r["stream"]], r["log"], r["time"]) for r in batch]
    except (ValueError, KeyError, TypeError):
        return [r for r in (decode_line(line, details) for line in lines) if r]


def select(records, *, stdout: bool, stderr: bool, since: float | None, until: float | None):
    for stream, text, stamp in records:
        if (stream == 1 and not stdout) or (stream == 2 and not stderr):
            continue
        if since is not None or until is not None:
            t = parse_timestamp(stamp)
            if since is not None and t < since:
                continue
            if until is not None and t > until:
                continue
        yield stream, text, stamp


MERGE_LIMIT = 64 * 1024  # bytes of consecutive same-stream lines sent as one piece


def render_batch(records, timestamps: bool) -> list[tuple[int, bytes]]:
    """Records to (stream, bytes) pieces; without timestamps, consecutive lines of one stream
    become one piece, so a reader frames and writes a few large pieces, not every line."""
    if timestamps:
        return [render(*r, True) for r in records]
    pieces: list[tuple[int, bytes]] = []
    texts: list[str] = []
    current, size = None, 0
    for stream, text, _ in records:
        if stream != current or size > MERGE_LIMIT:
            if texts:
                pieces.append((current, "".join(texts).encode()))
            texts, current, size = [], stream, 0
        texts.append(text)
        size += len(text)
    if texts:
        pieces.append((current, "".join(texts).encode()))
    return pieces


def render(stream: int, text: str, stamp: str, timestamps: bool) -> tuple[int, bytes]:
    data = text.encode()
    if timestamps:
        data = stamp.encode() + b" " + data
    return stream, data


def rotated_files(path: str) -> list[str]:
    """`log.N` ... `log.1`: the rotated files, oldest first."""
    found = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        found.append(f"{path}.{n}")
        n += 1
    return list(reversed(found))


async def read_log(path: str, *, stdout=True, stderr=True, tail: int | None = None,
                   since: float | None = None, until: float | None = None,
                   timestamps: bool = False, follow: bool = False, details: bool = False,
                   still_running: Callable[[], bool] = lambda: False
                   ) -> AsyncIterator[list[tuple[int, bytes]]]:
    """Yields batches of (stream, bytes) from the log and its rotated files (batches, so that
    a reader can send them in few writes); with `follow`, keeps going (across rotations)
    until the container has stopped and everything it wrote is read."""
    lines: list[bytes] = []
    for older in rotated_files(path):
        try:
            with open(older, "rb") as f:
                lines += f.read().splitlines(keepends=True)
        except FileNotFoundError:
            pass  # rotated away while we read
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        f = None
    if f is not None:
        lines += f.read().splitlines(keepends=True)
    pending = b""
    if lines and not lines[-1].endswith(b"\n"):
        pending = lines.pop()
    records = decode_lines([line.rstrip(b"\n") for line in lines if line.strip()], details)
    chosen = list(select(records, stdout=stdout, stderr=stderr, since=since, until=until))
    if tail is not None and tail >= 0:
        chosen = chosen[-tail:] if tail else []
    for start in range(0, len(chosen), BATCH):
        yield render_batch(chosen[start:start + BATCH], timestamps)
    if not follow:
        if f is not None:
            f.close()
        return
    try:
        while True:
            running = still_running()
            chunk = f.read() if f is not None else b""
            if chunk:
                data = pending + chunk
                parts = data.split(b"\n")
                pending = parts.pop()
                records = decode_lines([line for line in parts if line.strip()], details)
                batch = render_batch(select(records, stdout=stdout, stderr=stderr,
                                            since=since, until=until), timestamps)
                if batch:
                    yield batch
                continue
            if _rotated(f, path):
                f.close()
                f, pending = open(path, "rb"), b""  # the writer moved on to a new file
                continue
            if not running:
                return
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        if f is not None:
            f.close()


def _rotated(f, path: str) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    if f is None:
        return True
    mine = os.fstat(f.fileno())
    return (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev)


def log_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
