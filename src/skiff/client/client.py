"""`Client`: requests to a Docker Engine API daemon (HTTP/1.1 from skiff.client.transport).

One connection per request (a Unix-socket connect costs microseconds, and a streaming answer
such as `wait` or `logs -f` must not block the next request). The API version is negotiated
once, lazily, from `GET /_ping`'s `Api-Version` header: min(our maximum, the server's).

Worked example:

    client = Client("unix:///run/skiff/skiff.sock")
    info = client.json("GET", "/containers/web/json")
    with client.request("GET", "/containers/web/logs", {"stdout": 1}, stream=True) as resp:
        for stream, data in resp.iter_frames():
            ...
"""

from __future__ import annotations

from skiff.client import DEFAULT_HOST
from skiff.client.errors import APIError, DaemonUnreachable, ProtocolError
from skiff.client.transport import HTTPConnection, HTTPResponse
from skiff.wire import jsonfast

TYPE_CHECKING = False
if TYPE_CHECKING:   # annotations only: collections' import costs every command ~1 ms
    from collections.abc import Iterator

    from skiff.client.streams import HijackedStream

# The oldest API version a daemon may answer with when it sends no Api-Version header.
FALLBACK_API_VERSION = "1.24"
USER_AGENT = "skiff-client"


def max_api_version() -> str:
    from skiff.wire.version import API_VERSION

    return API_VERSION


def negotiate(client_max: str, server: str | None) -> str:
    """min(client_max, server); the fallback version when the server says nothing."""
    if not server:
        return FALLBACK_API_VERSION
    from skiff.wire.version import negotiate as wire_negotiate

    return wire_negotiate(client_max, server)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _percent(text: str, safe: bytes = b"") -> str:
    """RFC 3986 percent-encoding (urllib.parse is left out: start-up time)."""
    keep = _UNRESERVED | frozenset(safe)
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8"))


def encode_params(params: dict | None) -> str:
    """Query string the way Docker's Go client builds it: booleans as 1/0, None dropped, lists
    repeated, dicts (filters) as JSON."""
    if not params:
        return ""
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "1" if value else "0"))
        elif isinstance(value, (list, tuple)):
            pairs.extend((key, str(item)) for item in value)
        elif isinstance(value, dict):
            pairs.append((key, jsonfast.dumps(value, compact=True)))
        else:
            pairs.append((key, str(value)))
    return "&".join(f"{_percent(k)}={_percent(v)}" for k, v in pairs)


def error_message(status: int, reason: str, data: bytes) -> str:
    """The `message` of Docker's error body, or the best text we have."""
    from skiff.wire.errors import parse_error_body

    text = parse_error_body(data) if data.strip() else ""
    return text or f"{status} {reason}".strip()


def quote_path(segment: str) -> str:
    """A name or id as one path segment, as Go's url.PathEscape leaves it readable: image
    references keep their `/`, `:` and `@`."""
    return _percent(segment, b"/:@")


class Response:
    """A daemon's answer. With `stream=False` the body is already read; otherwise it is read
    as it arrives by `iter_chunks`, `iter_json` or `iter_frames`, and `close()` ends it."""

    def __init__(self, raw: HTTPResponse, data: bytes | None = None):
        self._raw = raw
        self._data = data
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def read(self) -> bytes:
        if self._data is None:
            try:
                self._data = self._raw.read()
            finally:
                self.close()
        return self._data

    def json(self):
        data = self.read()
        if not data.strip():
            return None
        try:
            return jsonfast.loads(data)
        except ValueError as exc:
            raise ProtocolError(f"invalid JSON from daemon: {exc}") from exc

    def iter_chunks(self, size: int = 65536) -> Iterator[bytes]:
        """Body bytes as soon as they arrive."""
        if self._data is not None:
            if self._data:
                yield self._data
            return
        try:
            while True:
                chunk = self._raw.read1(size)
                if not chunk:
                    return
                yield chunk
        finally:
            self.close()

    def iter_json(self) -> Iterator[dict]:
        from skiff.client.streams import iter_json

        return iter_json(self.iter_chunks())

    def iter_frames(self) -> Iterator[tuple[int, bytes]]:
        from skiff.client.streams import iter_frames

        return iter_frames(self.iter_chunks())

    def close(self) -> None:
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PendingResponse:
    """A request already sent whose answer has not been read yet.

    `run` sends `POST /containers/{id}/wait` before `start`, and must not start before the
    daemon has registered the wait: `headers_ready(timeout)` tells whether the answer's head
    has begun arriving (dockerd flushes it as soon as the wait is registered).
    """

    def __init__(self, client: Client, conn: HTTPConnection, method: str):
        self._client = client
        self._conn = conn
        self._method = method
        self._response: Response | None = None

    def fileno(self) -> int:
        return self._conn.sock.fileno()

    def headers_ready(self, timeout: float | None = 0) -> bool:
        if self._response is not None or self._conn.sock is None:
            return True
        import select

        readable, _, _ = select.select([self._conn.sock], [], [], timeout)
        return bool(readable)

    def response(self, stream: bool = False) -> Response:
        if self._response is None:
            self._response = self._client._finish(self._conn, self._method, stream)
        return self._response

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._conn.close()


