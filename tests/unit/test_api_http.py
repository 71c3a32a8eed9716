"""The HTTP layer over a real Unix socket: plain requests, chunked bodies, the hijack."""

import asyncio
import json
import os
import socket
import tempfile

from skiff.api.http import HIJACKED, Response, Server, StreamingResponse, json_response


async def dispatch(request):
    if request.path == "/echo":
        body = await request.read()
        return json_response({"len": len(body), "q": request.arg("q")})
    if request.path == "/stream":
        async def chunks():
            for i in range(3):
                yield f"{i}\n".encode()
        return StreamingResponse(chunks())
    if request.path == "/hijack":
        conn = await request.hijack("application/vnd.docker.raw-stream")
        received = b""
        while True:
            data = await conn.read()
            if not data:
                break
            received += data
        await conn.write(b"got:" + received)  # still writable after the client's half-close
        await conn.close()
        return HIJACKED
    return Response(404, b'{"message": "page not found"}')


def with_server(test):
    async def main():
        path = os.path.join(tempfile.mkdtemp(), "s.sock")
        server = Server(dispatch, lambda: {"Api-Version": "1.47"})
        await server.listen_unix(path)
        try:
            await asyncio.to_thread(test, path)
        finally:
            await server.close()
    asyncio.run(main())


def exchange(path, raw: bytes, half_close=False) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(raw)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    out = b""
    s.settimeout(5)
    while True:
        data = s.recv(65536)
        if not data:
            break
        out += data
        if not half_close and out.endswith(b"0\r\n\r\n") or (b"Content-Length" in out and
                                                          out.endswith(b"}\n")):
            break
    s.close()
    return out


def test_json_and_chunked_request_body():
    def check(path):
        req = (b"POST /echo?q=x HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n")
        out = exchange(path, req)
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Api-Version: 1.47" in head
        assert json.loads(body) == {"len": 8, "q": "x"}
    with_server(check)


def test_streaming_response_is_chunked():
    def check(path):
        out = exchange(path, b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in out
        assert b"2\r\n0\n\r\n2\r\n1\n\r\n2\r\n2\n\r\n0\r\n\r\n" in out
    with_server(check)


def test_hijack_answers_101_and_survives_half_close():
    def check(path):
        req = (b"POST /hijack HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
               b"\r\nearly-bytes")
        out = exchange(path, req, half_close=True)
        head, _, rest = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 UPGRADED")
        assert b"Upgrade: tcp" in head
        assert b"application/vnd.docker.raw-stream" in head
        assert rest == b"got:early-bytes"
    with_server(check)


def test_malformed_request_gets_400():
    def check(path):
        out = exchange(path, b"NOT HTTP AT ALL\r\n\r\n", half_close=True)
        assert out.startswith(b"HTTP/1.1 400")
    with_server(check)
