"""`ps`, `rm`, `logs`, `wait`, `stop`, `kill`."""

from __future__ import annotations

import time

from skiff.cli.context import StatusError


def filters_param(values: list[str]) -> str | None:
    """`-f status=exited -f label=a=b` as the `filters` query parameter."""
    if not values:
        return None
    from skiff.wire.filters import encode_filters

    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise StatusError(1, f"bad format of filter (expected name=value)")
        filters.setdefault(key.strip().lower(), []).append(val)
    return encode_filters(filters)


def _each(cli, names: list[str], action, *, print_name: bool = True,
          ignore_missing: bool = False) -> int:
    """Run `action(name)` for every name, printing the name on success and collecting
    docker's error lines; exit status 1 if any failed."""
    from skiff.client.errors import APIError

    errors = []
    for name in names:
        try:
            result = action(name)
        except APIError as exc:
            if ignore_missing and exc.status == 404:
                cli.err(exc.explanation())
                continue
            errors.append(exc.explanation())
            continue
        if print_name:
            cli.out(name)
        elif result is not None:
            cli.out(str(result))
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0


# -- ps --------------------------------------------------------------------------------------

PS_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
    "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
    "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
}
PS_DEFAULT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def _image_column(entry: dict, trunc: bool) -> str:
    from skiff.cli.format import short_id

    image = entry.get("Image") or ""
    if not trunc:
        return image
    image_id = entry.get("ImageID") or ""
    if image_id and short_id(image_id) == short_id(image):
        return short_id(image)
    if image.startswith("sha256:"):
        return short_id(image)
    if "@" in image:
        return image.split("@", 1)[0]
    return image


