"""`POST /build` (docker's classic builder protocol) and `POST /build/prune`.

The body is the context as a tar (plain or compressed); query parameters as the docker CLI
and docker-py send them: t (repeated), dockerfile, buildargs and labels (JSON objects),
target, nocache, pull, q, rm, forcerm, networkmode, platform, cachefrom (a JSON list).
The answer is a stream of JSON messages ({"stream": "Step 1/2 : FROM busybox\\n"}, ...,
{"aux": {"ID": "sha256:..."}}); an error before anything was written is an HTTP error, as
dockerd answers, and one after it an {"errorDetail": ..., "error": ...} message.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil

from skiff.api.http import Request, StreamingResponse, json_response
from skiff.api.images import body_to_thread
from skiff.errors import InvalidArgument, SkiffError
from skiff.wire import progress

_DONE = object()
QUEUE_LIMIT = 256   # messages waiting for the client before RUN output is relayed no faster
HANGUP_POLL = 0.5   # seconds between checks that the client is still there, while a step is quiet


def _peer_gone(request: Request) -> bool:
    """Has the client closed the connection? (A quiet RUN step writes nothing for a long
    time, so a write would not tell.) A Unix socket whose peer is gone polls as hung up."""
    import select

    writer = getattr(getattr(request, "_conn", None), "writer", None)
    sock = writer.get_extra_info("socket") if writer is not None else None
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLHUP | getattr(select, "POLLRDHUP", 0))
    return any(events & (select.POLLHUP | getattr(select, "POLLRDHUP", 0))
               for _, events in poller.poll(0))


def _json_arg(request: Request, name: str, kind: type):
    text = request.arg(name)
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidArgument(f"invalid {name} parameter: {text}") from None
    if not isinstance(value, kind):
        raise InvalidArgument(f"invalid {name} parameter: {text}")
    return value


def options_from(request: Request, engine):
    from skiff.engine.builder import BuildOptions

    if request.arg("remote"):
        raise InvalidArgument("skiff builds from a context in the request body only "
                              "(remote is not supported)")
    build_args = _json_arg(request, "buildargs", dict)
    labels = _json_arg(request, "labels", dict)
    cache_from = _json_arg(request, "cachefrom", list)
    tags = [t for t in request.query.get("t", []) if t]
    from skiff.oci import reference

    for tag in tags:
        ref = reference.parse(tag)
        if ref.digest:
            raise InvalidArgument(f"invalid reference format: {tag}")
    from skiff.engine import build_ops
    from skiff.engine import pull as engine_pull

    registry_options = getattr(engine, "registry_options", None) or \
        engine_pull.RegistryOptions.from_environment(os.environ)
    return BuildOptions(
        registry_options=registry_options,
        registry_auth=build_ops.registry_auth(request.headers.get("x-registry-config")),
        dockerfile=request.arg("dockerfile") or "Dockerfile", tags=tags,
        build_args={str(k): (None if v is None else str(v)) for k, v in build_args.items()},
        labels={str(k): str(v) for k, v in labels.items()}, target=request.arg("target") or "",
        no_cache=request.flag("nocache"), pull=request.flag("pull"), quiet=request.flag("q"),
        network_mode=request.arg("networkmode") or "", platform=request.arg("platform") or "",
        cache_from=[str(c) for c in cache_from], remove=request.flag("rm", True),
        force_remove=request.flag("forcerm"))


def routes(engine):
    from skiff.engine import build_ops, builder

    build_ops.cleanup(engine)  # daemon start: scratch dirs and mounts of interrupted builds

    locks: dict[str, asyncio.Lock] = {}   # one build at a time per kept context

    async def context(request: Request):
        """skiff's incremental context transfer, step 1: which files the client must send
        (see build/context_store.py); step 2 is POST /build?skiffcontext=KEY."""
        manifest = await request.json()
        need = await asyncio.to_thread(build_ops.context_need, engine, request.arg("key") or "",
                                       manifest)
        return json_response({"Need": need})

    async def build(request: Request):
        options = options_from(request, engine)
        key = request.arg("skiffcontext") or ""
        lock = None
        if key:
            lock = locks.setdefault(key, asyncio.Lock())
            await lock.acquire()
        workdir = os.path.join(build_ops.build_dir(engine), secrets.token_hex(12))
        os.makedirs(workdir, mode=0o700)
        context_dir = os.path.join(workdir, "context")
        try:
            try:
                if key:
                    ctx = await body_to_thread(
                        request, lambda f: build_ops.context_apply(engine, key, f))
                else:
                    ctx = await body_to_thread(
                        request, lambda f: build_ops.receive_context(f, context_dir))
            except SkiffError as exc:
                if exc.status == 409:
                    raise
                raise InvalidArgument(f"failed to read the build context: {exc.message}") \
                    from None
        except BaseException:
            if lock is not None:
                lock.release()
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            raise

        queue: asyncio.Queue = asyncio.Queue()
        written = asyncio.Event()

        def emit(message: dict) -> None:
            queue.put_nowait(message)
            written.set()

        async def wait_room() -> None:
            while queue.qsize() > QUEUE_LIMIT:   # the client reads slower than RUN writes
                await asyncio.sleep(0.02)

        async def run():
            try:
                return await builder.build(engine, ctx, options, emit, workdir, wait_room)
            finally:
                try:
                    if key:
                        await asyncio.to_thread(build_ops.context_save, engine, key, ctx)
                    await asyncio.to_thread(shutil.rmtree, workdir, True)
                finally:
                    if lock is not None:
                        lock.release()

        task = asyncio.ensure_future(run())
        waiter = asyncio.ensure_future(written.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done() and queue.empty():
            task.result()  # an error before any output: an HTTP error, as dockerd's

        task.add_done_callback(lambda _: queue.put_nowait(_DONE))

        async def body():
            try:
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), HANGUP_POLL)
                    except asyncio.TimeoutError:
                        if _peer_gone(request):
                            return  # the client went away (docker's CLI on ^C): cancel below
                        continue
                    if item is _DONE:
                        break
                    yield progress.encode(item)
                while not queue.empty():
                    item = queue.get_nowait()
                    if item is not _DONE:
                        yield progress.encode(item)
                exc = None if task.cancelled() else task.exception()
                if exc is not None:
                    message = exc.message if isinstance(exc, SkiffError) else \
                        f"{type(exc).__name__}: {exc}"
                    detail = {"message": message}
                    if getattr(exc, "code", None) is not None and \
                            type(exc).__name__ == "BuildFailed":
                        detail["code"] = exc.code
                    yield progress.encode({"errorDetail": detail, "error": message})
            finally:
                if not task.done():  # the client went away: stop the build, clean up
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

        return StreamingResponse(body())

    async def prune(request: Request):
        result = await asyncio.to_thread(build_ops.prune, engine, request.flag("all"))
        return json_response(result)

    return [("POST", "/build", build), ("POST", "/build/prune", prune),
            ("POST", "/skiff/build/context", context)]
