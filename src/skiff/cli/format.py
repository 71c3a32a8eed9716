"""Pure formatting helpers with the docker CLI's output: durations ("Up 3 seconds",
"About a minute ago"), sizes ("4.26MB"), tables (Go's tabwriter as docker configures it),
truncated ids, quoted commands and published ports."""

from __future__ import annotations

import time

# -- durations (go-units HumanDuration) ------------------------------------------------------


from skiff.timefmt import human_duration  # noqa: E402  (go-units HumanDuration)


def ago(timestamp: float, now: float | None = None) -> str:
    """`Created` column text for a Unix timestamp."""
    now = time.time() if now is None else now
    return f"{human_duration(now - timestamp)} ago"


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch for Docker's RFC 3339 times (nanosecond fraction allowed);
    None for Go's zero time or anything unparsable."""
    from skiff.timefmt import parse_rfc3339 as parse

    if not text or text.startswith("0001-01-01"):
        return None
    try:
        return parse(text.strip())
    except ValueError:
        return None


def container_status(state: dict, now: float | None = None) -> str:
    """`State` of `GET /containers/{id}/json` as the STATUS column (`Up 3 seconds`,
    `Exited (0) 2 minutes ago`, `Created`) for daemons whose list lacks `Status`."""
    now = time.time() if now is None else now
    started = parse_rfc3339(state.get("StartedAt", ""))
    finished = parse_rfc3339(state.get("FinishedAt", ""))
    if state.get("Running"):
        text = f"Up {human_duration(now - started)}" if started else "Up"
        if state.get("Paused"):
            text += " (Paused)"
        elif state.get("Restarting"):
            text = f"Restarting ({state.get('ExitCode', 0)}) {human_duration(now - (finished or now))} ago"
        health = (state.get("Health") or {}).get("Status")
        if health and health != "none":
            text += f" ({health})" if health != "starting" else " (health: starting)"
        return text
    if state.get("Status") == "removing":
        return "Removal In Progress"
    if state.get("Dead") or state.get("Status") == "dead":
        return "Dead"
    if finished is None and not started:
        return "Created"
    when = f" {human_duration(now - finished)} ago" if finished else ""
    return f"Exited ({state.get('ExitCode', 0)}){when}"


# -- sizes (go-units) ------------------------------------------------------------------------

_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _scaled(size: float, base: float, units: list[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def _go_g(value: float, precision: int) -> str:
    """Go's `%.Ng`, which is C's."""
    return "%.*g" % (precision, value)


def human_size(size: float, precision: int = 3) -> str:
    """`HumanSizeWithPrecision` (decimal units): 4264000 -> "4.26MB" (docker images)."""
    value, unit = _scaled(float(size), 1000.0, _DECIMAL)
    return f"{_go_g(value, precision)}{unit}"


def bytes_size(size: float) -> str:
    """`BytesSize` (binary units, 4 significant digits): "7.637GiB" (docker info)."""
    value, unit = _scaled(float(size), 1024.0, _BINARY)
    return f"{_go_g(value, 4)}{unit}"


# -- tables (text/tabwriter with minwidth 10, tabwidth 1, padding 3) --------------------------


def table(rows: list[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Every column but the last padded to max(minwidth, widest cell + padding)."""
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    lines = []
    for row in rows:
        parts = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        parts.append(row[-1] if row else "")
        lines.append("".join(parts))
    return "\n".join(lines) + "\n"


# -- ids, names, commands --------------------------------------------------------------------


def short_id(ident: str, trunc: bool = True) -> str:
    """`TruncateID`: strip the algorithm and keep 12 hex digits."""
    if not trunc:
        return ident
    if ":" in ident:
        ident = ident.split(":", 1)[1]
    return ident[:12]


def ellipsis(text: str, width: int) -> str:
    """Cut `text` to `width` characters, the last one "…"."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return text[0]
    return text[: width - 1] + "…"


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """`strconv.Quote`: double quotes, Go escapes, printable non-ASCII kept."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def container_names(names: list[str] | None, trunc: bool = True) -> str:
    """NAMES column: names without the leading "/"; link names (holding another "/") only
    without truncation."""
    out = []
    for name in names or []:
        bare = name[1:] if name.startswith("/") else name
        if trunc and "/" in bare:
            continue
        out.append(bare)
    return ",".join(out)


# -- ports (docker's DisplayablePorts) -------------------------------------------------------


def display_ports(ports: list[dict] | None) -> str:
    """`0.0.0.0:8080->80/tcp, :::8080->80/tcp, 443/tcp`; consecutive ports collapse to ranges
    (`8000-8002->8000-8002/tcp`)."""
    groups: dict[str, list[tuple[int, int]]] = {}
    order: list[str] = []
    for port in ports or []:
        proto = port.get("Type", "tcp")
        private = int(port.get("PrivatePort", 0))
        public = port.get("PublicPort")
        ip = port.get("IP", "")
        if public:
            host = f"[{ip}]" if ":" in ip else ip
            key = f"{host}:|{proto}"
            pair = (int(public), private)
        else:
            key = f"|{proto}"
            pair = (private, private)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(pair)

    def span(lo: int, hi: int) -> str:
        return str(lo) if lo == hi else f"{lo}-{hi}"

    items: list[tuple[int, str]] = []
    for key in order:
        prefix, proto = key.split("|")
        pairs = sorted(set(groups[key]))
        start = prev = pairs[0]
        runs = []
        for pair in pairs[1:]:
            if pair[0] == prev[0] + 1 and pair[1] == prev[1] + 1:
                prev = pair
                continue
            runs.append((start, prev))
            start = prev = pair
        runs.append((start, prev))
        for first, last in runs:
            if prefix:
                text = f"{prefix}{span(first[0], last[0])}->{span(first[1], last[1])}/{proto}"
            else:
                text = f"{span(first[0], last[0])}/{proto}"
            items.append((first[1], text))
    items.sort(key=lambda item: item[0])
    return ", ".join(text for _, text in items)
