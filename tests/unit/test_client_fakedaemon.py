"""A small fake Engine API daemon on a Unix socket, for unit tests of the client's protocol
handling and of CLI commands. Not a daemon: each test scripts the answers it needs.

Routes map (METHOD, regex on the unversioned path) to a handler `fn(req, sock)` returning a
`Reply`, or None when the handler has taken the socket over (hijack tests).
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Request:
    method: str
    target: str
    path: str               # without the /vX.Y prefix
    version: str | None     # the /vX.Y prefix, if any
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | list | None = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None   # sent with chunked encoding, one write per chunk
    delay: float = 0.0                  # between chunks
    reason: str = ""


def json_reply(obj, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})


def error_reply(status: int, message: str) -> Reply:
    return json_reply({"message": message}, status)


REASONS = {101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
           400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}


def read_request(sock: socket.socket, buf: bytes = b"") -> tuple[Request | None, bytes]:
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buf += data
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(buf) < need:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
        body, buf = buf[:need], buf[need:]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            size_line, buf = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf += sock.recv(65536)
            out += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                break
        body = bytes(out)
    split = urlsplit(target)
    path = split.path
    version = None
    match = re.match(r"/v(\d+\.\d+)(/.*)", path)
    if match:
        version, path = match.group(1), match.group(2)
    query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    return Request(method, target, path, version, query, headers, body), buf


def send_reply(sock: socket.socket, reply: Reply, api_version: str) -> None:
    body = reply.body
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        reply.headers.setdefault("Content-Type", "application/json")
    reason = reply.reason or REASONS.get(reply.status, "OK")
    headers = {"Server": "fake/1.0", "Ostype": "linux"}
    if api_version:
        headers["Api-Version"] = api_version
    headers.update(reply.headers)
    if reply.chunks is not None:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(len(body or b""))
    head = f"HTTP/1.1 {reply.status} {reason}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    if reply.chunks is None:
        sock.sendall(head.encode() + (body or b""))
        return
    sock.sendall(head.encode())
    for chunk in reply.chunks:
        if reply.delay:
            time.sleep(reply.delay)
        if chunk:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    sock.sendall(b"0\r\n\r\n")


class FakeDaemon:
    def __init__(self, api_version: str | None = "1.45"):
        self.dir = tempfile.mkdtemp(prefix="skiff-fake-")
        self.path = os.path.join(self.dir, "d.sock")
        self.host = f"unix://{self.path}"
        self.api_version = api_version
        self.routes: list[tuple[str, re.Pattern, object]] = []
        self.requests: list[Request] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(64)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        self.route("GET", "/_ping", lambda req, sock: Reply(200, b"OK"))
        self.route("HEAD", "/_ping", lambda req, sock: Reply(200, b""))

    def route(self, method: str, pattern: str, handler) -> None:
        # later routes win, so a test can override the defaults
        self.routes.insert(0, (method, re.compile(pattern + r"\Z"), handler))

    def reply(self, method: str, pattern: str, reply) -> None:
        self.route(method, pattern, lambda req, sock: reply)

    def calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests if r.path != "/_ping"]

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                req, buf = read_request(conn, buf)
                if req is None:
                    return
                self.requests.append(req)
                for method, pattern, handler in self.routes:
                    if method == req.method and pattern.match(req.path):
                        reply = handler(req, conn)
                        break
                else:
                    reply = error_reply(404, f"page not found: {req.path}")
                if reply is None:
                    return  # hijacked: the handler owns (and closed) the socket
                send_reply(conn, reply, self.api_version or "")
                if req.headers.get("connection", "").lower() == "close":
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


@pytest.fixture
def daemon():
    fake = FakeDaemon()
    try:
        yield fake
    finally:
        fake.close()


def test_fake_daemon_answers_ping(daemon):
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(daemon.path)
    sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"Api-Version: 1.45" in data
