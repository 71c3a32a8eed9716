"""A small HTTP/1.1 server on asyncio streams, with h11 doing the protocol.

Why not aiohttp: the Engine API's attach and exec hand the connection over to raw bytes
(`101 UPGRADED`, then both directions, with the client half-closing its side when its stdin
ends). aiohttp only supports that for websockets; h11 gives us the request, then the bytes that
followed it, and leaves the socket to us.

A handler gets a `Request` and returns a `Response` (whole body), a `StreamingResponse`
(chunked, written by an async generator) or `HIJACKED` after it has called `request.hijack()`.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

import h11

MAX_REQUEST_HEAD = 64 * 1024
READ_CHUNK = 64 * 1024


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamingResponse:
    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


HIJACKED = object()


def json_response(obj, status: int = 200, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(obj).encode() + b"\n", headers=headers or {})


class Hijacked:
    """The raw connection after `101 UPGRADED`: bytes from the client, bytes to it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, early: bytes):
        self._reader = reader
        self._writer = writer
        self._early = early

    async def read(self) -> bytes:
        """Next bytes from the client; b"" once it has closed or half-closed its side."""
        if self._early:
            data, self._early = self._early, b""
            return data
        try:
            return await self._reader.read(READ_CHUNK)
        except (ConnectionError, OSError):
            return b""

    def peer_gone(self) -> bool:
        """After read() returned b"": True if the client closed the whole connection, False
        if it only half-closed (shut down its writing side, as clients do when their stdin
        ends). A Unix socket whose peer is gone polls as hung up; a half-closed one does not.
        """
        import select

        sock = self._writer.get_extra_info("socket")
        if sock is None:
            return True
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLHUP)
        return any(events & select.POLLHUP for _, events in poller.poll(0))

    async def write(self, data: bytes) -> bool:
        """Send bytes; False once the client has gone."""
        if self._writer.is_closing():
            return False
        try:
            self._writer.write(data)
            await self._writer.drain()
            return True
        except (ConnectionError, OSError):
            return False

    async def close(self) -> None:
        try:
            self._writer.close()
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class Request:
    def __init__(self, conn: "_Connection", event: h11.Request):
        self._conn = conn
        self.method = event.method.decode()
        target = event.target.decode("latin-1")
        path, _, query = target.partition("?")
        self.raw_path = urllib.parse.unquote(path)
        self.path = self.raw_path
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        self.match: dict[str, str] = {}
        self.api_version: str | None = None
        self._body_done = False

    # --- query helpers -------------------------------------------------------------------
    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name)
        if value is None:
            return default
        return value.lower() not in ("", "0", "false", "no")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError:
            raise HTTPError(400, f"invalid value for {name}: {value!r}") from None

    # --- body ------------------------------------------------------------------------------
    async def stream(self) -> AsyncIterator[bytes]:
        """The request body, chunk by chunk (chunked or not), read once."""
        if self._body_done:
            return
        while True:
            event = await self._conn.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._body_done = True
                return
            else:
                raise HTTPError(400, "unexpected data in request body")

    async def read(self, limit: int = 16 * 1024 * 1024) -> bytes:
        parts, size = [], 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPError(400, "request body too large")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self, default=None):
        body = await self.read()
        if not body.strip():
            return default
        try:
            return json.loads(body)
        except ValueError as exc:
            raise HTTPError(400, f"invalid JSON: {exc}") from None

    async def drain(self) -> None:
        async for _ in self.stream():
            pass

    # --- hijack ----------------------------------------------------------------------------
    def wants_upgrade(self) -> bool:
        return "upgrade" in self.headers.get("connection", "").lower()

    async def hijack(self, content_type: str, extra_headers: dict | None = None) -> Hijacked:
        """Answer 101 UPGRADED (or 200 if the client did not ask to upgrade) and hand over
        the raw connection. The response head is sent before this returns."""
        return await self._conn.hijack(self, content_type, extra_headers or {})


Handler = Callable[[Request], Awaitable[object]]


