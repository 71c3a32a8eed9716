"""`cp`: a container's files read and written through docker's archive API (stat a path, a
path as a tar, a tar extracted into a directory), running or stopped.

The work happens in a process of its own (skiff.runtime.fsview) that sees the container's
filesystem as the container does; this module says what it should see and turns its answers
into docker's errors.

    info = await stat_path(engine, "web", "/etc/hosts")
    info, chunks = await archive(engine, "web", "/etc")      # chunks: an async tar stream
    await extract(engine, "web", "/tmp", request_chunks, copy_uid_gid=True)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from typing import AsyncIterator

from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError

CHUNK = 1 << 20
ROOTFS_MOUNTS_ANNOTATION = "org.skiff.rootfs.mounts"


class ReadOnlyTarget(SkiffError):
    """A write into a read-only rootfs or volume (docker answers 403)."""

    status = 403


def _request(engine, ref: str, op: str, path: str, **extra) -> tuple[object, dict]:
    if not path:
        raise InvalidArgument("path is required")  # docker: a bad parameter
    record = engine.containers.get(ref)
    state = record.state
    request = {"op": op, "path": path if path.startswith("/") else "/" + path, **extra}
    bundle = engine.containers.container_dir(record.id)
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
    except (OSError, ValueError):
        raise SkiffError(f"container {record.id} has no runtime bundle") from None
    if (spec.get("linux") or {}).get("uidMappings"):
        request["config"] = {"linux": spec["linux"], "annotations": spec.get("annotations")}
    if state.get("Running") and state.get("Pid"):
        request["pid"] = state["Pid"]
    else:
        if state.get("Restarting"):
            raise Conflict(f"Container {record.id} is restarting, wait until the container "
                           "is running")
        annotations = spec.get("annotations") or {}
        request.update(bundle=bundle, mounts=spec.get("mounts") or [],
                       rootfs=json.loads(annotations.get(ROOTFS_MOUNTS_ANNOTATION) or "[]"),
                       readonly=bool((spec.get("root") or {}).get("readonly")))
    return record, request


async def _spawn(request: dict, stdin: bool):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "skiff.runtime.fsview", json.dumps(request),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=CHUNK)


async def _reap(proc, request: dict) -> int:
    """Wait for the helper; remove the directory its idmapped layers were mounted in (a
    stopped user-namespaced container's: the mounts went with its private namespace)."""
    code = await proc.wait()
    if request.get("bundle") and request.get("config"):
        shutil.rmtree(os.path.join(request["bundle"], f"cp-lowers-{proc.pid}"),
                      ignore_errors=True)
    return code


def _failure(answer: dict, ref: str, path: str) -> SkiffError:
    status, text = answer.get("status", 500), answer.get("error") or "failed"
    if status == 404:
        return NotFound(f"Could not find the file {path} in container {ref}")
    if status == 400:
        return InvalidArgument(text)
    if status == 403:
        return ReadOnlyTarget(text)
    return SkiffError(text)


async def _first_line(proc, request: dict, ref: str, path: str) -> dict:
    line = await proc.stdout.readline()
    if not line:
        await _reap(proc, request)
        err = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
        raise SkiffError("cannot reach the container's files: " +
                         (err[-1] if err else f"exit status {proc.returncode}"))
    answer = json.loads(line)
    if "error" in answer:
        await _reap(proc, request)
        raise _failure(answer, ref, path)
    return answer


async def stat_path(engine, ref: str, path: str) -> dict:
    """docker's container path stat: name, size, mode (Go's FileMode bits), mtime,
    linkTarget."""
    _, request = _request(engine, ref, "stat", path)
    proc = await _spawn(request, stdin=False)
    answer = await _first_line(proc, request, ref, path)
    await _reap(proc, request)
    return answer["stat"]


async def archive(engine, ref: str, path: str) -> tuple[dict, AsyncIterator[bytes]]:
    record, request = _request(engine, ref, "get", path)
    proc = await _spawn(request, stdin=False)
    try:
        answer = await _first_line(proc, request, ref, path)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await _reap(proc, request)
        raise
    engine.containers._emit(record, "archive-path")

    async def chunks():
        try:
            while True:
                data = await proc.stdout.read(CHUNK)
                if not data:
                    break
                yield data
            if await _reap(proc, request) != 0:
                raise SkiffError("the archive of the container's files was cut short")
        finally:
            if proc.returncode is None:  # the client went away: stop reading their files
                proc.kill()
                await _reap(proc, request)

    return answer["stat"], chunks()


async def extract(engine, ref: str, path: str, body: AsyncIterator[bytes], *,
                  no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
    record, request = _request(engine, ref, "put", path,
                               no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                               copy_uid_gid=copy_uid_gid)
    proc = await _spawn(request, stdin=True)
    try:
        async for data in body:
            proc.stdin.write(data)
            await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # it answered early (a missing directory, a refused entry): its answer says why
    finally:
        if proc.returncode is None:
            try:
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass
    answer = await _first_line(proc, request, ref, path)
    await _reap(proc, request)
    if not answer.get("ok"):
        raise SkiffError("extracting the archive failed")
    engine.containers._emit(record, "extract-to-dir")
