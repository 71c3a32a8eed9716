"""Time as Docker writes it: RFC 3339 with nanoseconds, and go-units' human durations."""

from __future__ import annotations

import calendar
import re
import time


def rfc3339_nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def parse_rfc3339(text: str) -> float:
    """RFC 3339 (UTC, any fraction) to Unix seconds; 0.0 for docker's zero time."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)",
                     text or "")
    if not m:
        raise ValueError(f"invalid timestamp {text!r}")
    whole = calendar.timegm(tuple(int(g) for g in m.groups()[:6]) + (0, 0, 0))
    offset = 0
    if m.group(8) != "Z":
        sign = -1 if m.group(8)[0] == "-" else 1
        offset = sign * (int(m.group(8)[1:3]) * 3600 + int(m.group(8)[4:6]) * 60)
    return max(0.0, whole + float(m.group(7) or 0) - offset)


def human_duration(seconds: float) -> str:
    """go-units HumanDuration, which `docker ps` uses for STATUS and CREATED."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"
