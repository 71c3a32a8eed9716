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


class _Helper:
    """One fsview process. A stopped container's rootfs is mounted by it, so the container
    is not started while it runs (the container's lock is held until it has exited)."""

    def __init__(self, request: dict, proc, lock: asyncio.Lock | None):
        self.request, self.proc, self.lock = request, proc, lock

    @classmethod
    async def open(cls, engine, ref: str, op: str, path: str, stdin: bool = False, **extra):
        record = engine.containers.get(ref)
        lock = engine.containers.lock(record.id)
        await lock.acquire()
        try:
            record, request = _request(engine, ref, op, path, **extra)  # state as of now
            if request.get("pid"):
                lock.release()    # running: its own mount namespace, nothing to guard
                lock = None
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "skiff.runtime.fsview", json.dumps(request),
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=CHUNK)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return record, cls(request, proc, lock)

    async def finish(self, kill: bool = False) -> int:
        """Wait for the process (kill it first if asked and still running); remove where a
        stopped user-namespaced container's layers were mounted (the mounts went with the
        process's private namespace); let the container start again."""
        try:
            if kill and self.proc.returncode is None:
                self.proc.kill()
            code = await self.proc.wait()
            if self.request.get("bundle") and self.request.get("config"):
                shutil.rmtree(os.path.join(self.request["bundle"],
                                           f"cp-lowers-{self.proc.pid}"), ignore_errors=True)
            return code
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    async def first_line(self, ref: str, path: str) -> dict:
        line = await self.proc.stdout.readline()
        if not line:
            await self.finish()
            err = (await self.proc.stderr.read()).decode(errors="replace").strip().splitlines()
            raise SkiffError("cannot reach the container's files: " +
                             (err[-1] if err else f"exit status {self.proc.returncode}"))
        answer = json.loads(line)
        if "error" in answer:
            await self.finish()
            raise _failure(answer, ref, path)
        return answer


class _TarStream:
    """The helper's tar output as the response body; closing it early (a client that went
    away, or never read) kills the helper."""

    def __init__(self, helper: _Helper):
        self.helper = helper

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        data = await self.helper.proc.stdout.read(CHUNK)
        if data:
            return data
        if await self.helper.finish() != 0:
            raise SkiffError("the archive of the container's files was cut short")
        raise StopAsyncIteration

    async def aclose(self) -> None:
        await self.helper.finish(kill=True)


def _failure(answer: dict, ref: str, path: str) -> SkiffError:
    status, text = answer.get("status", 500), answer.get("error") or "failed"
    if status == 404:
        return NotFound(f"Could not find the file {path} in container {ref}")
    if status == 400:
        return InvalidArgument(text)
    if status == 403:
        return ReadOnlyTarget(text)
    return SkiffError(text)


async def stat_path(engine, ref: str, path: str) -> dict:
    """docker's container path stat: name, size, mode (Go's FileMode bits), mtime,
    linkTarget."""
    _, helper = await _Helper.open(engine, ref, "stat", path)
    answer = await helper.first_line(ref, path)
    await helper.finish()
    return answer["stat"]


async def archive(engine, ref: str, path: str) -> tuple[dict, AsyncIterator[bytes]]:
    record, helper = await _Helper.open(engine, ref, "get", path)
    try:
        answer = await helper.first_line(ref, path)
    except BaseException:
        await helper.finish(kill=True)
        raise
    engine.containers._emit(record, "archive-path")
    return answer["stat"], _TarStream(helper)


async def extract(engine, ref: str, path: str, body: AsyncIterator[bytes], *,
                  no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
    record, helper = await _Helper.open(engine, ref, "put", path, stdin=True,
                                        no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                                        copy_uid_gid=copy_uid_gid)
    proc = helper.proc
    try:
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
        answer = await helper.first_line(ref, path)
    except BaseException:
        await helper.finish(kill=True)
        raise
    await helper.finish()
    if not answer.get("ok"):
        raise SkiffError("extracting the archive failed")
    engine.containers._emit(record, "extract-to-dir")
