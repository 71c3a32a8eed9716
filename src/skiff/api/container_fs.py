"""A container's filesystem: `GET /containers/{id}/changes` (docker diff),
`GET /containers/{id}/export` (a tar of its rootfs), `POST /commit` (a new image) and the
archive API of `cp` (`HEAD`, `GET`, `PUT /containers/{id}/archive`)."""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import threading

from skiff.api import validate
from skiff.api.http import Request, Response, StreamingResponse, json_response
from skiff.engine import commit as commits
from skiff.engine import container_files
from skiff.errors import InvalidArgument, SkiffError

EXPORT_CHUNK = 1 << 20
EXPORT_QUEUE = 8          # chunks buffered between the tar writer thread and the socket


class _QueueWriter:
    """A file-like sink for a writer thread: bytes gathered into chunks on a bounded queue."""

    def __init__(self, q: queue.Queue, cancelled: threading.Event):
        self.q, self.cancelled = q, cancelled
        self.buf = bytearray()

    def write(self, data) -> int:
        self.buf += data
        if len(self.buf) >= EXPORT_CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            chunk, self.buf = bytes(self.buf), bytearray()
            while True:
                if self.cancelled.is_set():
                    raise BrokenPipeError("the client went away")
                try:
                    self.q.put(chunk, timeout=0.5)
                    return
                except queue.Full:
                    continue


_DONE = object()


def stream_from_thread(produce, headers: dict | None = None) -> StreamingResponse:
    """Run `produce(writer)` in a thread and stream what it writes. An error after the first
    bytes can only end the stream early (the status line has gone). `headers` may give a
    Content-Length that `produce` is sure to write exactly."""
    q: queue.Queue = queue.Queue(EXPORT_QUEUE)
    cancelled = threading.Event()

    def run():
        writer = _QueueWriter(q, cancelled)
        try:
            produce(writer)
            writer.flush()
            q.put(_DONE)
        except BaseException as exc:  # handed to the response, which ends early
            if not cancelled.is_set():
                q.put(exc)

    thread = threading.Thread(target=run, name="export", daemon=True)
    thread.start()

    async def body():
        try:
            while True:
                item = await asyncio.to_thread(q.get)
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()

    return StreamingResponse(body(), content_type="application/x-tar",
                             headers=dict(headers or {}))


def _commit_event(engine, container: str, image_id: str, repo: str, tag: str,
                  comment: str) -> None:
    """Docker logs a commit as a container event naming the new image."""
    from skiff.oci import reference

    image_ref = ""
    if repo:
        image_ref = reference.parse(f"{repo}:{tag}" if tag else repo).familiar()
    try:
        record = engine.containers.get(container)
    except SkiffError:
        return  # removed meanwhile: nothing to attribute the event to
    engine.containers._emit(record, "commit", comment=comment, imageID=image_id,
                            imageRef=image_ref)


def stat_header(info: dict) -> dict[str, str]:
    """docker's X-Docker-Container-Path-Stat: the stat as base64-encoded JSON."""
    encoded = base64.b64encode(json.dumps(info).encode()).decode()
    return {"X-Docker-Container-Path-Stat": encoded}


def routes(engine):
    async def changes(request: Request):
        found = await asyncio.to_thread(commits.changes, engine, request.match["id"])
        return json_response(found)

    async def export(request: Request):
        record = engine.containers.get(request.match["id"])  # 404 before the stream starts
        return stream_from_thread(lambda out: commits.export(engine, record.id, out))

    async def commit(request: Request):
        container = request.arg("container") or ""
        if not container:
            raise InvalidArgument("No such container: ")
        config = await request.json(None)
        if config is not None and not isinstance(config, dict):
            raise InvalidArgument("invalid JSON: the body must be a container config object")
        if config is not None:
            validate.check(config, validate.CONTAINER_CONFIG, "Config")
        image_id = await asyncio.to_thread(
            commits.commit, engine, container, repo=request.arg("repo") or "",
            tag=request.arg("tag") or "", comment=request.arg("comment") or "",
            author=request.arg("author") or "", changes=request.query.get("changes") or [],
            pause=request.flag("pause", True), config=config)
        _commit_event(engine, container, image_id, request.arg("repo") or "",
                      request.arg("tag") or "", request.arg("comment") or "")
        return json_response({"Id": image_id}, 201)

    async def archive(request: Request):
        """HEAD: the path's stat alone; GET: the stat and the path as a tar."""
        ref, path = request.match["id"], request.arg("path") or ""
        if request.method == "HEAD":
            info = await container_files.stat_path(engine, ref, path)
            return Response(200, b"", content_type="", headers=stat_header(info))
        info, chunks = await container_files.archive(engine, ref, path)
        return StreamingResponse(chunks, content_type="application/x-tar",
                                 headers=stat_header(info))

    async def put_archive(request: Request):
        await container_files.extract(
            engine, request.match["id"], request.arg("path") or "", request.stream(),
            no_overwrite_dir_non_dir=request.flag("noOverwriteDirNonDir"),
            copy_uid_gid=request.flag("copyUIDGID"))
        return Response(200, b"", content_type="")

    return [
        ("GET", "/containers/{id}/archive", archive),
        ("PUT", "/containers/{id}/archive", put_archive),
        ("GET", "/containers/{id}/changes", changes),
        ("GET", "/containers/{id}/export", export),
        ("POST", "/commit", commit),
    ]

