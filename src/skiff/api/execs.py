"""/containers/{id}/exec, /exec/{id}/start|resize|json, and a container's processes:
/containers/{id}/top, /containers/{id}/pause, /containers/{id}/unpause."""

from __future__ import annotations

import asyncio

from skiff.api import validate
from skiff.api.http import HIJACKED, HTTPError, Request, Response, json_response
from skiff.errors import InvalidArgument, RuntimeFailure
from skiff.wire.detach import DEFAULT_DETACH_KEYS, EscapeDetector, detach_sequence
from skiff.wire.framing import encode_frame

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def routes(engine):
    execs = engine.execs
    process = engine.process

    async def create(request: Request):
        body = await request.json(default=None)
        if not isinstance(body, dict):
            raise InvalidArgument("No exec command specified")
        validate.exec_create(body)
        if "detachKeys" in body and "DetachKeys" not in body:   # Go decodes JSON keys in any
            body["DetachKeys"] = body.pop("detachKeys")          # case; docker-py sends this
        if body.get("DetachKeys"):
            try:
                detach_sequence(body["DetachKeys"])
            except ValueError:
                raise InvalidArgument(f"Invalid escape keys ({body['DetachKeys']}) provided") \
                    from None
        exec_id = execs.create(request.match["id"], body)
        return json_response({"Id": exec_id}, 201)

    async def start(request: Request):
        body = await request.json(default={}) or {}
        if not isinstance(body, dict):
            raise HTTPError(400, "invalid exec start body")
        validate.exec_start(body)
        exec_id = request.match["id"]
        record = execs.check_startable(exec_id)  # 404 / 409 before any upgrade
        size = body.get("ConsoleSize") or None
        console_size = (int(size[0]), int(size[1])) if size and len(size) == 2 else None
        if body.get("Detach"):
            await execs.start(exec_id, detach=True, console_size=console_size)
            return Response(200, b"", content_type="text/plain")
        tty = record.tty
        conn = await request.hijack(RAW_STREAM if tty else MULTIPLEXED_STREAM)
        try:
            session = await execs.start(exec_id, console_size=console_size)
        except RuntimeFailure as exc:
            text = (exc.message + "\r\n").encode()
            await conn.write(text if tty else encode_frame(1, text))
            await conn.close()
            return HIJACKED

        # docker's detach keys (the exec's DetachKeys, else ctrl-p,ctrl-q), with a terminal
        # only: typed by the client, they end its session; the process runs on
        detector = None
        if tty and record.body.get("AttachStdin"):
            detector = EscapeDetector(detach_sequence(record.body.get("DetachKeys")
                                                      or DEFAULT_DETACH_KEYS))
        detached = asyncio.Event()

        async def pump_stdin():
            while True:
                data = await conn.read()
                if not data:
                    session.close_stdin()
                    return
                if detector is not None:
                    data, done = detector.feed(data)
                    if data:
                        await session.send_stdin(data)
                    if done:
                        detached.set()
                        return
                else:
                    await session.send_stdin(data)

        stdin_task = asyncio.ensure_future(pump_stdin())
        detach_wait = asyncio.ensure_future(detached.wait())
        try:
            while True:
                next_item = asyncio.ensure_future(session.next())
                await asyncio.wait({next_item, detach_wait},
                                   return_when=asyncio.FIRST_COMPLETED)
                if detached.is_set():
                    next_item.cancel()
                    execs.detached(exec_id)
                    break
                item = next_item.result()
                if item is None:
                    break
                which, data = item
                if not await conn.write(data if tty else encode_frame(which, data)):
                    break
        finally:
            stdin_task.cancel()
            detach_wait.cancel()
            session.close()
            await conn.close()
        return HIJACKED

    async def resize(request: Request):
        execs.get(request.match["id"])
        await execs.resize(request.match["id"], request.int_arg("h", 0),
                           request.int_arg("w", 0))
        return Response(200, b"", content_type="text/plain")

    async def inspect(request: Request):
        return json_response(execs.inspect(request.match["id"]))

    async def top(request: Request):
        return json_response(await process.top(request.match["id"], request.arg("ps_args")))

    async def pause(request: Request):
        await process.pause(request.match["id"])
        return Response(204)

    async def unpause(request: Request):
        await process.unpause(request.match["id"])
        return Response(204)

    return [
        ("POST", "/containers/{id}/exec", create),
        ("POST", "/exec/{id}/start", start),
        ("POST", "/exec/{id}/resize", resize),
        ("GET", "/exec/{id}/json", inspect),
        ("GET", "/containers/{id}/top", top),
        ("POST", "/containers/{id}/pause", pause),
        ("POST", "/containers/{id}/unpause", unpause),
    ]
