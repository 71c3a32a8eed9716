"""`images`, `load`, `rmi`, `pull`."""

from __future__ import annotations

import os
import time

from skiff.cli.context import StatusError

IMAGES_HEADERS = {
    "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
    "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
}
IMAGES_DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_DIGESTS = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}"
                  "\t{{.Size}}")


def _familiar(ref_text: str):
    """(familiar repository, tag or digest) of a RepoTags/RepoDigests entry, or None."""
    from skiff.cli import refs

    try:
        ref = refs.parse(ref_text, default_tag=False)
    except ValueError:
        return None
    return ref.familiar_name(), ref.tag, ref.digest


def image_rows(image: dict, show_digests: bool) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows for one image of `GET /images/json`, as docker
    expands RepoTags and RepoDigests."""
    repo_tags: dict[str, list[str]] = {}
    repo_digests: dict[str, list[str]] = {}
    for text in image.get("RepoTags") or []:
        parsed = _familiar(text)
        if parsed and parsed[1]:
            repo_tags.setdefault(parsed[0], []).append(parsed[1])
    for text in image.get("RepoDigests") or []:
        parsed = _familiar(text)
        if parsed and parsed[2]:
            repo_digests.setdefault(parsed[0], []).append(parsed[2])
    rows = []
    for repo, tags in repo_tags.items():
        digests = repo_digests.pop(repo, [])
        if not show_digests:
            digests = []
        for tag in tags:
            if not digests:
                rows.append((repo, tag, "<none>"))
            else:
                rows.extend((repo, tag, digest) for digest in digests)
    for repo, digests in repo_digests.items():
        if show_digests:
            rows.extend((repo, "<none>", digest) for digest in digests)
        else:
            rows.append((repo, "<none>", "<none>"))
    if not repo_tags and not repo_digests:
        rows.append(("<none>", "<none>", "<none>"))
    return rows


def images_fields(image: dict, repo: str, tag: str, digest: str, trunc: bool,
                  now: float) -> dict:
    from skiff.cli import format as fmt

    created = image.get("Created") or 0
    size = image.get("Size") or 0
    shared = image.get("SharedSize", -1)
    return {
        "ID": fmt.short_id(image.get("Id", ""), trunc),
        "Repository": repo,
        "Tag": tag,
        "Digest": digest,
        "CreatedSince": fmt.ago(created, now),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(created)),
        "Size": fmt.human_size(size),
        "VirtualSize": fmt.human_size(image.get("VirtualSize", size) or 0),
        "SharedSize": fmt.human_size(shared) if shared is not None and shared >= 0 else "N/A",
        "UniqueSize": fmt.human_size(size - shared) if shared is not None and shared >= 0 else "N/A",
        "Containers": str(image.get("Containers")) if image.get("Containers", -1) >= 0 else "N/A",
    }


def cmd_images(cli, opts, args) -> int:
    from skiff.cli.commands.containers import filters_param, render_rows

    client = cli.client()
    filter_values = list(opts.filter)
    if args:
        filter_values.append(f"reference={args[0]}")
    params = {"all": 1 if opts.all else None, "digests": 1 if opts.digests else None}
    filters = filters_param(filter_values)
    if filters:
        params["filters"] = filters
    images = client.get("/images/json", params) or []
    trunc = not opts.no_trunc
    now = time.time()
    rows = []
    for image in images:
        for repo, tag, digest in image_rows(image, opts.digests):
            rows.append(images_fields(image, repo, tag, digest, trunc, now))
    if opts.quiet:
        for row in rows:
            cli.out(row["ID"])
        return 0
    render_rows(cli, rows, opts.format, IMAGES_DIGESTS if opts.digests else IMAGES_DEFAULT,
                IMAGES_HEADERS)
    return 0


def cmd_rmi(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    client = cli.client()
    params = {"force": 1 if opts.force else None, "noprune": 1 if opts.no_prune else None}
    errors = []
    for name in args:
        try:
            deleted = client.delete(f"/images/{quote_path(name)}", params) or []
        except APIError as exc:
            errors.append(exc.explanation())
            continue
        for item in deleted:
            if item.get("Untagged"):
                cli.out(f"Untagged: {item['Untagged']}")
            if item.get("Deleted"):
                cli.out(f"Deleted: {item['Deleted']}")
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0


def _terminal_width(cli) -> int:
    from skiff.cli.attach import terminal_size

    size = terminal_size((1, 2))
    return size[1] if size else 80


def cmd_load(cli, opts, args) -> int:
    from skiff.cli.progress import render_stream

    if opts.input:
        source = open(opts.input, "rb")
        headers = {"Content-Type": "application/x-tar",
                   "Content-Length": str(os.fstat(source.fileno()).st_size)}
    else:
        if cli.isatty(cli.stdin):
            raise StatusError(1, "requested load from stdin, but stdin is empty")
        source = getattr(cli.stdin, "buffer", cli.stdin)
        headers = {"Content-Type": "application/x-tar"}
        try:
            import stat

            info = os.fstat(source.fileno())
            if stat.S_ISREG(info.st_mode):
                headers["Content-Length"] = str(info.st_size - source.tell())
        except (OSError, AttributeError, ValueError):
            pass
    client = cli.client()
    try:
        params = {"quiet": 1 if opts.quiet else None}
        with client.request("POST", "/images/load", params, body=source, headers=headers,
                            stream=True) as resp:
            if resp.content_type == "application/json":
                render_stream(resp.iter_json(), cli.stdout, cli.isatty(cli.stdout),
                              _terminal_width(cli))
            else:
                for chunk in resp.iter_chunks():
                    cli.out_bytes(chunk)
    finally:
        if opts.input:
            source.close()
    return 0


def cmd_pull(cli, opts, args) -> int:
    from skiff.cli import refs
    from skiff.cli.progress import ProgressRenderer

    try:
        ref = refs.parse(args[0], default_tag=not opts.all_tags)
    except ValueError as exc:
        raise StatusError(1, str(exc)) from None
    if opts.all_tags and ref.tag:
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    params = {"fromImage": ref.name}
    if not opts.all_tags:
        params["tag"] = ref.api_tag
        if not opts.quiet and not refs.parse(args[0], default_tag=False).tag and not ref.digest:
            cli.out("Using default tag: latest")
    if opts.platform:
        params["platform"] = opts.platform
    from skiff.cli.commands.registry import auth_header, server_key

    client = cli.client()
    headers = auth_header(server_key(ref.domain))  # what `skiff login` stored, as docker
    with client.request("POST", "/images/create", params, stream=True,
                        headers=headers) as resp:
        if opts.quiet:
            from skiff.cli.commands.run import _NullWriter

            renderer = ProgressRenderer(_NullWriter(), False)
        else:
            renderer = ProgressRenderer(cli.stdout, cli.isatty(cli.stdout), _terminal_width(cli))
        for message in resp.iter_json():
            renderer.feed(message)
    cli.out(str(ref))
    return 0


# -- commit, diff, export ----------------------------------------------------------------------


def cmd_commit(cli, opts, args) -> int:
    from skiff.cli import refs

    params = {"container": args[0], "comment": opts.message or None,
              "author": opts.author or None, "pause": 1 if opts.pause else 0,
              "changes": list(opts.change) or None}
    if len(args) > 1:
        try:
            ref = refs.parse(args[1], default_tag=False)
        except ValueError as exc:
            raise StatusError(1, f'invalid reference format: {exc}'
                              if "invalid reference" not in str(exc) else str(exc)) from None
        if ref.digest:
            raise StatusError(1, "refusing to create a tag with a digest reference")
        params["repo"] = ref.familiar_name()
        params["tag"] = ref.tag or None
    result = cli.client().post("/commit", params, json_body={}) or {}
    cli.out(result.get("Id", ""))
    return 0


def cmd_diff(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    found = cli.client().get(f"/containers/{quote_path(args[0])}/changes") or []
    letters = {0: "C", 1: "A", 2: "D"}
    for change in found:
        cli.out(f"{letters.get(change.get('Kind'), '?')} {change.get('Path', '')}")
    return 0


def _save_response(cli, resp, output: str | None) -> None:
    """Write a tar response to `output` (through a temp file beside it, renamed at the end:
    a failed transfer leaves no half file) or to stdout."""
    if not output:
        target = getattr(cli.stdout, "buffer", cli.stdout)
        for chunk in resp.iter_chunks(1 << 20):
            target.write(chunk)
        target.flush()
        return
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".skiff-", dir=os.path.dirname(os.path.abspath(output)))
    try:
        with os.fdopen(fd, "wb") as target:
            for chunk in resp.iter_chunks(1 << 20):
                target.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
        tmp = None
    finally:
        if tmp:
            os.unlink(tmp)


def cmd_export(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    if not opts.output and cli.isatty(cli.stdout):
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or "
                             "redirect")
    client = cli.client()
    with client.request("GET", f"/containers/{quote_path(args[0])}/export",
                        stream=True) as resp:
        _save_response(cli, resp, opts.output)
    return 0


# -- save, tag, history, prune, import ---------------------------------------------------------


def cmd_save(cli, opts, args) -> int:
    if not opts.output and cli.isatty(cli.stdout):
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or "
                             "redirect")
    client = cli.client()
    with client.request("GET", "/images/get", {"names": list(args)}, stream=True) as resp:
        _save_response(cli, resp, opts.output)
    return 0


def cmd_tag(cli, opts, args) -> int:
    from skiff.cli import refs
    from skiff.client.client import quote_path

    try:
        ref = refs.parse(args[1], default_tag=False)
    except ValueError as exc:
        raise StatusError(1, str(exc)) from None
    if ref.digest:
        raise StatusError(1, "refusing to create a tag with a digest reference")
    cli.client().post(f"/images/{quote_path(args[0])}/tag",
                      {"repo": ref.familiar_name(), "tag": ref.tag or "latest"})
    return 0


HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
HISTORY_DEFAULT = ("table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}"
                   "\t{{.Comment}}")


def cmd_history(cli, opts, args) -> int:
    from skiff.cli import format as fmt
    from skiff.cli.commands.containers import render_rows
    from skiff.client.client import quote_path

    entries = cli.client().get(f"/images/{quote_path(args[0])}/history") or []
    trunc = not opts.no_trunc
    now = time.time()
    rows = []
    for e in entries:
        ident = e.get("Id") or ""
        created = e.get("Created") or 0
        created_by = (e.get("CreatedBy") or "").replace("\t", " ")
        if trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        size = e.get("Size") or 0
        rows.append({
            "ID": ident if ident == "<missing>" else fmt.short_id(ident, trunc),
            "CreatedSince": fmt.ago(created, now) if opts.human else
            time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(created)),
            "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(created)),
            "CreatedBy": created_by,
            "Size": fmt.human_size(size) if opts.human else str(size),
            "Comment": e.get("Comment") or "",
        })
    if opts.quiet:
        for row in rows:
            cli.out(row["ID"])
        return 0
    render_rows(cli, rows, opts.format, HISTORY_DEFAULT, HISTORY_HEADERS)
    return 0


def cmd_image_prune(cli, opts, args) -> int:
    from skiff.cli import format as fmt
    from skiff.cli.commands.containers import filters_param

    if not opts.force:
        warning = ("WARNING! This will remove all images without at least one container "
                   "associated to them." if opts.all else
                   "WARNING! This will remove all dangling images.")
        cli.out(warning)
        cli.out("Are you sure you want to continue? [y/N] ", end="")
        try:
            cli.stdout.flush()
        except (AttributeError, OSError):
            pass
        answer = (cli.stdin.readline() if cli.stdin else "").strip().lower()
        if answer not in ("y", "yes"):
            return 0
    values = list(opts.filter)
    values.append("dangling=false" if opts.all else "dangling=true")
    result = cli.client().post("/images/prune", {"filters": filters_param(values)}) or {}
    deleted = result.get("ImagesDeleted") or []
    if deleted:
        cli.out("Deleted Images:")
        for item in deleted:
            for key in ("Untagged", "Deleted"):
                if item.get(key):
                    cli.out(f"{key.lower()}: {item[key]}")
        cli.out("")
    cli.out(f"Total reclaimed space: {fmt.human_size(result.get('SpaceReclaimed') or 0)}")
    return 0


def cmd_import(cli, opts, args) -> int:
    from skiff.cli import refs

    source = args[0]
    params = {"fromSrc": "-", "changes": list(opts.change) or None,
              "message": opts.message or None}
    if len(args) > 1:
        try:
            ref = refs.parse(args[1], default_tag=False)
        except ValueError as exc:
            raise StatusError(1, str(exc)) from None
        params["repo"] = ref.familiar_name()
        params["tag"] = ref.tag or None
    if source == "-":
        body = getattr(cli.stdin, "buffer", cli.stdin)
        headers = {"Content-Type": "application/x-tar"}
    elif source.startswith(("http://", "https://")):  # the daemon downloads it (as docker)
        params["fromSrc"] = source
        body, headers = b"", {}
    else:
        try:
            body = open(source, "rb")
        except OSError as exc:
            raise StatusError(1, f"open {source}: {exc.strerror.lower()}") from None
        headers = {"Content-Type": "application/x-tar",
                   "Content-Length": str(os.fstat(body.fileno()).st_size)}
    from skiff.cli.progress import ProgressRenderer

    try:
        with cli.client().request("POST", "/images/create", params, body=body,
                                  headers=headers, stream=True) as resp:
            renderer = ProgressRenderer(cli.stdout, cli.isatty(cli.stdout),
                                        _terminal_width(cli))
            for message in resp.iter_json():
                if message.get("error"):
                    raise StatusError(1, message["error"])
                renderer.feed(message)
    finally:
        if hasattr(body, "close") and source != "-":
            body.close()
    return 0


# -- system df -----------------------------------------------------------------------------------


def _share(part: int, total: int, percent: bool = True) -> str:
    from skiff.cli import format as fmt

    if total > 0 and percent:
        return f"{fmt.human_size(part)} ({part * 100 // total}%)"
    return fmt.human_size(part)


def cmd_system_df(cli, opts, args) -> int:
    from skiff.cli import format as fmt
    from skiff.cli.commands.containers import render_rows

    df = cli.client().get("/system/df") or {}
    if opts.verbose:   # sections of rows, as `docker system df -v`
        from skiff.cli.commands.volumes import print_df_verbose

        return print_df_verbose(cli, df)
    images = df.get("Images") or []
    containers = df.get("Containers") or []
    volumes = df.get("Volumes") or []
    cache = df.get("BuildCache") or []
    layers = df.get("LayersSize") or 0
    used = sum((i.get("Size") or 0) - (i.get("SharedSize") or 0) for i in images
               if i.get("Containers") and i.get("Size", -1) >= 0 and i.get("SharedSize", -1) >= 0)
    rw = sum(c.get("SizeRw") or 0 for c in containers)
    rw_idle = sum(c.get("SizeRw") or 0 for c in containers if c.get("State") != "running")
    vol_size = sum(max((v.get("UsageData") or {}).get("Size") or 0, 0) for v in volumes)
    vol_idle = sum(max((v.get("UsageData") or {}).get("Size") or 0, 0) for v in volumes
                   if not (v.get("UsageData") or {}).get("RefCount"))
    cache_size = sum(c.get("Size") or 0 for c in cache)
    rows = [
        {"Type": "Images", "TotalCount": str(len(images)),
         "Active": str(sum(1 for i in images if i.get("Containers"))),
         "Size": fmt.human_size(layers), "Reclaimable": _share(layers - used, layers)},
        {"Type": "Containers", "TotalCount": str(len(containers)),
         "Active": str(sum(1 for c in containers if c.get("State") == "running")),
         "Size": fmt.human_size(rw), "Reclaimable": _share(rw_idle, rw)},
        {"Type": "Local Volumes", "TotalCount": str(len(volumes)),
         "Active": str(sum(1 for v in volumes if (v.get("UsageData") or {}).get("RefCount"))),
         "Size": fmt.human_size(vol_size), "Reclaimable": _share(vol_idle, vol_size)},
        {"Type": "Build Cache", "TotalCount": str(len(cache)),
         "Active": str(sum(1 for c in cache if c.get("InUse"))),
         "Size": fmt.human_size(cache_size), "Reclaimable": _share(0, cache_size, False)},
    ]
    render_rows(cli, rows, opts.format,
                "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                 "Reclaimable": "RECLAIMABLE"})
    return 0
