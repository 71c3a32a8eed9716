"""`skiff volume create/ls/inspect/rm/prune`, with the docker CLI's flags and output."""

from __future__ import annotations


from skiff.cli.context import StatusError


def _key_values(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise StatusError(125, f'invalid argument "{value}" for "{what}" flag: invalid '
                                   f"key=value pair")
        out[key] = val
    return out


def cmd_volume_create(cli, opts, args) -> int:
    name = opts.name or ""
    if args:
        if name:
            raise StatusError(1, f"conflicting options: cannot specify a volume-name through "
                                 f"both --name and as a positional arg")
        name = args[0]
    body = {"Name": name, "Driver": opts.driver or "local",
            "DriverOpts": _key_values(opts.opt, "--opt"),
            "Labels": _key_values(opts.label, "--label")}
    created = cli.client().post("/volumes/create", None, body) or {}
    cli.out(created.get("Name", name))
    return 0


def cmd_volume_ls(cli, opts, args) -> int:
    from skiff.cli.commands.containers import filters_param, render_rows

    answer = cli.client().get("/volumes", {"filters": filters_param(opts.filter)}) or {}
    volumes = sorted(answer.get("Volumes") or [], key=lambda v: v.get("Name", ""))
    for warning in answer.get("Warnings") or []:
        cli.err(f"WARNING: {warning}")
    if opts.quiet:
        for volume in volumes:
            cli.out(volume["Name"])
        return 0
    rows = [dict(volume, Labels=",".join(f"{k}={v}" for k, v in
                                         sorted((volume.get("Labels") or {}).items())),
                 Links="N/A", Size="N/A") for volume in volumes]
    render_rows(cli, rows, opts.format, "table {{.Driver}}\t{{.Name}}",
                {"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE",
                 "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS",
                 "Size": "SIZE", "CreatedAt": "CREATED AT"})
    return 0


def cmd_volume_inspect(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    client = cli.client()
    found, errors = [], []
    for name in args:
        try:
            found.append(client.get(f"/volumes/{quote_path(name)}"))
        except APIError as exc:
            errors.append(exc.explanation())
    from skiff.cli.commands.system import print_inspected

    return print_inspected(cli, opts.format, found, errors)


def cmd_volume_rm(cli, opts, args) -> int:
    from skiff.cli.commands.containers import _each
    from skiff.client.client import quote_path

    client = cli.client()
    params = {"force": "1" if opts.force else None}
    return _each(cli, args, lambda name: client.request(
        "DELETE", f"/volumes/{quote_path(name)}", params))


def cmd_volume_prune(cli, opts, args) -> int:
    from skiff.cli import format as fmt
    from skiff.cli.commands.containers import filters_param

    if not opts.force:
        cli.out("WARNING! This will remove all local volumes not used by at least one container."
                if opts.all else "WARNING! This will remove anonymous local volumes not used "
                "by at least one container.")
        cli.out("Are you sure you want to continue? [y/N] ", end="")
        try:
            cli.stdout.flush()
        except (AttributeError, OSError):
            pass
        answer = (cli.stdin.readline() if cli.stdin else "").strip().lower()
        if answer not in ("y", "yes"):
            return 0
    values = list(opts.filter)
    if opts.all:
        values.append("all=true")
    result = cli.client().post("/volumes/prune", {"filters": filters_param(values)}) or {}
    deleted = result.get("VolumesDeleted") or []
    if deleted:
        cli.out("Deleted Volumes:")
        for name in deleted:
            cli.out(name)
        cli.out("")
    cli.out(f"Total reclaimed space: {fmt.human_size(result.get('SpaceReclaimed') or 0)}")
    return 0


# -- system df -v ----------------------------------------------------------------------------


def print_df_verbose(cli, df: dict) -> int:
    """`system df -v`: docker's four sections (images, containers, local volumes, build
    cache), each a table."""
    import time

    from skiff.cli import format as fmt
    from skiff.cli.commands.containers import ps_fields
    from skiff.cli.commands.images import image_rows, images_fields
    from skiff.cli.format import table

    now = time.time()
    lines = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
              "UNIQUE SIZE", "CONTAINERS"]]
    for image in df.get("Images") or []:
        for repo, tag, digest in image_rows(image, False):
            row = images_fields(image, repo, tag, digest, True, now)
            lines.append([row["Repository"], row["Tag"], row["ID"], row["CreatedSince"],
                          row["Size"], row["SharedSize"], row["UniqueSize"],
                          row["Containers"]])
    cli.out("Images space usage:\n")
    cli.out(table(lines))
    lines = [["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
              "STATUS", "NAMES"]]
    for entry in df.get("Containers") or []:
        row = ps_fields(entry, True, now)
        lines.append([row["ID"], row["Image"], row["Command"], row["LocalVolumes"],
                      fmt.human_size(entry.get("SizeRw") or 0), row["RunningFor"],
                      row["Status"], row["Names"]])
    cli.out("Containers space usage:\n")
    cli.out(table(lines))
    lines = [["VOLUME NAME", "LINKS", "SIZE"]]
    for volume in sorted(df.get("Volumes") or [], key=lambda v: v.get("Name", "")):
        usage = volume.get("UsageData") or {}
        size = usage.get("Size", -1)
        links = usage.get("RefCount", -1)
        lines.append([volume["Name"], str(links) if links >= 0 else "N/A",
                      fmt.human_size(size) if size >= 0 else "N/A"])
    cli.out("Local Volumes space usage:\n")
    cli.out(table(lines))
    cache = df.get("BuildCache") or []
    cli.out(f"Build cache usage: {fmt.human_size(sum(c.get('Size') or 0 for c in cache))}\n")
    lines = [["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"]]
    for item in cache:
        lines.append([str(item.get("ID", ""))[:12], str(item.get("Type", "")),
                      fmt.human_size(item.get("Size") or 0), "", "",
                      str(item.get("UsageCount", 0)), str(bool(item.get("Shared"))).lower()])
    cli.out(table(lines), end="")
    return 0
