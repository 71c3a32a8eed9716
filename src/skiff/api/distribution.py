"""Registry endpoints: POST /images/create?fromImage= (pull), POST /images/{name}/push,
GET /distribution/{name}/json, POST /auth. Blocking registry work runs in threads; progress
crosses back to the event loop through a queue and is streamed as docker's JSON messages."""

from __future__ import annotations

import asyncio
import json

from skiff.api.http import Request, StreamingResponse, json_response
from skiff.errors import InvalidArgument, SkiffError
from skiff.oci import reference
from skiff.wire import progress

_DONE = object()


def _credentials(request: Request):
    from skiff.engine import pull as engine_pull
    return engine_pull.credentials_from_header(request.headers.get("x-registry-auth"))


def _with_bar(message: dict) -> dict:
    """Docker's rendered progress bar beside a message's progressDetail."""
    detail = message.get("progressDetail")
    if detail:
        bar = progress.render_progress(detail.get("current"), detail.get("total"))
        if bar:
            message = dict(message, progress=bar)
    return message


def _stream(work, succeeded=None) -> StreamingResponse:
    """Run `work(emit)` in a thread; stream what it emits, then an errorDetail if it fails.
    `succeeded()` runs on the event loop once the work has finished without an error."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def emit(message: dict) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, _with_bar(message))

    async def run():
        try:
            await asyncio.to_thread(work, emit)
            if succeeded is not None:
                succeeded()
        except SkiffError as exc:
            queue.put_nowait(progress.error_message(exc.message))
        except Exception as exc:  # a bug: still a well-formed stream for the client
            queue.put_nowait(progress.error_message(f"{type(exc).__name__}: {exc}"))
        finally:
            queue.put_nowait(_DONE)

    task = loop.create_task(run())

    async def body():
        try:
            while True:
                message = await queue.get()
                if message is _DONE:
                    break
                yield progress.encode(message)
        finally:
            await task

    return StreamingResponse(body())


def _pull_reference(source: str, tag: str) -> str:
    """`fromImage` and `tag` as one reference: the tag parameter may hold a digest."""
    if not tag:
        return source
    return f"{source}@{tag}" if ":" in tag else f"{source}:{tag}"


def _event(engine, action: str, ref: reference.Reference) -> None:
    """Docker logs pull and push with the familiar reference as the actor and its name."""
    from skiff.api.images import emit_image_event
    emit_image_event(engine, action, ref.familiar(), ref.familiar_name())


def routes(engine):
    from skiff.engine import pull as engine_pull

    import os
    configured = getattr(engine, "registry_options", None) or \
        engine_pull.RegistryOptions.from_environment(os.environ)

    def options():
        return configured

    async def create(request: Request):
        source = request.arg("fromImage") or ""
        if not source:
            raise InvalidArgument("fromImage is required (importing with fromSrc is not "
                                  "supported here)")
        text = _pull_reference(source, request.arg("tag") or "")
        ref = reference.parse(text)
        platform = request.arg("platform") or None
        creds = _credentials(request)
        await request.drain()
        bare = reference.parse(text, default_tag=False)
        if not bare.tag and not bare.digest:      # no tag at all: every tag (pull -a)
            def all_tags(emit):
                engine_pull.pull_all_tags(engine.images, text, platform=platform,
                                          credentials=creds, options=options(), progress=emit)
            return _stream(all_tags, lambda: _event(engine, "pull", bare))

        job = engine_pull.Pull(engine.images, str(ref), platform=platform, credentials=creds,
                               options=options())
        await asyncio.to_thread(job.resolve)   # unknown image, denied: an HTTP error status
        return _stream(job.run, lambda: _event(engine, "pull", ref))

    async def push(request: Request):
        from skiff.engine import push as engine_push

        name = request.match["name"]
        tag = request.arg("tag") or ""
        text = f"{name}:{tag}" if tag else name
        ref = reference.parse(text, default_tag=bool(tag))
        creds = _credentials(request)
        await request.drain()
        await asyncio.to_thread(engine.images.get, text if tag else name)  # 404 before 200

        def work(emit):
            engine_push.push(engine.images, text, credentials=creds, options=options(),
                             progress=emit, all_tags=not ref.tag)

        return _stream(work, lambda: _event(engine, "push", ref))

    async def distribution(request: Request):
        ref = reference.parse(request.match["name"])
        creds = _credentials(request)

        def inspect():
            client = engine_pull.client_for(ref, options(), creds)
            try:
                digest, media_type, size = client.head_manifest(ref.path,
                                                                ref.digest or ref.tag)
                fetched = client.get_manifest(ref.path, digest, expected_digest=digest)
            finally:
                client.close()
            platforms = []
            if fetched.is_index:
                platforms = [d.platform.to_dict() for d in fetched.document.manifests
                             if d.platform and d.platform.os != "unknown"]
            else:
                try:
                    raw = json.loads(fetched.data)
                except ValueError:
                    raw = {}
                platforms = [{"architecture": engine_pull.host_platform().architecture,
                              "os": "linux"}] if raw else []
            return {"Descriptor": {"mediaType": fetched.media_type, "digest": fetched.digest,
                                   "size": len(fetched.data)},
                    "Platforms": platforms}

        return json_response(await asyncio.to_thread(inspect))

    async def login(request: Request):
        doc = await request.json(default={}) or {}
        lowered = {str(k).lower(): v for k, v in doc.items()} if isinstance(doc, dict) else {}
        await asyncio.to_thread(engine_pull.login, str(lowered.get("serveraddress") or ""),
                                str(lowered.get("username") or ""),
                                str(lowered.get("password") or ""), options())
        return json_response({"Status": "Login Succeeded", "IdentityToken": ""})

    return [
        ("POST", "/images/create", create),
        ("POST", "/images/{name:.+}/push", push),
        ("GET", "/distribution/{name:.+}/json", distribution),
        ("POST", "/auth", login),
    ]
