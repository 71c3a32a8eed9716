"""`system prune`: the Engine API has no endpoint for it, so the CLI calls each kind's prune
endpoint in docker's order (containers, networks, volumes with --volumes, images, build cache)
and adds up what they reclaimed, as the docker CLI does. A daemon without one of those
endpoints (404) is skipped for that kind, with a note on stderr, instead of failing the rest."""

from __future__ import annotations

from skiff.cli.context import StatusError


def _filters(values: list[str], extra: dict[str, str] | None = None) -> str | None:
    from skiff.cli.commands.containers import filters_param

    return filters_param(list(values) + [f"{k}={v}" for k, v in (extra or {}).items()])


def _listing(title: str, items: list[str]) -> str:
    if not items:
        return ""
    return title + "\n" + "".join(f"{item}\n" for item in items)


def _containers(report: dict) -> str:
    return _listing("Deleted Containers:", report.get("ContainersDeleted") or [])


def _networks(report: dict) -> str:
    return _listing("Deleted Networks:", report.get("NetworksDeleted") or [])


def _volumes(report: dict) -> str:
    return _listing("Deleted Volumes:", report.get("VolumesDeleted") or [])


def _images(report: dict) -> str:
    lines = []
    for item in report.get("ImagesDeleted") or []:
        for key in ("Untagged", "Deleted"):
            if item.get(key):
                lines.append(f"{key.lower()}: {item[key]}")
    return _listing("Deleted Images:", lines)


def _build_cache(report: dict) -> str:
    return _listing("Deleted build cache objects:", report.get("CachesDeleted") or [])


def plan(all_images: bool, volumes: bool, filters: list[str]):
    """[(kind, path, params, render)] in docker's order."""
    steps = [("containers", "/containers/prune", {"filters": _filters(filters)}, _containers),
             ("networks", "/networks/prune", {"filters": _filters(filters)}, _networks)]
    if volumes:
        steps.append(("volumes", "/volumes/prune", {"filters": _filters(filters)}, _volumes))
    steps.append(("images", "/images/prune",
                  {"filters": _filters(filters, {"dangling": "false" if all_images
                                                 else "true"})}, _images))
    steps.append(("build cache", "/build/prune",
                  {"filters": _filters(filters), "all": "1" if all_images else None},
                  _build_cache))
    return steps


def confirmation(all_images: bool, volumes: bool, filters: list[str]) -> str:
    """Docker's warning, word for word."""
    warnings = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        warnings.append("all anonymous volumes not used by at least one container")
    warnings.append("all images without at least one container associated to them"
                    if all_images else "all dangling images")
    warnings.append("unused build cache")
    text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in warnings)
    shown = sorted(f for f in filters if f.partition("=")[0].strip().lower()
                   in ("label", "label!", "until"))
    if shown:
        text += "\n  Items to be pruned will be filtered with:\n" + \
            "".join(f"  - {f}\n" for f in shown)
    return text + "\nAre you sure you want to continue? [y/N] "


def cmd_system_prune(cli, opts, args) -> int:
    from skiff.cli.format import human_size
    from skiff.client.errors import APIError

    filters = list(opts.filter or [])
    for value in filters:
        if "=" not in value:
            raise StatusError(1, "bad format of filter (expected name=value)")
    if not opts.force:
        cli.out(confirmation(opts.all, opts.volumes, filters), end="")
        try:
            cli.stdout.flush()
        except (AttributeError, OSError):
            pass
        answer = (cli.stdin.readline() if cli.stdin else "").strip().lower()
        if answer not in ("y", "yes"):
            return 0
    client = cli.client()
    reclaimed = 0
    for kind, path, params, render in plan(opts.all, opts.volumes, filters):
        try:
            report = client.post(path, {k: v for k, v in params.items() if v is not None})
        except APIError as exc:
            if exc.status == 404:
                cli.err(f"skipping {kind}: the daemon cannot prune them ({exc.message})")
                continue
            raise
        report = report or {}
        reclaimed += int(report.get("SpaceReclaimed") or 0)
        output = render(report)
        if output:
            cli.out(output)
    cli.out(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
