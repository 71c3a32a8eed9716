"""Connections to a daemon: host strings, sockets, and the bits of HTTP that http.client does
not cover (reading the head of a `101 UPGRADED` answer without losing the bytes after it).

Every foreign exception raised while connecting is translated here, once, into
`DaemonUnreachable`.
"""

from __future__ import annotations

import http.client
import socket

from skiff.client.errors import DaemonUnreachable, ProtocolError
from skiff.errors import InvalidArgument

# Docker's Go client sends this Host header on Unix sockets; servers ignore it.
DUMMY_HOST = "api.moby.localhost"
DEFAULT_TCP_PORT = 2375

# Named limits on what the hijack path buffers before it hands the socket over.
MAX_RESPONSE_HEAD = 64 * 1024
MAX_ERROR_BODY = 1024 * 1024


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
    if isinstance(exc, PermissionError):
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


def open_socket(host: str, timeout: float | None = None) -> socket.socket:
    """A connected stream socket to `host`, or `DaemonUnreachable`."""
    kind, address = parse_host(host)
    try:
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(address)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection(address, timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        raise unreachable(host, exc) from exc
    return sock


class Connection(http.client.HTTPConnection):
    """http.client over whatever `open_socket` gives (Unix socket or TCP)."""

    def __init__(self, host: str, timeout: float | None = None):
        kind, address = parse_host(host)
        name = DUMMY_HOST if kind == "unix" else address[0]
        port = None if kind == "unix" else address[1]
        super().__init__(name, port, timeout=timeout, blocksize=256 * 1024)
        self.daemon_host = host
        self._timeout = timeout

    def connect(self):
        self.sock = open_socket(self.daemon_host, self._timeout)


# -- the raw response head, for hijacked connections ----------------------------------------


def split_head(buf: bytes) -> tuple[bytes, bytes] | None:
    """(head, rest) once `buf` holds a complete response head, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    return buf[: end + 4], buf[end + 4 :]


def parse_response_head(head: bytes) -> tuple[int, str, dict[str, str]]:
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
    headers: dict[str, str] = {}
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


def decode_chunked(data: bytes) -> bytes:
    """The payload of a complete (or truncated) chunked body; stops at the last whole chunk."""
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            break
        try:
            size = int(data[pos:eol].split(b";")[0].strip() or b"0", 16)
        except ValueError:
            break
        if size == 0:
            break
        start = eol + 2
        out += data[start : start + size]
        pos = start + size + 2
        if pos > len(data):
            break
    return bytes(out)


def read_response_head(sock: socket.socket) -> tuple[int, str, dict[str, str], bytes]:
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
            raise ProtocolError("daemon closed the connection before answering")
        buf += chunk


def read_error_body(sock: socket.socket, headers: dict[str, str], already: bytes) -> bytes:
    """The body of a non-upgraded answer on a hijack attempt (an error, usually)."""
    data = already
    length = headers.get("content-length")
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    limit = MAX_ERROR_BODY
    if length is not None:
        try:
            limit = min(int(length), MAX_ERROR_BODY)
        except ValueError:
            pass
    while len(data) < limit:
        if chunked and (data == b"0\r\n\r\n" or data.endswith(b"\r\n0\r\n\r\n")):
            break
        try:
            chunk = sock.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    if chunked:
        return decode_chunked(data)
    return data[:limit]
