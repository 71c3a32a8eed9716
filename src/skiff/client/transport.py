"""Connections to a daemon: host strings, sockets, and just enough HTTP/1.1 for the Engine API.

Why not http.client: importing it (and the email package it parses headers with) costs 30-50
ms, more than the rest of the CLI's start-up together, and it cannot hand over a socket after
`101 UPGRADED` without losing the bytes it has already buffered. What the API needs is small:
one request per connection; bodies framed by Content-Length, chunked encoding, or the end of
the connection; uploads of unknown length sent chunked.

The parsers (`parse_response_head`, `ChunkedDecoder`, `body_framing`) take bytes and return
values; `HTTPConnection` and `HTTPResponse` do the socket I/O around them. Every foreign
exception raised while connecting is translated here, once, into `DaemonUnreachable`.
"""

from __future__ import annotations

import _socket  # the C module: `socket` costs ~8 ms of start-up (its enum conversions)

from skiff.client.errors import DaemonUnreachable, ProtocolError
from skiff.errors import InvalidArgument

# Docker's Go client sends this Host header on Unix sockets; servers ignore it.
DUMMY_HOST = "api.moby.localhost"
DEFAULT_TCP_PORT = 2375

# Named limits on what we buffer of a daemon's answer.
MAX_RESPONSE_HEAD = 64 * 1024     # status line and headers
MAX_CHUNK_LINE = 4 * 1024         # a chunk-size line with its extensions, or a trailer line
READ_SIZE = 256 * 1024


def parse_host(host: str) -> tuple[str, str | tuple[str, int]]:
    """`unix:///run/skiff/skiff.sock` -> ("unix", "/run/skiff/skiff.sock");
    `tcp://127.0.0.1:2375` (or `http://`) -> ("tcp", ("127.0.0.1", 2375))."""
    if not host:
        raise InvalidArgument("empty host")
    scheme, sep, rest = host.partition("://")
    if not sep:
        if host.startswith("/"):
            return "unix", host
        raise InvalidArgument(f"unable to parse docker host `{host}`")
    scheme = scheme.lower()
    if scheme == "unix":
        if not rest.startswith("/"):
            raise InvalidArgument(f"invalid unix socket address: {host}")
        return "unix", rest
    if scheme in ("tcp", "http"):
        rest = rest.rstrip("/")
        if rest.startswith("["):
            addr, _, port = rest[1:].partition("]")
            port = port.lstrip(":")
        else:
            addr, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
        try:
            number = int(port) if port else DEFAULT_TCP_PORT
        except ValueError:
            raise InvalidArgument(f"invalid port in host {host}") from None
        return "tcp", (addr or "127.0.0.1", number)
    raise InvalidArgument(f"unsupported protocol in host {host}: {scheme}")


def unreachable(host: str, exc: OSError) -> DaemonUnreachable:
    """The message the docker CLI prints, adapted to skiff."""
    if type(exc).__module__ == "ssl":  # a certificate refused, by us or by the daemon
        err = DaemonUnreachable(f"error during connect to {host}: TLS: "
                                f"{getattr(exc, 'reason', None) or exc}", host)
    elif isinstance(exc, PermissionError):
        err = DaemonUnreachable(
            f"permission denied while trying to connect to the skiff daemon socket at {host}: "
            f"{exc.strerror or exc}",
            host,
        )
    else:
        err = DaemonUnreachable(
            f"Cannot connect to the skiff daemon at {host}. Is the skiff daemon running?", host
        )
    err.__cause__ = exc
    return err


