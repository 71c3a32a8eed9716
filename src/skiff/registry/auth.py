"""Registry authentication, pure: `WWW-Authenticate` challenges, token scopes and answers, and
credentials kept as docker keeps them in `config.json`.

A worked example. `GET /v2/library/busybox/manifests/latest` answers 401 with

    WWW-Authenticate: Bearer realm="https://auth.docker.io/token",
                      service="registry.docker.io",scope="repository:library/busybox:pull"

`parse_challenges` turns that into `[Challenge("bearer", {"realm": ..., "service": ...,
"scope": ...})]`; `token_url(challenge, ["repository:library/busybox:pull"])` is the URL to
GET (with basic credentials when the user logged in); `parse_token_response` takes the JSON
answer and returns the token for `Authorization: Bearer ...`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from skiff.errors import InvalidArgument

MAX_HEADER = 16 * 1024          # a challenge header longer than this is refused
MAX_TOKEN_RESPONSE = 1 << 20    # a token answer larger than this is refused
DEFAULT_TOKEN_LIFETIME = 60     # seconds, when the token server says nothing (distribution's)

_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class Challenge:
    scheme: str                       # lower case: "bearer", "basic"
    params: dict = field(default_factory=dict)   # keys lower case

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """text[i] is the opening quote; returns (value, index after the closing quote)."""
    out = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise InvalidArgument("invalid WWW-Authenticate header: unterminated quoted string")


def parse_challenges(header: str) -> list[Challenge]:
    """RFC 7235 challenges: `Scheme k=v, k="v", Scheme2 ...` (several per header)."""
    if len(header) > MAX_HEADER:
        raise InvalidArgument("invalid WWW-Authenticate header: too long")
    challenges: list[Challenge] = []
    i = 0
    n = len(header)
    while i < n:
        i = _skip_ws(header, i)
        while i < n and header[i] in ", \t":
            i += 1
        if i >= n:
            break
        m = _TOKEN.match(header, i)
        if not m:
            raise InvalidArgument(f"invalid WWW-Authenticate header: {header[:80]!r}")
        scheme = m.group(0).lower()
        i = m.end()
        params: dict[str, str] = {}
        while True:
            i = _skip_ws(header, i)
            if i >= n:
                break
            # a param is `name = value`; anything else starts the next challenge
            pm = _TOKEN.match(header, i)
            if not pm:
                if header[i] == ",":
                    i += 1
                    continue
                raise InvalidArgument(f"invalid WWW-Authenticate header: {header[:80]!r}")
            j = _skip_ws(header, pm.end())
            if j < n and header[j] == "=" and not header.startswith("=", j + 1):
                j = _skip_ws(header, j + 1)
                if j < n and header[j] == '"':
                    value, j = _quoted(header, j)
                else:
                    vm = _TOKEN.match(header, j)
                    value = vm.group(0) if vm else ""
                    j = vm.end() if vm else j
                params[pm.group(0).lower()] = value
                i = _skip_ws(header, j)
                if i < n and header[i] == ",":
                    i += 1
                continue
            if not params:
                tm = _TOKEN68.match(header, i)   # token68 form (`Negotiate abc==`)
                if tm and (tm.end() >= n or header[_skip_ws(header, tm.end())] == ","):
                    params[""] = tm.group(0)
                    i = tm.end()
                    continue
            break  # a new scheme
        challenges.append(Challenge(scheme, params))
    return challenges


def pick(challenges: list[Challenge]) -> Challenge | None:
    """Bearer is preferred over Basic, as docker does; other schemes are not supported."""
    for scheme in ("bearer", "basic"):
        for c in challenges:
            if c.scheme == scheme:
                return c
    return None


def repository_scope(repository: str, actions: tuple[str, ...] = ("pull",)) -> str:
    """`repository:library/busybox:pull,push` (repository without the registry domain)."""
    return f"repository:{repository}:{','.join(actions)}"


def token_url(challenge: Challenge, scopes: list[str], *, account: str | None = None) -> str:
    realm = challenge.realm
    if not realm:
        raise InvalidArgument("registry's bearer challenge names no realm")
    parts = urlsplit(realm)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"registry's token realm is not an HTTP URL: {realm!r}")
    query = []
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    for scope in scopes or ([challenge.params["scope"]] if challenge.params.get("scope") else []):
        query.append(("scope", scope))
    if account:
        query.append(("account", account))
    if not query:
        return realm
    return realm + ("&" if parts.query else "?") + urlencode(query)


def refresh_token_form(challenge: Challenge, scopes: list[str], refresh_token: str) -> bytes:
    """The form body of an OAuth2 token request with a refresh (identity) token, as the
    distribution token spec has it."""
    fields = [("grant_type", "refresh_token"), ("refresh_token", refresh_token),
              ("client_id", "skiff")]
    if challenge.params.get("service"):
        fields.append(("service", challenge.params["service"]))
    if scopes:
        fields.append(("scope", " ".join(scopes)))
    return urlencode(fields).encode()


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float

    def valid(self, now: float | None = None, margin: float = 5.0) -> bool:
        return (now if now is not None else time.time()) + margin < self.expires_at


def parse_token_response(body: bytes, now: float | None = None) -> Token:
    """The token server's JSON (`token` or OAuth's `access_token`, `expires_in` seconds)."""
    if len(body) > MAX_TOKEN_RESPONSE:
        raise InvalidArgument("token server's answer is too large")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("token server's answer is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("token server's answer is not a JSON object")
    value = doc.get("token") or doc.get("access_token")
    if not isinstance(value, str) or not value:
        raise InvalidArgument("token server's answer holds no token")
    lifetime = doc.get("expires_in")
    if not isinstance(lifetime, (int, float)) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return Token(value, (now if now is not None else time.time()) + lifetime)


def basic_header(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


# -- credentials (docker's config.json) -----------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""     # a refresh token (OAuth), used instead of the password

    def __bool__(self) -> bool:
        return bool(self.username or self.identity_token)


def credentials_from_json(doc: dict) -> Credentials:
    """Credentials from the X-Registry-Auth / POST /auth JSON shape
    (`username`, `password`, `identitytoken`, `serveraddress`)."""
    lowered = {str(k).lower(): v for k, v in (doc or {}).items()}
    return Credentials(str(lowered.get("username") or ""), str(lowered.get("password") or ""),
                       str(lowered.get("identitytoken") or ""))


def decode_registry_auth_header(value: str | None) -> Credentials:
    """X-Registry-Auth: base64url (padding optional) of the JSON auth config."""
    if not value:
        return Credentials()
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Credentials()    # docker ignores an X-Registry-Auth it cannot read
    return credentials_from_json(doc) if isinstance(doc, dict) else Credentials()


def registry_auth_header(creds: Credentials, server: str) -> str:
    doc = {"username": creds.username, "password": creds.password, "serveraddress": server}
    if creds.identity_token:
        doc["identitytoken"] = creds.identity_token
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def config_path(environ: dict | None = None) -> str:
    """DOCKER_CONFIG/config.json if set, else ~/.skiff/config.json."""
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".skiff")
    return os.path.join(directory, "config.json")


def _read_config(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read() or b"{}")
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(f"{path} is not valid JSON") from None
    return doc if isinstance(doc, dict) else {}


def lookup(doc: dict, key: str) -> Credentials:
    """Credentials for `key` (see hosts.auth_key) from a parsed config.json's `auths`."""
    entry = (doc.get("auths") or {}).get(key)
    if entry is None and key.startswith("https://index.docker.io"):
        entry = (doc.get("auths") or {}).get("index.docker.io") or \
            (doc.get("auths") or {}).get("docker.io")
    if not isinstance(entry, dict):
        return Credentials()
    if entry.get("identitytoken"):
        return Credentials(entry.get("username", ""), "", entry["identitytoken"])
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return Credentials()
        return Credentials(user, password)
    if entry.get("username"):
        return Credentials(entry["username"], entry.get("password", ""))
    return Credentials()


