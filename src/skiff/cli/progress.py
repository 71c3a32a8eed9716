"""Rendering of JSON progress streams (pull, load) as docker's jsonmessage does.

On a terminal each layer id keeps its own line, rewritten in place with cursor moves; elsewhere
progress bars are left out and every other message is one line. An `error` message ends the
stream with `StreamError`.
"""

from __future__ import annotations

import time

from skiff.cli.format import human_size
from skiff.errors import SkiffError


class StreamError(SkiffError):
    """An `{"error": ...}` message inside a 200 progress stream."""


def _go_duration(seconds: int) -> str:
    """Go's `time.Duration.String` for whole seconds: 75 -> "1m15s"."""
    if seconds <= 0:
        return "0s"
    hours, rem = divmod(seconds, 3600)
    minutes, secs = divmod(rem, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def progress_bar(detail: dict, width: int, now: float | None = None) -> str:
    """`JSONProgress.String`: "[=====>     ]  1.2MB/4.26MB 2s" (bar only when width > 110)."""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    units = detail.get("units") or ""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        if units:
            return f"{current:>8} {units}"
        return f"{human_size(current, 4):>8}"
    percentage = min(int(current / total * 100) // 2, 50)
    bar = ""
    if width > 110:
        bar = "[" + "=" * percentage + ">" + " " * max(50 - percentage, 0) + "] "
    if detail.get("hidecounts"):
        numbers = ""
    elif units:
        numbers = f"{current:>8}/{total} {units}" if current <= total else f"{current} {units}"
    else:
        numbers = f"{human_size(current, 4):>8}/{human_size(total, 4)}"
        if current > total:
            numbers = f"{human_size(current, 4):>8}"
    left = ""
    start = detail.get("start")
    if current > 0 and start and percentage < 50 and width > 50:
        now = time.time() if now is None else now
        per = (now - start) / current
        left = " " + _go_duration(int((total - current) * per))
    return bar + numbers + left


class ProgressRenderer:
    def __init__(self, out, is_terminal: bool, width: int = 80):
        self.out = out
        self.is_terminal = is_terminal
        self.width = width
        self.lines: dict[str, int] = {}
        self.aux: list = []

    def feed(self, message: dict) -> None:
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            raise StreamError(detail.get("message") or message.get("error") or "unknown error")
        if "aux" in message:
            self.aux.append(message["aux"])
            return
        ident = message.get("id") or ""
        has_progress = "progressDetail" in message and message["progressDetail"] is not None
        diff = 0
        if ident and (has_progress or message.get("progress")):
            line = self.lines.get(ident)
            if line is None:
                line = len(self.lines)
                self.lines[ident] = line
                if self.is_terminal:
                    self.out.write("\n")
            diff = len(self.lines) - line
            if self.is_terminal:
                self.out.write(f"\x1b[{diff}A")
        else:
            self.lines = {}
        self._display(message, has_progress)
        if ident and self.is_terminal and diff:
            self.out.write(f"\x1b[{diff}B")
        self.out.flush()

    def _display(self, message: dict, has_progress: bool) -> None:
        stream = message.get("stream") or ""
        status = message.get("status") or ""
        bar = progress_bar(message.get("progressDetail") or {}, self.width) if has_progress else ""
        endl = ""
        if self.is_terminal and not stream and has_progress:
            self.out.write("\x1b[2K\r")
            endl = "\r"
        elif has_progress and bar:
            return  # no progress bars off a terminal
        text = ""
        if message.get("id"):
            text += f"{message['id']}: "
        if message.get("from"):
            text += f"(from {message['from']}) "
        if has_progress and self.is_terminal:
            text += f"{status} {bar}{endl}"
        elif message.get("progress"):
            text += f"{status} {message['progress']}{endl}"
        elif stream:
            text += f"{stream}{endl}"
        else:
            text += f"{status}{endl}\n"
        self.out.write(text)


def render_stream(messages, out, is_terminal: bool, width: int = 80) -> list:
    """Render every message; the `aux` payloads seen. Raises StreamError on an error message."""
    renderer = ProgressRenderer(out, is_terminal, width)
    for message in messages:
        renderer.feed(message)
    return renderer.aux
