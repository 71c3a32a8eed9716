"""RegistryClient: the OCI distribution API over http.client, for one registry endpoint.

Blocking on purpose (skiffd runs it in threads): one connection per thread and host, reused
between requests. Authentication follows the registry's challenges (auth.py); tokens are cached
per scope. Downloads stream into a ContentStore, which verifies digest and size as it writes; a
connection broken in the middle of a blob is resumed with `Range: bytes=N-` and retried with
back-off, so a broken transfer costs only what was lost. Redirects (blob storage on another
host) are followed without the registry's Authorization header.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import socket
import ssl
import threading
import time
from typing import BinaryIO, Callable
from urllib.parse import quote, urljoin, urlsplit

from skiff.errors import InvalidArgument, NotFound, SkiffError, Unavailable
from skiff.oci import image as oci_image
from skiff.registry import auth, manifest
from skiff.registry.hosts import Endpoint

DEFAULT_CERTS_DIR = "/etc/skiff/certs.d"
CHUNK = 1 << 20
MAX_REDIRECTS = 5
MAX_SMALL_BODY = 8 * 1024 * 1024     # bodies read into memory (manifests, errors, tokens)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Progress = Callable[[int], None]     # called with the bytes done so far


class Unauthorized(SkiffError):
    status = 401


class RegistryUnavailable(Unavailable):
    status = 500
    retryable = True       # False when retrying cannot help (refused, unknown host)


_NET_ERRORS = (OSError, http.client.HTTPException)


class RegistryClient:
    def __init__(self, endpoint: Endpoint, credentials: auth.Credentials | None = None, *,
                 certs_dir: str | None = DEFAULT_CERTS_DIR, timeout: float = 60.0,
                 retries: int = 5, backoff: float = 0.2, scheme: str | None = None):
        self.endpoint = endpoint
        self.credentials = credentials or auth.Credentials()
        self.certs_dir = certs_dir
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        # https; for an insecure endpoint, found on first use unless given ("http")
        self._scheme: str | None = "https" if endpoint.secure else scheme
        self._local = threading.local()
        self._lock = threading.Lock()
        self._challenge: auth.Challenge | None = None
        self._tokens: dict[str, auth.Token] = {}

    # -- transport ------------------------------------------------------------------------------

    def _ssl_context(self, host: str) -> ssl.SSLContext:
        if not self.endpoint.secure and host == self.endpoint.host:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context()
        d = os.path.join(self.certs_dir, host) if self.certs_dir else None
        if d and os.path.isdir(d):
            for ca in sorted(glob.glob(os.path.join(d, "*.crt"))):
                ctx.load_verify_locations(ca)
            for cert in sorted(glob.glob(os.path.join(d, "*.cert"))):
                key = cert[:-len(".cert")] + ".key"
                if not os.path.exists(key):
                    raise InvalidArgument(f"missing key {key} for client certificate {cert}")
                ctx.load_cert_chain(cert, key)
        return ctx

    def _new_connection(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout, blocksize=CHUNK,
                                               context=self._ssl_context(host))
        return http.client.HTTPConnection(host, timeout=self.timeout, blocksize=CHUNK)

    def _connection(self, scheme: str, host: str) -> http.client.HTTPConnection:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        conn = pool.get((scheme, host))
        if conn is None:
            conn = pool[(scheme, host)] = self._new_connection(scheme, host)
        return conn

    def _drop(self, scheme: str, host: str) -> None:
        conn = getattr(self._local, "pool", {}).pop((scheme, host), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in getattr(self._local, "pool", {}).values():
            conn.close()
        self._local.pool = {}

    def scheme(self) -> str:
        """https, or for an insecure registry whichever answers (https first, as docker)."""
        if self._scheme is None:
            try:
                self._raw("GET", "https", self.endpoint.host, "/v2/", {}, None).read()
                self._scheme = "https"
            except (ssl.SSLError, ConnectionError, socket.timeout, http.client.HTTPException,
                    OSError):
                self._drop("https", self.endpoint.host)
                self._scheme = "http"
        return self._scheme

    def _raw(self, method: str, scheme: str, host: str, target: str, headers: dict,
             body) -> http.client.HTTPResponse:
        """One request on the pooled connection; a stale kept-alive connection is retried
        once on a fresh one."""
        for attempt in (0, 1):
            conn = self._connection(scheme, host)
            try:
                conn.request(method, target, body=body, headers=headers)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                self._drop(scheme, host)
                if attempt or (body is not None and not isinstance(body, bytes)):
                    raise e
            except BaseException:
                self._drop(scheme, host)
                raise
        raise AssertionError("unreachable")

    # -- authentication -------------------------------------------------------------------------

    def _authorization(self, scope: str | None) -> str | None:
        c = self._challenge
        if c is None:
            return None
        if c.scheme == "basic":
            if not self.credentials:
                return None
            return auth.basic_header(self.credentials.username, self.credentials.password)
        key = scope or ""
        with self._lock:
            token = self._tokens.get(key)
        if token is None or not token.valid():
            token = self._fetch_token(c, scope.split() if scope else [])
            with self._lock:
                self._tokens[key] = token
        return "Bearer " + token.value

    def _fetch_token(self, challenge: auth.Challenge, scopes: list[str]) -> auth.Token:
        creds = self.credentials
        headers = {"User-Agent": "skiff"}
        method, body = "GET", None
        if creds.identity_token:     # OAuth2: the refresh token from a login, POSTed
            url = auth.token_url(challenge, [])
            method, body = "POST", auth.refresh_token_form(challenge, scopes,
                                                           creds.identity_token)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            url = auth.token_url(challenge, scopes, account=creds.username or None)
        if creds.username and creds.password:
            headers["Authorization"] = auth.basic_header(creds.username, creds.password)
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn = self._new_connection(parts.scheme, parts.netloc)
        try:
            try:
                conn.request(method, target or "/", body=body, headers=headers)
                resp = conn.getresponse()
                body = resp.read(MAX_SMALL_BODY + 1)
            except _NET_ERRORS as e:
                raise RegistryUnavailable(f"Get \"{url}\": {e}") from None
        finally:
            conn.close()
        if resp.status in (401, 403):
            raise Unauthorized("unauthorized: incorrect username or password" if creds
                               else "unauthorized: authentication required")
        if resp.status != 200:
            raise RegistryUnavailable(f"token server {parts.netloc} answered {resp.status} "
                                      f"{resp.reason}")
        return auth.parse_token_response(body)

    def _learn(self, resp: http.client.HTTPResponse) -> bool:
        """Take the challenge of a 401; False when there is nothing new to try."""
        header = resp.getheader("WWW-Authenticate") or ""
        challenge = auth.pick(auth.parse_challenges(header)) if header else None
        if challenge is None:
            return False
        if challenge.scheme == "bearer" and challenge.params.get("error") == "invalid_token":
            with self._lock:
                self._tokens.clear()   # expired or revoked: get a fresh one
        if challenge.scheme == "basic" and not self.credentials:
            return False
        self._challenge = challenge
        return True

    # -- requests ---------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, scope: str | None = None,
                headers: dict | None = None, body=None,
                follow: bool = True) -> http.client.HTTPResponse:
        """A request to the registry (path `/v2/...` or an absolute URL it gave), with
        authentication and redirects; the caller reads (or closes) the response."""
        scheme = self.scheme()
        host = self.endpoint.host
        url_target = path
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            scheme, host = parts.scheme, parts.netloc
            url_target = parts.path + ("?" + parts.query if parts.query else "")
        base = dict(headers or {})
        base.setdefault("User-Agent", "skiff")
        for attempt in range(2):
            h = dict(base)
            if host == self.endpoint.host:
                authz = self._authorization(scope)
                if authz:
                    h["Authorization"] = authz
            try:
                resp = self._raw(method, scheme, host, url_target, h, body)
            except _NET_ERRORS as e:
                err = RegistryUnavailable(f"{method} {scheme}://{host}{url_target}: "
                                          f"{e or type(e).__name__}")
                err.retryable = not isinstance(e, (ConnectionRefusedError, socket.gaierror))
                raise err from None
            if resp.status == 401 and attempt == 0 and self._learn(resp):
                resp.read()
                continue
            break
        redirects = 0
        while follow and resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
            location = resp.getheader("Location")
            resp.read()
            redirects += 1
            if not location or redirects > MAX_REDIRECTS:
                raise RegistryUnavailable(f"too many redirects for {path}")
            current = f"{scheme}://{host}{url_target}"
            parts = urlsplit(urljoin(current, location))
            scheme, host = parts.scheme, parts.netloc
            url_target = parts.path + ("?" + parts.query if parts.query else "")
            h = {k: v for k, v in base.items()}
            if host == self.endpoint.host and self._authorization(scope):
                h["Authorization"] = self._authorization(scope)
            try:
                resp = self._raw(method, scheme, host, url_target, h, None)
            except _NET_ERRORS as e:
                raise RegistryUnavailable(f"{method} {parts.geturl()}: {e}") from None
        return resp

    def _retrying(self, method: str, path: str, **kw) -> http.client.HTTPResponse:
        """`request` for small idempotent requests (manifests, blob checks): a broken
        connection or a 429/5xx answer is retried with exponential back-off."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = self.request(method, path, **kw)
            except RegistryUnavailable as e:
                if last or not e.retryable:
                    raise
            else:
                if resp.status not in RETRY_STATUSES or last:
                    return resp
                resp.read()
            self.close()
            time.sleep(min(self.backoff * (2 ** attempt), 10.0))
        raise AssertionError("unreachable")

    def _error(self, resp: http.client.HTTPResponse, what: str,
               body: bytes | None = None) -> SkiffError:
        if body is None:
            body = resp.read(manifest.MAX_ERROR_BODY + 1)
        errors = manifest.parse_errors(body)
        detail = str(errors[0]) if errors else f"{resp.status} {resp.reason}"
        codes = {e.code for e in errors}
        if resp.status == 401:
            return Unauthorized(str(errors[0]) if errors else
                                "unauthorized: authentication required")
        if resp.status == 403 or codes & {"DENIED"}:
            return Unauthorized(str(errors[0]) if errors else
                                "denied: requested access to the resource is denied")
        if resp.status == 404:
            return NotFound(f"{what}: {detail}")
        if resp.status in (400, 405, 413, 415):
            return InvalidArgument(f"{what}: {detail}")
        return RegistryUnavailable(f"{what}: {detail}")

    # -- API --------------------------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/ and authenticate as its challenge asks (the check `login` makes)."""
        resp = self.request("GET", "/v2/")
        resp.read()
        if resp.status == 401:
            c = self._challenge
            if c is not None and c.scheme == "bearer":
                self._fetch_token(c, [])    # the token server checks the credentials
                return
            raise Unauthorized("unauthorized: incorrect username or password"
                               if self.credentials else "unauthorized: authentication required")
        if resp.status != 200:
            raise RegistryUnavailable(f"{self.endpoint.host}/v2/ answered {resp.status} "
                                      f"{resp.reason}")

    def get_manifest(self, repository: str, ref: str,
                     expected_digest: str | None = None) -> manifest.Fetched:
        scope = auth.repository_scope(repository)
        resp = self._retrying("GET", f"/v2/{repository}/manifests/{quote(ref, safe=':')}",
                            scope=scope, headers={"Accept": manifest.ACCEPT})
        if resp.status != 200:
            raise self._manifest_error(resp, repository, ref)
        data = resp.read(manifest.MAX_MANIFEST + 1)
        return manifest.parse(data, resp.getheader("Content-Type"), expected_digest)

    def list_tags(self, repository: str, limit: int = 10000) -> list[str]:
        """GET /v2/<name>/tags/list (following `Link` pages up to `limit` tags)."""
        scope = auth.repository_scope(repository)
        path = f"/v2/{repository}/tags/list?n=1000"
        tags: list[str] = []
        while path and len(tags) < limit:
            resp = self._retrying("GET", path, scope=scope)
            if resp.status != 200:
                raise self._manifest_error(resp, repository, "")
            body = resp.read(MAX_SMALL_BODY + 1)
            try:
                doc = json.loads(body)
            except ValueError:
                raise InvalidArgument(f"invalid tag list from {self.endpoint.host}") from None
            tags += [t for t in (doc.get("tags") or []) if isinstance(t, str)]
            link = resp.getheader("Link") or ""
            path = link[link.find("<") + 1:link.find(">")] if link.startswith("<") else ""
        return tags[:limit]

    def head_manifest(self, repository: str, ref: str) -> tuple[str, str, int]:
        """(digest, media type, size) of what a tag or digest names, without the body."""
        scope = auth.repository_scope(repository)
        resp = self._retrying("HEAD", f"/v2/{repository}/manifests/{quote(ref, safe=':')}",
                            scope=scope, headers={"Accept": manifest.ACCEPT})
        resp.read()
        digest = resp.getheader("Docker-Content-Digest")
        if resp.status != 200 or not digest:
            fetched = self.get_manifest(repository, ref)
            return fetched.digest, fetched.media_type, len(fetched.data)
        return digest, (resp.getheader("Content-Type") or "").split(";")[0], \
            int(resp.getheader("Content-Length") or 0)

    def _manifest_error(self, resp, repository: str, ref: str) -> SkiffError:
        name = f"{self.endpoint.domain}/{repository}"
        err = self._error(resp, "")
        text = err.message.lstrip(": ")
        if isinstance(err, NotFound):
            if "name unknown" in text:
                return NotFound(f"repository {name} not found: {text}")
            sep = "@" if ":" in ref and ref.startswith("sha") else ":"
            return NotFound(f"manifest for {name}{sep}{ref} not found: {text}")
        if isinstance(err, Unauthorized):   # a NotFound (404) for docker too
            return NotFound(f"pull access denied for {name}, repository does not exist or "
                            f"may require 'docker login': {text}")
        return type(err)(text)

    def fetch_blob(self, repository: str, desc: oci_image.Descriptor, store,
                   progress: Progress | None = None) -> str:
        """Download a blob into `store` (verified there); returns its digest. Resumes a broken
        transfer with HTTP ranges, up to `retries` times with exponential back-off."""
        if store.has(desc.digest):
            return desc.digest
        reader = _BlobReader(self, repository, desc, progress)
        try:
            digest, _ = store.ingest(reader, desc.digest, desc.size)
        finally:
            reader.close()
        return digest

    def open_blob(self, repository: str, desc: oci_image.Descriptor,
                  progress: Progress | None = None) -> "_BlobReader":
        """The blob's bytes as a file that resumes broken transfers as `fetch_blob` does;
        NOT verified: the reader checks the digest and size of what it read (a pull streams
        a layer into the store and into its unpacker at once). Close it when done."""
        return _BlobReader(self, repository, desc, progress)

    def blob_exists(self, repository: str, digest: str, scope: str | None = None) -> bool:
        resp = self._retrying("HEAD", f"/v2/{repository}/blobs/{digest}",
                            scope=scope or auth.repository_scope(repository))
        resp.read()
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        raise self._error(resp, f"blob {digest}")

    def upload_blob(self, repository: str, digest: str, size: int, fileobj: BinaryIO,
                    *, mount_from: str | None = None, chunk_size: int | None = None) -> str:
        """Upload a blob: monolithic (POST, then one PUT with the body) or, with `chunk_size`,
        in PATCH chunks closed by an empty PUT. With `mount_from` (another repository of the
        same registry) a cross-repository mount is tried first. Returns "mounted" or
        "pushed"."""
        scope = auth.repository_scope(repository, ("pull", "push"))
        path = f"/v2/{repository}/blobs/uploads/"
        if mount_from:
            path += f"?mount={digest}&from={quote(mount_from, safe='/')}"
            scope += " " + auth.repository_scope(mount_from)
        resp = self.request("POST", path, scope=scope, headers={"Content-Length": "0"},
                            body=b"")
        body = resp.read()
        if resp.status == 201:
            return "mounted"
        if resp.status != 202:
            raise self._error(resp, f"upload of {digest}", body)
        location = self._location(resp)
        if chunk_size and size > chunk_size:
            offset = 0
            while offset < size:
                chunk = fileobj.read(min(chunk_size, size - offset))
                if not chunk:
                    raise InvalidArgument(f"blob {digest} ended at {offset} of {size} bytes")
                resp = self.request("PATCH", location, scope=scope, body=chunk, follow=False,
                                    headers={"Content-Type": "application/octet-stream",
                                             "Content-Length": str(len(chunk)),
                                             "Content-Range":
                                                 f"{offset}-{offset + len(chunk) - 1}"})
                answer = resp.read()
                if resp.status != 202:
                    raise self._error(resp, f"upload of {digest}", answer)
                offset += len(chunk)
                location = self._location(resp)
            body, length = b"", 0
        else:
            body, length = fileobj, size
        location += ("&" if "?" in location else "?") + f"digest={quote(digest)}"
        resp = self.request("PUT", location, scope=scope, body=body, follow=False,
                            headers={"Content-Type": "application/octet-stream",
                                     "Content-Length": str(length)})
        answer = resp.read()
        if resp.status != 201:
            raise self._error(resp, f"upload of {digest}", answer)
        return "pushed"

    def upload_stream(self, repository: str, chunks, *, known_digest: str | None = None,
                      mount_from: str | None = None,
                      chunk_size: int | None = None) -> tuple[str, int, str]:
        """Upload a blob whose digest is learnt while it streams (a layer compressed on the
        fly, as docker pushes): POST, then the bytes in one PATCH sent with chunked transfer
        encoding (or, with `chunk_size`, in PATCHes of that size), then PUT `?digest=`. With
        `known_digest` (the same content pushed before) and `mount_from`, a cross-repository
        mount is tried first and `chunks` is not read. Returns (digest, size, "mounted" or
        "pushed")."""
        import hashlib

        scope = auth.repository_scope(repository, ("pull", "push"))
        path = f"/v2/{repository}/blobs/uploads/"
        if known_digest and mount_from:
            path += f"?mount={known_digest}&from={quote(mount_from, safe='/')}"
            scope += " " + auth.repository_scope(mount_from)
        resp = self.request("POST", path, scope=scope, headers={"Content-Length": "0"},
                            body=b"")
        answer = resp.read()
        if resp.status == 201 and known_digest:
            return known_digest, -1, "mounted"
        if resp.status != 202:
            raise self._error(resp, f"upload to {repository}", answer)
        location = self._location(resp)
        hasher = hashlib.sha256()
        size = 0

        def counted():
            nonlocal size
            for chunk in chunks:
                if chunk:
                    hasher.update(chunk)
                    size += len(chunk)
                    yield chunk

        def patch(body, headers) -> str:
            resp = self.request("PATCH", location, scope=scope, body=body, follow=False,
                                headers={"Content-Type": "application/octet-stream",
                                         **headers})
            answer = resp.read()
            if resp.status != 202:
                raise self._error(resp, f"upload to {repository}", answer)
            return self._location(resp)

        if chunk_size:
            offset, pending = 0, bytearray()
            for chunk in counted():
                pending += chunk
                while len(pending) >= chunk_size:
                    piece, pending = bytes(pending[:chunk_size]), pending[chunk_size:]
                    location = patch(piece, {"Content-Length": str(len(piece)),
                                             "Content-Range":
                                                 f"{offset}-{offset + len(piece) - 1}"})
                    offset += len(piece)
            if pending:
                location = patch(bytes(pending), {
                    "Content-Length": str(len(pending)),
                    "Content-Range": f"{offset}-{offset + len(pending) - 1}"})
        else:
            location = patch(counted(), {})   # http.client sends it chunked
        digest = "sha256:" + hasher.hexdigest()
        location += ("&" if "?" in location else "?") + f"digest={quote(digest)}"
        resp = self.request("PUT", location, scope=scope, body=b"", follow=False,
                            headers={"Content-Type": "application/octet-stream",
                                     "Content-Length": "0"})
        answer = resp.read()
        if resp.status != 201:
            raise self._error(resp, f"upload of {digest}", answer)
        return digest, size, "pushed"

    def _location(self, resp) -> str:
        location = resp.getheader("Location") or ""
        if not location:
            raise RegistryUnavailable("registry gave no upload location")
        return urljoin(f"{self.scheme()}://{self.endpoint.host}/", location)

    def put_manifest(self, repository: str, ref: str, data: bytes, media_type: str) -> str:
        scope = auth.repository_scope(repository, ("pull", "push"))
        resp = self.request("PUT", f"/v2/{repository}/manifests/{ref}", scope=scope,
                            body=data, headers={"Content-Type": media_type,
                                                "Content-Length": str(len(data))})
        answer = resp.read()
        if resp.status != 201:
            raise self._error(resp, f"manifest for {repository}:{ref}", answer)
        from skiff.oci.digest import digest_of
        return resp.getheader("Docker-Content-Digest") or digest_of(data)


