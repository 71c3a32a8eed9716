"""Docker image references: distribution/reference's grammar and Docker's normalisation.

Grammar (docker/distribution `reference`):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path
    domain     := host [":" port]            host: DNS name or [IPv6]
    path       := component ("/" component)*  component: [a-z0-9]+ (separator [a-z0-9]+)*
    separator  := "." | "_" | "__" | "-"+
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex{32,}      then validated by skiff.oci.digest

Normalisation (what `docker pull busybox` does): the first path component is a domain only
if it contains "." or ":", is "localhost", or has upper-case letters; otherwise the domain
is docker.io, and a single-component path on docker.io gets "library/" in front.
"""

import re
from collections import namedtuple

from skiff.errors import InvalidArgument
from skiff.oci.digest import parse_digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

ERR_FORMAT = "invalid reference format"

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = re.compile(rf"{_HOST}(?::[0-9]+)?\Z")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
# The part after the domain: path, optional tag, optional digest. ASCII: Go's \w is ASCII.
_REMAINDER = re.compile(rf"({_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?\Z", re.ASCII)
_IMAGE_ID = re.compile(r"(?:sha256:)?[a-f0-9]{64}\Z")
_BARE_HEX_ID = re.compile(r"[a-f0-9]{64}\Z")


# A namedtuple rather than a dataclass: `dataclasses` costs ~10 ms to import, and the CLI
# parses a reference on every `run`.
class Reference(namedtuple("_Reference", "domain path tag digest", defaults=(None, None))):
    """An image reference: domain, path, and an optional tag and digest (immutable)."""

    __slots__ = ()

    @property
    def repository(self) -> str:
        """`docker.io/library/busybox`: the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        """The name as docker shows it: `busybox`, `user/img`, `localhost:5000/x`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        if self.path.startswith(OFFICIAL_REPO_PREFIX):
            rest = self.path[len(OFFICIAL_REPO_PREFIX):]
            # `library/a/b` keeps its prefix: dropping it would change the meaning.
            if "/" not in rest:
                return rest
        return self.path

    def familiar(self) -> str:
        """`busybox:latest`, `busybox@sha256:...`, `localhost:5000/x:1`."""
        return self.familiar_name() + self._suffix()

    def with_tag(self, tag: str | None) -> "Reference":
        return self._replace(tag=tag)

    def with_digest(self, digest: str | None) -> "Reference":
        return self._replace(digest=digest)

    def _suffix(self) -> str:
        suffix = f":{self.tag}" if self.tag else ""
        if self.digest:
            suffix += f"@{self.digest}"
        return suffix

    def __str__(self) -> str:
        return self.repository + self._suffix()


def _split_domain(text: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: decide whether the first component is a registry."""
    first, slash, rest = text.partition("/")
    if (
        not slash
        or (not any(c in first for c in ".:") and first != "localhost" and first == first.lower())
    ):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise `text`; add tag `latest` when neither tag nor digest is given
    (unless `default_tag` is false). Raises InvalidArgument with Docker's wording."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument(ERR_FORMAT)
    # A bare 64-hex string is an image id, never a repository name (docker refuses it too).
    if _BARE_HEX_ID.match(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    remote = re.split(r"[:@]", remainder, maxsplit=1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(f"{ERR_FORMAT}: repository name ({remote}) must be lowercase")
    match = _REMAINDER.match(remainder)
    if not _DOMAIN.match(domain) or not match:
        raise InvalidArgument(ERR_FORMAT)
    path, tag, digest = match.groups()
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    if digest is not None:
        parse_digest(digest)  # go-digest's own wording for a bad length or algorithm
    if default_tag and tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def is_image_id(text: str) -> bool:
    """True for a full image id: 64 lower-case hex digits, with or without `sha256:`.
    Short-id prefixes are resolved by the image store, not here."""
    return isinstance(text, str) and bool(_IMAGE_ID.match(text))
