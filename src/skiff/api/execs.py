"""/containers/{id}/exec, /exec/{id}/start|resize|json, and a container's processes:
/containers/{id}/top, /containers/{id}/pause, /containers/{id}/unpause.

skiff's own `POST /skiff/containers/{id}/exec` does docker's exec in one round trip (skiff's
CLI uses it; docker's three requests keep working unchanged): the body is docker's
ExecConfig (`ConsoleSize` sets the terminal's size at start), the answer `101 UPGRADED` with
the exec's id in `X-Skiff-Exec-Id` (for /exec/{id}/resize and /json), then the hijacked
stream, always framed as without a tty (a tty's output comes as stdout frames), ending with
one frame on stream 3 whose payload is `{"ExitCode": N}`. A stream that ends without it (the
client detached) leaves the exit code to `GET /exec/{id}/json`. Errors before the upgrade
are docker's create errors (404 no such container, 409 not running, 400 bad body).
"""

from __future__ import annotations

import asyncio
import json

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

    async def create_exec(request: Request) -> str:
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
        return execs.create(request.match["id"], body)

    async def create(request: Request):
        return json_response({"Id": await create_exec(request)}, 201)

    async def run(request: Request):
        """skiff's one-round-trip exec: create, start, stream, exit code (see above)."""
        exec_id = await create_exec(request)
        record = execs.check_startable(exec_id)
        return await stream(request, exec_id, record, _console_size(record.body),
                            framed=True, extra={"X-Skiff-Exec-Id": exec_id})

    async def start(request: Request):
        body = await request.json(default={}) or {}
        if not isinstance(body, dict):
            raise HTTPError(400, "invalid exec start body")
        validate.exec_start(body)
        exec_id = request.match["id"]
        record = execs.check_startable(exec_id)  # 404 / 409 before any upgrade
        console_size = _console_size(body)
        if body.get("Detach"):
            await execs.start(exec_id, detach=True, console_size=console_size)
            return Response(200, b"", content_type="text/plain")
        return await stream(request, exec_id, record, console_size, framed=not record.tty)

    async def stream(request: Request, exec_id: str, record, console_size, *, framed: bool,
                     extra: dict | None = None):
        """Upgrade, start the exec, and copy its stdio until it ends. `extra` headers mean
        skiff's own endpoint: framed output and the exit-code frame at the end."""
        tty = record.tty
        conn = await request.hijack(MULTIPLEXED_STREAM if framed else RAW_STREAM, extra)
        exit_frame = extra is not None
        try:
            session = await execs.start(exec_id, console_size=console_size)
        except RuntimeFailure as exc:
            text = (exc.message + "\r\n").encode()
            await conn.write(encode_frame(1, text) if framed else text)
            if exit_frame:
                await conn.write(_exit_frame(record.exit_code))
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
                    if exit_frame:
                        await conn.write(_exit_frame(record.exit_code))
                    break
                which, data = item
                if not await conn.write(encode_frame(which, data) if framed else data):
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
        ("POST", "/skiff/containers/{id}/exec", run),
        ("POST", "/exec/{id}/start", start),
        ("POST", "/exec/{id}/resize", resize),
        ("GET", "/exec/{id}/json", inspect),
        ("GET", "/containers/{id}/top", top),
        ("POST", "/containers/{id}/pause", pause),
        ("POST", "/containers/{id}/unpause", unpause),
    ]


def _console_size(body: dict) -> tuple[int, int] | None:
    size = body.get("ConsoleSize") or None
    return (int(size[0]), int(size[1])) if size and len(size) == 2 else None


def _exit_frame(code) -> bytes:
    return encode_frame(3, json.dumps({"ExitCode": code}).encode())