class _Connection:
    def __init__(self, reader, writer, app: "Server"):
        self.reader = reader
        self.writer = writer
        self.app = app
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        self.hijacked = False

    async def next_event(self):
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(READ_CHUNK)
                self.h11.receive_data(data)
                continue
            return event

    async def send(self, event) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def hijack(self, request: Request, content_type: str, extra: dict) -> Hijacked:
        headers = [("Content-Type", content_type)] + list(self.app.common_headers().items())
        headers += list(extra.items())
        if request.wants_upgrade():
            head = ["HTTP/1.1 101 UPGRADED", "Connection: Upgrade", "Upgrade: tcp"]
        else:
            head = ["HTTP/1.1 200 OK"]
        head += [f"{k}: {v}" for k, v in headers]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await self.writer.drain()
        self.hijacked = True
        # Bytes the client sent after its request head (a body it may have written at once).
        early = b""
        if request.wants_upgrade():
            early = bytes(self.h11.trailing_data[0])
        else:
            # Without upgrade the request must have had no body; nothing else will come.
            pass
        return Hijacked(self.reader, self.writer, early)

    async def serve(self) -> None:
        try:
            while True:
                try:
                    event = await self.next_event()
                except h11.RemoteProtocolError as exc:
                    await self._send_error_and_close(exc.error_status_hint, str(exc))
                    return
                if isinstance(event, h11.ConnectionClosed) or event is None:
                    return
                if not isinstance(event, h11.Request):
                    return
                request = Request(self, event)
                keep_going = await self._handle(request)
                if not keep_going or self.hijacked:
                    return
                if self.h11.our_state is h11.MUST_CLOSE:
                    return
                try:
                    self.h11.start_next_cycle()
                except h11.LocalProtocolError:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not self.writer.is_closing():
                self.writer.close()

    async def _send_error_and_close(self, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        try:
            await self.send(h11.Response(status_code=status, headers=[
                ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                ("Connection", "close")]))
            await self.send(h11.Data(data=body))
            await self.send(h11.EndOfMessage())
        except Exception:
            pass

    async def _handle(self, request: Request) -> bool:
        try:
            result = await self.app.dispatch(request)
        except HTTPError as exc:
            result = json_response({"message": exc.message}, exc.status)
        if result is HIJACKED:
            return False
        if not request._body_done and self.h11.their_state is h11.SEND_BODY:
            try:
                await request.drain()
            except Exception:
                return False
        headers = self.app.common_headers()
        if isinstance(result, Response):
            headers.update(result.headers)
            body = result.body
            if result.status == 304 or result.status == 204 or request.method == "HEAD":
                if request.method == "HEAD":
                    headers["Content-Length"] = str(len(body))
                body = b""
            else:
                headers["Content-Length"] = str(len(body))
            if result.content_type:
                headers["Content-Type"] = result.content_type
            await self.send(h11.Response(status_code=result.status, headers=list(headers.items())))
            if body:
                await self.send(h11.Data(data=body))
            await self.send(h11.EndOfMessage())
            return True
        if isinstance(result, StreamingResponse):
            headers.update(result.headers)
            headers["Content-Type"] = result.content_type
            if "Content-Length" not in result.headers:  # a known length goes unframed
                headers["Transfer-Encoding"] = "chunked"
            try:  # the body's producer is closed even if the client left before the head
                await self.send(h11.Response(status_code=result.status,
                                             headers=list(headers.items())))
                async for chunk in result.chunks:
                    if chunk:
                        await self.send(h11.Data(data=chunk))
            finally:
                aclose = getattr(result.chunks, "aclose", None)
                if aclose:
                    await aclose()
            await self.send(h11.EndOfMessage())
            return True
        raise TypeError(f"handler returned {type(result).__name__}")


class Server:
    """Routes requests to handlers; `dispatch` is overridden/configured by the API layer."""

    def __init__(self, dispatch: Callable[[Request], Awaitable[object]],
                 common_headers: Callable[[], dict[str, str]]):
        self.dispatch = dispatch
        self.common_headers = common_headers
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task] = set()

    async def _on_connection(self, reader, writer) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await _Connection(reader, writer, self).serve()
        finally:
            self._tasks.discard(task)

    async def listen_unix(self, path: str) -> None:
        self._servers.append(await asyncio.start_unix_server(self._on_connection, path,
                                                             limit=READ_CHUNK))

    async def listen_socket(self, sock) -> None:
        """Serve on a listening socket we were handed (systemd socket activation)."""
        self._servers.append(await asyncio.start_unix_server(self._on_connection, sock=sock,
                                                             limit=READ_CHUNK))

    async def listen_tcp(self, addr: str, port: int, ssl_context) -> None:
        """TLS on addr:port (terminated by api/tls.py, which keeps half-closes working)."""
        from skiff.api.tls import serve_tls

        self._servers.append(await serve_tls(addr, port, ssl_context, self._on_connection,
                                             READ_CHUNK))

    async def close(self) -> None:
        for listener in self._servers:
            listener.close()
        for task in list(self._tasks):
            task.cancel()
