"""restart, rename, container prune, attach, events, stats."""

from __future__ import annotations

import json
import time

from skiff.cli.commands.containers import _each, filters_param, timestamp_param
from skiff.cli.context import StatusError


def cmd_restart(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    params = {"t": opts.timeout, "signal": opts.signal}
    return _each(cli, args, lambda name: client.request(
        "POST", f"/containers/{quote_path(name)}/restart", params))


def cmd_rename(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    try:
        cli.client().request("POST", f"/containers/{quote_path(args[0])}/rename",
                             {"name": args[1]})
    except APIError as exc:
        raise StatusError(1, exc.explanation()) from None
    return 0


def cmd_container_prune(cli, opts, args) -> int:
    from skiff.cli.format import human_size

    if not opts.force:
        cli.err("WARNING! This will remove all stopped containers.")
        cli.stderr.write("Are you sure you want to continue? [y/N] ")
        cli.stderr.flush()
        answer = cli.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    result = cli.client().post("/containers/prune",
                               {"filters": filters_param(opts.filter or [])}) or {}
    deleted = result.get("ContainersDeleted") or []
    if deleted:
        cli.out("Deleted Containers:")
        for cid in deleted:
            cli.out(cid)
        cli.out("")
    cli.out(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed') or 0)}")
    return 0


def cmd_attach(cli, opts, args) -> int:
    from skiff.cli.commands.run import Session

    client = cli.client()
    info = client.get(f"/containers/{args[0]}/json")
    if not info["State"]["Running"]:
        raise StatusError(1, "You cannot attach to a stopped container, start it first")
    config = info["Config"]
    session = Session(cli, client, info["Id"], stdin=not opts.no_stdin and config["OpenStdin"],
                      tty=config["Tty"], detach_keys=opts.detach_keys,
                      sig_proxy=opts.sig_proxy, auto_remove=False, verb="attach")
    session.attach()
    session.begin_wait()
    session.pump()
    if session.detached:
        return 0
    return session.wait_status()


# -- events ----------------------------------------------------------------------------------

def event_line(event: dict) -> str:
    """docker's default line: time type action id (attr=value, ...)."""
    from skiff.timefmt import rfc3339_nano

    attributes = event.get("Actor", {}).get("Attributes") or {}
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(attributes.items()))
    stamp = rfc3339_nano(int(event.get("timeNano") or event.get("time", 0) * 1e9))
    line = f"{stamp} {event.get('Type')} {event.get('Action')} {event['Actor']['ID']}"
    return f"{line} ({attrs})" if attrs else line


def cmd_events(cli, opts, args) -> int:
    from skiff.cli.template import render as render_template

    params = {"since": timestamp_param(opts.since) if opts.since else None,
              "until": timestamp_param(opts.until) if opts.until else None,
              "filters": filters_param(opts.filter or [])}
    with cli.client().request("GET", "/events", params, stream=True) as resp:
        for event in resp.iter_json():
            if opts.format == "{{json .}}":
                cli.out(json.dumps(event))
            elif opts.format:
                cli.out(render_template(opts.format, event))
            else:
                cli.out(event_line(event))
            cli.stdout.flush()
    return 0


# -- stats -----------------------------------------------------------------------------------

def cpu_percent(stats: dict) -> float:
    """docker's formula: the container's share of the host's CPU time, times the CPUs."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - \
        (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    if used <= 0 or system <= 0:
        return 0.0
    return used / system * (cpu.get("online_cpus") or 1) * 100.0


def memory_used(stats: dict) -> int:
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return max(0, (memory.get("usage") or 0) - cache)


def stats_row(stats: dict) -> list[str]:
    from skiff.cli.format import human_size

    memory = stats.get("memory_stats") or {}
    used, limit = memory_used(stats), memory.get("limit") or 0
    blkio = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    read = sum(e["value"] for e in blkio if e.get("op", "").lower() == "read")
    write = sum(e["value"] for e in blkio if e.get("op", "").lower() == "write")
    networks = (stats.get("networks") or {}).values()
    received = sum(n.get("rx_bytes", 0) for n in networks)
    sent = sum(n.get("tx_bytes", 0) for n in networks)

    from skiff.cli.format import bytes_size as binary

    return [stats.get("id", "")[:12], stats.get("name", "").lstrip("/"),
            f"{cpu_percent(stats):.2f}%", f"{binary(used)} / {binary(limit)}",
            f"{(used / limit * 100 if limit else 0):.2f}%",
            f"{human_size(received)} / {human_size(sent)}",
            f"{human_size(read)} / {human_size(write)}",
            str((stats.get("pids_stats") or {}).get("current", 0))]


HEADERS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
           "BLOCK I/O", "PIDS"]


def cmd_stats(cli, opts, args) -> int:
    from skiff.cli.format import table
    from skiff.client.client import quote_path

    client = cli.client()
    names = args or [c["Id"] for c in client.get("/containers/json", {"all": opts.all})]
    while True:
        rows = []
        for name in names:
            stats = client.get(f"/containers/{quote_path(name)}/stats", {"stream": False})
            rows.append(stats_row(stats))
        if not opts.no_stream:
            cli.stdout.write("\x1b[2J\x1b[H")
        cli.stdout.write(table([HEADERS] + rows))
        cli.stdout.flush()
        if opts.no_stream:
            return 0
        time.sleep(0.5)