class _BlobReader:
    """A file-like view of one blob download that survives broken connections: each failure
    reopens the transfer at the current offset (`Range: bytes=N-`)."""

    def __init__(self, client: RegistryClient, repository: str, desc: oci_image.Descriptor,
                 progress: Progress | None):
        self.client = client
        self.repository = repository
        self.desc = desc
        self.progress = progress
        self.offset = 0
        self.failures = 0
        self.resp: http.client.HTTPResponse | None = None

    def _open(self) -> None:
        headers = {}
        if self.offset:
            headers["Range"] = f"bytes={self.offset}-"
        resp = self.client.request("GET", f"/v2/{self.repository}/blobs/{self.desc.digest}",
                                   scope=auth.repository_scope(self.repository),
                                   headers=headers)
        if resp.status == 206 and self.offset:
            content_range = resp.getheader("Content-Range") or ""
            start = content_range.partition(" ")[2].partition("-")[0]
            if start != str(self.offset):
                resp.close()
                raise RegistryUnavailable(f"registry answered range {content_range!r} for "
                                          f"bytes={self.offset}-")
        elif resp.status == 200:
            skip = self.offset     # no range support: read again up to where we were
            while skip:
                got = resp.read(min(skip, CHUNK))
                if not got:
                    raise ConnectionError("blob ended early")
                skip -= len(got)
        else:
            err = self.client._error(resp, f"blob {self.desc.digest}")
            raise err
        self.resp = resp

    def _broken(self, exc: BaseException) -> None:
        if self.resp is not None:
            self.resp.close()
            self.resp = None
        self.client.close()
        self.failures += 1
        if self.failures > self.client.retries:
            raise RegistryUnavailable(f"download of {self.desc.digest} failed after "
                                      f"{self.failures} attempts: {exc or type(exc).__name__}")
        time.sleep(min(self.client.backoff * (2 ** (self.failures - 1)), 10.0))

    def read(self, n: int = CHUNK) -> bytes:
        while True:
            try:
                if self.resp is None:
                    self._open()
                chunk = self.resp.read(n if n and n > 0 else CHUNK)
            except (RegistryUnavailable, *_NET_ERRORS) as e:
                self._broken(e)
                continue
            if not chunk:
                if self.offset < self.desc.size:
                    self._broken(ConnectionError(f"connection closed at byte {self.offset}"))
                    continue
                return b""
            self.offset += len(chunk)
            if self.progress:
                self.progress(self.offset)
            return chunk

    def close(self) -> None:
        if self.resp is not None:
            if self.offset < self.desc.size or not self.resp.isclosed():
                self.resp.close()
                self.client.close()
            self.resp = None
