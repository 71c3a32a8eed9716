"""`skiff cp`: files between a container and the local filesystem, with docker's rules for
where they land (the destination's kind decides: into a directory, as a new name, over a file)
and through docker's archive API, so it works against dockerd too."""

from __future__ import annotations

import base64
import json
import os
import posixpath
import stat
from skiff.tarfilters import tarfile
import threading

from skiff.cli.context import StatusError

GO_DIR, GO_SYMLINK = 1 << 31, 1 << 27


def split_target(arg: str) -> tuple[str | None, str]:
    """`CONTAINER:PATH` or a local path (one that starts with / or . is always local)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    container, path = arg.split(":", 1)
    return container, path


def cmd_cp(cli, opts, args) -> int:
    src_ctr, src = split_target(args[0])
    dst_ctr, dst = split_target(args[1])
    if src_ctr is not None and dst_ctr is not None:
        raise StatusError(1, "copying between containers is not supported")
    if src_ctr is None and dst_ctr is None:
        raise StatusError(1, "must specify at least one container source")
    if src_ctr is not None:
        if not src_ctr:
            raise StatusError(1, "must specify a container name or ID")
        return _from_container(cli, opts, src_ctr, src, dst)
    if not dst_ctr:
        raise StatusError(1, "must specify a container name or ID")
    return _to_container(cli, opts, src, dst_ctr, dst)


def _stat(client, container: str, path: str) -> dict | None:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    try:
        resp = client.request("HEAD", f"/containers/{quote_path(container)}/archive",
                              {"path": path})
    except APIError as exc:
        if exc.status == 404:  # a HEAD answer has no body to tell a missing path apart
            return None
        raise
    return decode_stat(resp.header("X-Docker-Container-Path-Stat") or "")


def decode_stat(header: str) -> dict:
    try:
        return json.loads(base64.b64decode(header))
    except ValueError:
        raise StatusError(1, "invalid path stat from the daemon") from None


# -- from a container ---------------------------------------------------------------------------


def _from_container(cli, opts, container: str, src: str, dst: str) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    if opts.follow_link:
        info = _stat(client, container, src)
        if info and info["mode"] & GO_SYMLINK and info.get("linkTarget"):
            src = info["linkTarget"]
    with client.request("GET", f"/containers/{quote_path(container)}/archive",
                        {"path": src}, stream=True) as resp:
        info = decode_stat(resp.header("X-Docker-Container-Path-Stat") or "")
        if dst == "-":
            for chunk in resp.iter_chunks():
                cli.out_bytes(chunk)
            return 0
        target_dir, rename = _local_destination(src, info, dst)
        reader = _ChunkReader(resp.iter_chunks())
        copied = _extract_local(reader, target_dir, info["name"], rename)
    _report(cli, opts, copied, dst)
    return 0


def _local_destination(src: str, info: dict, dst: str) -> tuple[str, str | None]:
    """Where the archive's root lands: (directory to extract into, new name for the root or
    None to keep it)."""
    src_is_dir = bool(info["mode"] & GO_DIR)
    try:
        dst_info = os.stat(dst)
    except FileNotFoundError:
        if dst.endswith("/") or dst.endswith("/."):
            raise StatusError(1, f"destination directory {dst!r} does not exist") from None
        parent = os.path.dirname(os.path.abspath(dst))
        if not os.path.isdir(parent):
            raise StatusError(1, f"no such directory: {parent!r}") from None
        return parent, os.path.basename(os.path.abspath(dst))
    if stat.S_ISDIR(dst_info.st_mode):
        if src_is_dir and (src.endswith("/.")):
            return dst, ""  # the contents, not the directory
        return dst, None
    if src_is_dir:
        raise StatusError(1, "cannot copy directory")
    return os.path.dirname(os.path.abspath(dst)), os.path.basename(dst)


class _ChunkReader:
    """A file object over an iterator of byte chunks (for tarfile's stream mode)."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.buf = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buf) < size:
            try:
                self.buf += next(self.chunks)
            except StopIteration:
                break
        if size < 0:
            data, self.buf = self.buf, b""
        else:
            data, self.buf = self.buf[:size], self.buf[size:]
        return data


def _rebase(name: str, root: str, rename: str | None) -> str:
    if rename is None:
        return name
    rel = posixpath.normpath(name)
    root = posixpath.normpath(root)
    if rel == root:
        return rename or "."
    if root == "." or rel.startswith(root + "/"):
        rest = rel if root == "." else rel[len(root) + 1:]
        return posixpath.join(rename, rest) if rename else rest
    return rel


def _extract_local(stream, target_dir: str, root: str, rename: str | None) -> int:
    """Extract safely (no entry may land, or write through a link, outside `target_dir`),
    keeping modes as `cp -a` would; ownership becomes ours, as docker's cp does."""
    copied = 0
    uid, gid = os.getuid(), os.getgid()

    def keep_modes(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        checked = tarfile.tar_filter(member, path)  # refuses escapes and links through them
        return checked.replace(mode=member.mode, uid=uid, gid=gid, uname="", gname="",
                               deep=False)

    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            member.name = _rebase(member.name, root, rename)
            if member.name in ("", "."):
                continue
            copied += member.size if member.isfile() else 0
            existing = os.path.join(target_dir, member.name)
            if not member.isdir() and os.path.lexists(existing) and \
                    not os.path.isdir(existing):
                os.unlink(existing)  # replace a file or link, never write through it
            try:
                tar.extract(member, target_dir, numeric_owner=True, filter=keep_modes)
            except tarfile.FilterError as exc:
                raise StatusError(1, f"refusing to extract {member.name!r}: {exc}") from None
    return copied


# -- into a container ---------------------------------------------------------------------------


def _to_container(cli, opts, src: str, container: str, dst: str) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    params = {"noOverwriteDirNonDir": "true", "copyUIDGID": "true" if opts.archive else None}
    path = f"/containers/{quote_path(container)}/archive"
    if src == "-":
        if cli.isatty(cli.stdin):
            raise StatusError(1, "requested copy from stdin, but stdin is a terminal")
        client.request("PUT", path, dict(params, path=dst),
                       body=getattr(cli.stdin, "buffer", cli.stdin),
                       headers={"Content-Type": "application/x-tar"})
        return 0
    local = src
    if opts.follow_link:
        local = os.path.realpath(src)
    try:
        src_info = os.lstat(local)
    except FileNotFoundError:
        raise StatusError(1, f"could not find the file {src} on the local host") from None
    dst_info = _stat(client, container, dst)
    if dst_info and dst_info["mode"] & GO_SYMLINK and dst_info.get("linkTarget"):
        dst = dst_info["linkTarget"]
        dst_info = _stat(client, container, dst)
    src_is_dir = stat.S_ISDIR(src_info.st_mode)
    if dst_info is None:
        if dst.endswith("/"):
            raise StatusError(1, f"destination directory {dst!r} does not exist in "
                                 f"container {container}")
        extract_dir, arcname = posixpath.dirname(dst.rstrip("/")) or "/", \
            posixpath.basename(dst.rstrip("/"))
    elif dst_info["mode"] & GO_DIR:
        extract_dir = dst
        arcname = "." if src_is_dir and src.endswith("/.") else \
            os.path.basename(os.path.normpath(os.path.abspath(src)))
    else:
        if src_is_dir:
            raise StatusError(1, "cannot copy directory")
        extract_dir, arcname = posixpath.dirname(dst) or "/", posixpath.basename(dst)
    reader, counter = _tar_pipe(local, arcname)
    try:
        client.request("PUT", path, dict(params, path=extract_dir), body=reader,
                       headers={"Content-Type": "application/x-tar"})
    finally:
        reader.close()
    _report(cli, opts, counter["bytes"], f"{container}:{dst}")
    return 0


def _tar_pipe(local: str, arcname: str):
    """A readable file with the tar of `local` (named `arcname`), written by a thread."""
    rfd, wfd = os.pipe()
    counter = {"bytes": 0}

    def write():
        with open(wfd, "wb") as out:
            try:
                with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    def count(info: tarfile.TarInfo) -> tarfile.TarInfo:
                        counter["bytes"] += info.size
                        return info
                    tar.add(local, arcname=arcname, recursive=True, filter=count)
            except (BrokenPipeError, OSError):
                pass  # the daemon refused early; its answer says why

    threading.Thread(target=write, daemon=True).start()
    return open(rfd, "rb"), counter


def _report(cli, opts, size: int, where: str) -> None:
    if opts.quiet or not cli.isatty(cli.stderr):
        return
    from skiff.cli.format import human_size

    cli.err(f"Successfully copied {human_size(size)} to {where}")
