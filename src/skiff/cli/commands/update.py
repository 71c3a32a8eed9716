"""`skiff update`: change resource limits and the restart policy of containers."""

from __future__ import annotations

from skiff.cli.context import StatusError


def update_config(opts) -> dict:
    """The flags given -> docker's UpdateConfig (only what was given: zero means unchanged)."""
    from skiff.cli.config import parse_cpus, parse_memory, parse_restart, parse_swap

    body: dict = {}
    try:
        if opts.blkio_weight is not None:
            body["BlkioWeight"] = opts.blkio_weight
        if opts.cpu_period is not None:
            body["CpuPeriod"] = opts.cpu_period
        if opts.cpu_quota is not None:
            body["CpuQuota"] = opts.cpu_quota
        if opts.cpu_shares is not None:
            body["CpuShares"] = opts.cpu_shares
        if opts.cpus:
            body["NanoCpus"] = parse_cpus(opts.cpus)
        if opts.cpuset_cpus:
            body["CpusetCpus"] = opts.cpuset_cpus
        if opts.cpuset_mems:
            body["CpusetMems"] = opts.cpuset_mems
        if opts.memory:
            body["Memory"] = parse_memory(opts.memory)
        if opts.memory_reservation:
            body["MemoryReservation"] = parse_memory(opts.memory_reservation)
        if opts.memory_swap:
            body["MemorySwap"] = parse_swap(opts.memory_swap)
        if opts.pids_limit is not None:
            body["PidsLimit"] = opts.pids_limit
        if opts.restart:
            body["RestartPolicy"] = parse_restart(opts.restart)
    except ValueError as exc:
        raise StatusError(125, f"{exc}\nSee 'skiff update --help'.") from None
    return body


def cmd_update(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    body = update_config(opts)
    if not body:
        raise StatusError(1, "you must provide one or more flags when using this command")
    client = cli.client()
    warnings, errors = [], []
    for name in args:
        try:
            reply = client.post(f"/containers/{quote_path(name)}/update", json_body=body)
        except APIError as exc:
            errors.append(exc.explanation())
            continue
        cli.out(name)
        warnings += (reply or {}).get("Warnings") or []
    if warnings:
        cli.out("\n".join(warnings))
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0