class Client:
    """An Engine API client. `version` pins the API version (no negotiation)."""

    def __init__(self, host: str = DEFAULT_HOST, version: str | None = None,
                 timeout: float | None = None, tls=None):
        self.host = host
        self.timeout = timeout
        self.tls = tls  # a client.tls.TLSConfig for tcp:// hosts, or None
        self._version = version
        self.server_headers: dict[str, str] = {}

    # -- versions ----------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        if self._version is None:
            self.negotiate()
        return self._version

    def ping(self, timeout: float | None = None) -> dict[str, str]:
        """`GET /_ping`; the answer's headers (lowercased names). Raises DaemonUnreachable."""
        conn = HTTPConnection(self.host, timeout if timeout is not None else self.timeout,
                              self.tls)
        try:
            conn.send_request("GET", "/_ping", {"User-Agent": USER_AGENT})
            raw = conn.get_response("GET")
            data = raw.read()
            if raw.status >= 400:
                raise APIError(raw.status, error_message(raw.status, raw.reason, data))
        finally:
            conn.close()
        self.server_headers = dict(raw.headers)
        return self.server_headers

    def negotiate(self) -> str:
        headers = self.ping()
        self._version = negotiate(max_api_version(), headers.get("api-version"))
        return self._version

    # -- requests ----------------------------------------------------------------------------

    def url(self, path: str, params: dict | None = None, versioned: bool = True) -> str:
        prefix = f"/v{self.api_version}" if versioned else ""
        query = encode_params(params)
        return f"{prefix}{path}?{query}" if query else f"{prefix}{path}"

    def begin(self, method: str, path: str, params: dict | None = None, json_body=None,
              body=None, headers: dict | None = None, versioned: bool = True,
              timeout: float | None = None) -> PendingResponse:
        """Send a request and return before reading its answer."""
        url = self.url(path, params, versioned)
        conn = HTTPConnection(self.host, timeout if timeout is not None else self.timeout,
                              self.tls)
        try:
            self._send(conn, method, url, json_body, body, headers)
        except BaseException:
            conn.close()
            raise
        return PendingResponse(self, conn, method)

    def request(self, method: str, path: str, params: dict | None = None, json_body=None,
                body=None, headers: dict | None = None, stream: bool = False,
                versioned: bool = True, timeout: float | None = None) -> Response:
        """Send a request and return its answer; a status >= 400 raises APIError.

        `body` may be bytes, a file object or an iterable of bytes (sent chunked unless a
        Content-Length header is given); `json_body` is serialised as JSON.
        """
        return self.begin(method, path, params, json_body, body, headers, versioned,
                          timeout).response(stream)

    def json(self, method: str, path: str, params: dict | None = None, json_body=None,
             **kwargs):
        """The decoded JSON body of a request (None for an empty body)."""
        return self.request(method, path, params, json_body, **kwargs).json()

    def get(self, path: str, params: dict | None = None, **kwargs):
        return self.json("GET", path, params, **kwargs)

    def post(self, path: str, params: dict | None = None, json_body=None, **kwargs):
        return self.json("POST", path, params, json_body, **kwargs)

    def delete(self, path: str, params: dict | None = None, **kwargs):
        return self.json("DELETE", path, params, **kwargs)

    def hijack(self, method: str, path: str, params: dict | None = None, json_body=None,
               headers: dict | None = None, versioned: bool = True) -> HijackedStream:
        """A request with `Connection: Upgrade` / `Upgrade: tcp`; on `101` (or, from old
        daemons, 2xx) the socket becomes a raw two-way stream, with any bytes the daemon sent
        right after its head kept. Errors raise APIError."""
        extra = {"Connection": "Upgrade", "Upgrade": "tcp"}
        extra.update(headers or {})
        conn = HTTPConnection(self.host, self.timeout, self.tls)
        try:
            self._send(conn, method, self.url(path, params, versioned), json_body,
                       b"" if json_body is None else None, extra)
            raw = conn.get_response(method)
            if raw.status == 101 or 200 <= raw.status < 300:
                from skiff.client.streams import HijackedStream

                sock, conn.sock = conn.sock, None
                sock.settimeout(None)
                return HijackedStream(sock, raw._buffered, dict(raw.headers))
            data = raw.read()
            raise APIError(raw.status, error_message(raw.status, raw.reason, data))
        finally:
            conn.close()

    # -- internals ---------------------------------------------------------------------------

    def _send(self, conn: HTTPConnection, method: str, url: str, json_body, body,
              headers: dict | None = None) -> None:
        hdrs = {"User-Agent": USER_AGENT}
        if json_body is not None:
            body = jsonfast.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        try:
            conn.send_request(method, url, hdrs, body)
        except DaemonUnreachable:
            raise
        except OSError as exc:
            raise ProtocolError(f"error sending request: {exc}") from exc

    def _finish(self, conn: HTTPConnection, method: str, stream: bool) -> Response:
        try:
            raw = conn.get_response(method)
            if raw.status >= 400:
                try:
                    data = raw.read()
                except ProtocolError:
                    data = b""
                raise APIError(raw.status, error_message(raw.status, raw.reason, data))
            if stream:
                return Response(raw)
            return Response(raw, raw.read())
        except BaseException:
            conn.close()
            raise
        finally:
            if not stream:
                conn.close()