def load_credentials(key: str, path: str | None = None) -> Credentials:
    """Credentials stored for a registry; credential helpers (`credsStore`, `credHelpers`)
    are run as docker runs them (`docker-credential-NAME get`)."""
    path = path or config_path()
    doc = _read_config(path)
    helper = (doc.get("credHelpers") or {}).get(key) or doc.get("credsStore")
    if helper:
        creds = _helper_get(helper, key)
        if creds:
            return creds
    return lookup(doc, key)


def _helper_get(helper: str, key: str) -> Credentials:
    import subprocess
    try:
        out = subprocess.run([f"docker-credential-{helper}", "get"], input=key.encode(),
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return Credentials()
    if out.returncode != 0:
        return Credentials()
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        return Credentials()
    user, secret = doc.get("Username", ""), doc.get("Secret", "")
    if user == "<token>":
        return Credentials("", "", secret)
    return Credentials(user, secret)


def store_credentials(key: str, creds: Credentials | None, path: str | None = None) -> str:
    """Write (or with None remove) the credentials for `key`; the file is kept at mode 0600
    and replaced atomically. Returns the path."""
    path = path or config_path()
    doc = _read_config(path)
    auths = doc.setdefault("auths", {})
    if creds is None:
        auths.pop(key, None)
    elif creds.identity_token:
        auths[key] = {"identitytoken": creds.identity_token}
    else:
        raw = f"{creds.username}:{creds.password}".encode()
        auths[key] = {"auth": base64.b64encode(raw).decode()}
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent="\t")
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