def ps_fields(entry: dict, trunc: bool, now: float) -> dict:
    """The `--format` fields of one container of `GET /containers/json`."""
    from skiff.cli import format as fmt

    command = entry.get("Command") or ""
    if trunc:
        command = fmt.ellipsis(command, 20)
    status = entry.get("Status")
    if status is None:  # a daemon that only says the state: "running" -> "Running"
        state = entry.get("State")
        status = state.capitalize() if isinstance(state, str) else ""
    created = entry.get("Created") or 0
    size = ""
    if "SizeRw" in entry or "SizeRootFs" in entry:
        size = fmt.human_size(entry.get("SizeRw") or 0)
        if entry.get("SizeRootFs"):
            size += f" (virtual {fmt.human_size(entry['SizeRootFs'])})"
    labels = entry.get("Labels") or {}
    networks = sorted(((entry.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    mounts = []
    for mount in entry.get("Mounts") or []:
        name = mount.get("Name") or mount.get("Source") or ""
        mounts.append(fmt.ellipsis(name, 15) if trunc else name)
    fields = {
        "ID": fmt.short_id(entry.get("Id", ""), trunc),
        "Image": _image_column(entry, trunc),
        "Command": fmt.go_quote(command),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(created)),
        "RunningFor": fmt.ago(created, now),
        "Ports": fmt.display_ports(entry.get("Ports")),
        "State": entry.get("State") if isinstance(entry.get("State"), str) else "",
        "Status": status,
        "Size": size,
        "Names": fmt.container_names(entry.get("Names"), trunc),
        "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
        "Mounts": ",".join(mounts),
        "Networks": ",".join(networks),
        "LocalVolumes": str(sum(1 for m in entry.get("Mounts") or [] if m.get("Driver") == "local")),
    }
    fields["__methods__"] = {"Label": lambda key: labels.get(key, "")}
    return fields


def render_rows(cli, rows: list[dict], fmt_text: str | None, default: str,
                headers: dict[str, str]) -> None:
    """Print `rows` (field dicts) with docker's `--format` semantics."""
    from skiff.cli.format import table

    fmt_text = (fmt_text or "").strip() or default
    if fmt_text == "table":
        fmt_text = default
    if fmt_text == "json":
        import json

        for row in rows:
            clean = {k: v for k, v in sorted(row.items()) if k != "__methods__"}
            cli.out(json.dumps(clean, ensure_ascii=False, separators=(",", ":")))
        return
    if fmt_text == default:
        # the common case, without the template engine
        names = [part.strip()[3:-2] for part in default[len("table "):].split("\t")]
        lines = [[headers[name] for name in names]]
        lines += [[row[name] for name in names] for row in rows]
        cli.out(table(lines), end="")
        return
    from skiff.cli import template

    try:
        if fmt_text.startswith("table"):
            body = template.unescape(fmt_text[len("table"):].strip())
            header = template.render(body, {name: headers.get(name, name.upper())
                                            for name in template.fields_used(body)})
            lines = [header] + [template.render(body, row) for row in rows]
            cli.out(table([line.split("\t") for line in lines]), end="")
            return
        body = template.unescape(fmt_text)
        for row in rows:
            cli.out(template.render(body, row))
    except template.TemplateError as exc:
        raise StatusError(1, str(exc)) from None


def cmd_ps(cli, opts, args) -> int:
    client = cli.client()
    params = {"all": 1 if (opts.all or opts.last != -1 or opts.latest) else None}
    if opts.latest:
        params["limit"] = 1
    elif opts.last != -1:
        params["limit"] = opts.last
    if opts.size:
        params["size"] = 1
    filters = filters_param(opts.filter)
    if filters:
        params["filters"] = filters
    entries = client.get("/containers/json", params) or []
    trunc = not opts.no_trunc
    if opts.quiet:
        from skiff.cli.format import short_id

        for entry in entries:
            cli.out(short_id(entry.get("Id", ""), trunc))
        return 0
    now = time.time()
    rows = [ps_fields(entry, trunc, now) for entry in entries]
    default = PS_DEFAULT + ("\t{{.Size}}" if opts.size else "")
    render_rows(cli, rows, opts.format, default, PS_HEADERS)
    return 0


# -- rm, stop, kill, wait --------------------------------------------------------------------


def cmd_rm(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    params = {"force": opts.force or None, "v": opts.volumes or None, "link": opts.link or None}
    return _each(cli, args, lambda name: client.request(
        "DELETE", f"/containers/{quote_path(name)}", params), ignore_missing=opts.force)


def cmd_stop(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    params = {"t": opts.timeout, "signal": opts.signal}
    # A stop may take the whole grace period: no client-side timeout.
    return _each(cli, args, lambda name: client.request(
        "POST", f"/containers/{quote_path(name)}/stop", params))


def cmd_kill(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    params = {"signal": opts.signal}
    return _each(cli, args, lambda name: client.request(
        "POST", f"/containers/{quote_path(name)}/kill", params))


def cmd_wait(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    client = cli.client()

    def wait(name):
        result = client.post(f"/containers/{quote_path(name)}/wait") or {}
        return int(result.get("StatusCode", 0))

    return _each(cli, args, wait, print_name=False)


# -- logs ------------------------------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float | None:
    """Go's `time.ParseDuration` ("1h30m", "42m", "1.5s") in seconds, None if it is not one."""
    import re

    if not text:
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    return sign * sum(float(number) * _UNITS[unit] for number, unit in parts)


def timestamp_param(value: str, now: float | None = None) -> str:
    """`--since`/`--until` as the API wants them: seconds[.nanoseconds] since the epoch.
    Accepts a Go duration (relative to now), RFC 3339 (or a date), or a Unix timestamp."""
    from skiff.cli.format import parse_rfc3339

    now = time.time() if now is None else now
    duration = parse_go_duration(value)
    if duration is not None:
        moment = now - duration
    else:
        try:
            float(value)
            return value
        except ValueError:
            pass
        text = value
        if "T" not in text:
            text += "T00:00:00"
        if not (text.endswith("Z") or "+" in text[10:] or "-" in text[10:]):
            text += "Z"
        moment = parse_rfc3339(text)
        if moment is None:
            raise StatusError(1, f'invalid value for "since"/"until": {value!r}')
    seconds = int(moment)
    nanos = int(round((moment - seconds) * 1e9))
    return f"{seconds}.{nanos:09d}"


def cmd_logs(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    name = args[0]
    info = client.get(f"/containers/{quote_path(name)}/json")
    tty = bool((info.get("Config") or {}).get("Tty"))
    params = {
        "stdout": 1, "stderr": 1,
        "follow": 1 if opts.follow else None,
        "timestamps": 1 if opts.timestamps else None,
        "details": 1 if opts.details else None,
        "tail": opts.tail if opts.tail not in (None, "") else None,
        "since": timestamp_param(opts.since) if opts.since else None,
        "until": timestamp_param(opts.until) if opts.until else None,
    }
    with client.request("GET", f"/containers/{quote_path(name)}/logs", params,
                        stream=True) as resp:
        multiplexed = not tty
        content_type = resp.content_type
        if "raw-stream" in content_type:
            multiplexed = False
        elif "multiplexed-stream" in content_type:
            multiplexed = True
        if multiplexed:
            for stream, data in resp.iter_frames():
                if stream >= 2:
                    cli.err_bytes(data)
                else:
                    cli.out_bytes(data)
        else:
            for chunk in resp.iter_chunks():
                cli.out_bytes(chunk)
    return 0
