"""Engine API versions: parsing, comparison, the `/vX.Y` path prefix and negotiation.

Versions compare as dotted numbers (1.9 < 1.24 < 1.100), never as strings.
"""

from skiff.errors import InvalidArgument

API_VERSION = "1.47"      # advertised; docker 29 CLIs refuse anything below 1.44
MIN_API_VERSION = "1.24"  # the oldest the Docker SDK for Python and docker CLIs still use

# (no regular expressions: `re` costs milliseconds of every CLI command's start-up)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_version(text: str) -> tuple[int, ...]:
    """`"1.41"` -> `(1, 41)`; at least two parts, so `"1"` is `(1, 0)`."""
    if not isinstance(text, str) or len(text) > 32 or \
            not all(_digits(p) for p in text.split(".")):
        raise InvalidArgument(f"invalid API version {text!r}")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (2 - len(parts))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older than, equal to or newer than `b`."""
    pa, pb = parse_version(a), parse_version(b)
    width = max(len(pa), len(pb))
    pa, pb = pa + (0,) * (width - len(pa)), pb + (0,) * (width - len(pb))
    return (pa > pb) - (pa < pb)


def check_request_version(version: str | None) -> str:
    """The version a request is served with: its `/vX.Y` prefix, or API_VERSION without
    one. Raises InvalidArgument (400) with dockerd's text when out of range."""
    if not version:
        return API_VERSION
    if compare_versions(version, MIN_API_VERSION) < 0:
        raise InvalidArgument(
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if compare_versions(version, API_VERSION) > 0:
        raise InvalidArgument(
            f"client version {version} is too new. Maximum supported API version is "
            f"{API_VERSION}"
        )
    return version


def split_version_prefix(path: str) -> tuple[str | None, str]:
    """`/v1.45/containers/json` -> `("1.45", "/containers/json")`; an unversioned path
    comes back as `(None, path)`."""
    # dockerd routes `/v{version:[0-9.]+}/...`; anything else is an unversioned path
    end = path.find("/", 2)
    end = len(path) if end < 0 else end
    version = path[2:end]
    if not path.startswith("/v") or not version[:1].isdigit() or \
            not _digits(version.replace(".", "")):
        return None, path
    return version, path[end:] or "/"


def negotiate(client_max: str, server: str | None) -> str:
    """What a client uses against a server advertising `server` (the `Api-Version` header
    of `/_ping`): the lower of the two, as the docker CLI does; `client_max` when the
    server says nothing."""
    if not server:
        return client_max
    return server if compare_versions(server, client_max) < 0 else client_max