def open_socket(host: str, timeout: float | None = None, tls=None) -> socket.socket:
    """A connected stream socket to `host`, or `DaemonUnreachable`; over TLS when `tls`
    (a client.tls.TLSConfig) is given for a tcp:// host."""
    kind, address = parse_host(host)
    try:
        if kind == "unix":
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(address)
            except BaseException:
                sock.close()
                raise
        else:
            import socket

            sock = socket.create_connection(address, timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                from skiff.client import tls as client_tls

                try:
                    sock = client_tls.wrap(sock, tls, address[0])
                except BaseException:
                    sock.close()
                    raise
    except OSError as exc:
        raise unreachable(host, exc) from exc
    return sock


# -- the raw response head, for hijacked connections ----------------------------------------


def split_head(buf: bytes) -> tuple[bytes, bytes] | None:
    """(head, rest) once `buf` holds a complete response head, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    return buf[: end + 4], buf[end + 4 :]


class Headers(dict):
    """Response headers by lowercased name; lookups ignore case."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)

    def __getitem__(self, name: str):
        return super().__getitem__(name.lower())

    def __contains__(self, name) -> bool:
        return super().__contains__(name.lower())


def parse_response_head(head: bytes) -> tuple[int, str, Headers]:
    """`HTTP/1.1 101 UPGRADED\\r\\nUpgrade: tcp\\r\\n\\r\\n` -> (101, "UPGRADED", {"upgrade": "tcp"}).

    Header names are lowercased; repeated headers are joined with ", ".
    """
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        raise ProtocolError("undecodable response head") from None
    lines = text.split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ProtocolError(f"malformed status line from daemon: {status_line[:100]!r}")
    try:
        status = int(parts[1])
    except ValueError:
        raise ProtocolError(f"malformed status line from daemon: {status_line[:100]!r}") from None
    reason = parts[2] if len(parts) > 2 else ""
    headers = Headers()
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"malformed header line from daemon: {line[:100]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return status, reason, headers


class ChunkedDecoder:
    """Incremental decoder of a chunked body: `feed(bytes) -> payload bytes`; `done` once the
    last chunk and the trailers have been read. Bad framing raises ProtocolError."""

    def __init__(self):
        self._buf = bytearray()
        self._state = "size"
        self._remaining = 0
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray()
        while not self.done:
            if self._state == "size" or self._state == "trailer":
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_CHUNK_LINE:
                        raise ProtocolError("chunk size line too long")
                    break
                line = bytes(buf[:end])
                del buf[:end + 2]
                if self._state == "trailer":
                    if not line:
                        self.done = True
                    continue
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line {line[:40]!r}") from None
                if size < 0:
                    raise ProtocolError(f"bad chunk size line {line[:40]!r}")
                if size == 0:
                    self._state = "trailer"
                else:
                    self._remaining = size
                    self._state = "data"
            elif self._state == "data":
                if not buf:
                    break
                take = min(self._remaining, len(buf))
                out += buf[:take]
                del buf[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "crlf"
            else:  # crlf after a chunk's data
                if len(buf) < 2:
                    break
                if buf[:2] != b"\r\n":
                    raise ProtocolError("missing CRLF after chunk data")
                del buf[:2]
                self._state = "size"
        return bytes(out)


def body_framing(method: str, status: int, headers: Headers) -> tuple[str, int]:
    """How the body of an answer ends: ("none", 0), ("length", n), ("chunked", 0) or
    ("close", 0)."""
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        return "none", 0
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        return "chunked", 0
    length = headers.get("content-length")
    if length is not None:
        try:
            size = int(length.split(",")[0].strip())
        except ValueError:
            raise ProtocolError(f"bad Content-Length {length!r}") from None
        if size < 0:
            raise ProtocolError(f"bad Content-Length {length!r}")
        return "length", size
    return "close", 0


class ClosedBeforeAnswer(ProtocolError):
    pass


def read_response_head(sock: socket.socket) -> tuple[int, str, Headers, bytes]:
    """Read from `sock` until the response head is complete; return the status, the reason,
    the headers, and every byte read after the head (the start of the raw stream)."""
    buf = b""
    while True:
        found = split_head(buf)
        if found is not None:
            head, rest = found
            status, reason, headers = parse_response_head(head)
            return status, reason, headers, rest
        if len(buf) > MAX_RESPONSE_HEAD:
            raise ProtocolError(f"response head longer than {MAX_RESPONSE_HEAD} bytes")
        chunk = sock.recv(65536)
        if not chunk:
            raise ClosedBeforeAnswer("daemon closed the connection before answering")
        buf += chunk


def encode_request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HTTPConnection:
    """One request, one answer, over one socket."""

    def __init__(self, host: str, timeout: float | None = None, tls=None):
        self.host = host
        self.timeout = timeout
        self.tls = tls
        self.sock: socket.socket | None = None
        self.send_failed = False

    def connect(self) -> None:
        if self.sock is None:
            self.sock = open_socket(self.host, self.timeout, self.tls)

    def send_request(self, method: str, target: str, headers: dict[str, str], body=None) -> None:
        """Send the request. `body`: None, bytes, a file object or an iterable of bytes; the
        latter two go chunked unless `headers` holds a Content-Length. A daemon that answers
        (an error, usually) before taking the whole body sets `send_failed`: its answer is
        still there to read."""
        self.connect()
        hdrs = {"Host": DUMMY_HOST if self.host.startswith(("unix://", "/")) else "localhost"}
        hdrs.update(headers)
        names = {name.lower() for name in hdrs}
        chunks = None
        if body is None:
            if method in ("POST", "PUT", "PATCH") and "content-length" not in names:
                hdrs["Content-Length"] = "0"
            payload = b""
        elif isinstance(body, (bytes, bytearray, memoryview)):
            payload = bytes(body)
            hdrs["Content-Length"] = str(len(payload))
        else:
            payload = b""
            chunks = _iter_body(body)
            if "content-length" not in names:
                hdrs["Transfer-Encoding"] = "chunked"
        framed = chunks is not None and "content-length" not in names
        try:
            self.sock.sendall(encode_request_head(method, target, hdrs) + payload)
            if chunks is not None:
                for data in chunks:
                    if not data:
                        continue
                    if framed:
                        self.sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
                    else:
                        self.sock.sendall(data)
                if framed:
                    self.sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.send_failed = True
        except OSError as exc:
            if type(exc).__module__ != "ssl":
                raise
            self.send_failed = True  # a refused TLS client hears why when it reads

    def get_response(self, method: str) -> "HTTPResponse":
        try:
            status, reason, headers, rest = read_response_head(self.sock)
        except (OSError, ClosedBeforeAnswer) as exc:
            if self.tls is not None and (type(exc).__module__ == "ssl" or isinstance(
                    exc, (ConnectionResetError, ClosedBeforeAnswer))):
                # TLS 1.3 tells a client its certificate was refused only after the handshake
                raise ProtocolError("error during connect: remote error: tls: the daemon "
                                    "refused this client's certificate "
                                    f"({getattr(exc, 'reason', None) or exc})") from None
            if isinstance(exc, ClosedBeforeAnswer):
                raise
            if isinstance(exc, ConnectionResetError):
                raise ProtocolError("daemon closed the connection before answering") from None
            raise ProtocolError(f"error reading response: {exc}") from exc
        return HTTPResponse(self, method, status, reason, headers, rest)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None


def _iter_body(body):
    read = getattr(body, "read", None)
    if read is None:
        yield from body
        return
    while True:
        data = read(READ_SIZE)
        if not data:
            return
        yield data if isinstance(data, bytes) else data.encode()


class HTTPResponse:
    """A response whose head has been read; the body is read on demand."""

    def __init__(self, conn: HTTPConnection, method: str, status: int, reason: str,
                 headers: Headers, buffered: bytes):
        self.conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self._buffered = buffered
        self._mode, self._remaining = body_framing(method, status, headers)
        self._decoder = ChunkedDecoder() if self._mode == "chunked" else None
        self._pending = b""
        self._done = self._mode == "none" or (self._mode == "length" and self._remaining == 0)

    def _recv(self, size: int) -> bytes:
        if self._buffered:
            data, self._buffered = self._buffered[:size], self._buffered[size:]
            return data
        if self.conn.sock is None:
            return b""
        try:
            return self.conn.sock.recv(size)
        except ConnectionResetError:
            return b""
        except OSError as exc:
            raise ProtocolError(f"error reading response: {exc}") from exc

    def read1(self, size: int = READ_SIZE) -> bytes:
        """Up to `size` bytes of body as soon as some arrive; b"" at its end."""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        while not self._done:
            if self._mode == "length":
                data = self._recv(min(size, self._remaining))
                if not data:
                    raise ProtocolError(f"connection closed with {self._remaining} bytes of the "
                                        "response body missing")
                self._remaining -= len(data)
                self._done = self._remaining == 0
                return data
            if self._mode == "close":
                data = self._recv(size)
                if not data:
                    self._done = True
                return data
            raw = self._recv(READ_SIZE)
            if not raw:
                raise ProtocolError("connection closed inside a chunked response body")
            data = self._decoder.feed(raw)
            self._done = self._decoder.done
            if data:
                data, self._pending = data[:size], data[size:]
                return data
        return b""

    def read(self) -> bytes:
        parts = []
        while True:
            data = self.read1()
            if not data:
                return b"".join(parts)
            parts.append(data)

    @property
    def complete(self) -> bool:
        return self._done and not self._pending

    def close(self) -> None:
        self.conn.close()
