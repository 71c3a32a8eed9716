"""Image references as the CLI needs them: the `fromImage`/`tag` pair of `POST /images/create`,
the familiar form for messages (`busybox:latest`) and the full form `pull` prints
(`docker.io/library/busybox:latest`). Uses skiff.oci.reference when present."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """`docker.io/library/busybox`: what the Go client sends as `fromImage`."""
        return f"{self.domain}/{self.path}"

    @property
    def api_tag(self) -> str:
        """The `tag` query parameter: the digest, else the tag, else latest."""
        return self.digest or self.tag or "latest"

    def familiar_name(self) -> str:
        path = self.path
        if self.domain == DEFAULT_DOMAIN:
            if path.startswith("library/") and path.count("/") == 1:
                path = path[len("library/"):]
            return path
        return f"{self.domain}/{path}"

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def familiar(self) -> str:
        return self.familiar_name() + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()


def parse(text: str, default_tag: bool = True) -> ImageRef:
    """Docker's normalisation; `default_tag` adds `latest` when there is neither tag nor
    digest. ValueError("invalid reference format") for what cannot be a reference."""
    try:
        from skiff.oci.reference import parse as oci_parse
    except ImportError:
        oci_parse = None
    if oci_parse is not None:
        try:
            ref = oci_parse(text)
        except Exception as exc:  # InvalidArgument
            raise ValueError(getattr(exc, "message", str(exc))) from None
        tag, digest = ref.tag, ref.digest
        if default_tag and not tag and not digest:
            tag = "latest"
        return ImageRef(ref.domain, ref.path, tag, digest)
    return _parse(text, default_tag)


def _parse(text: str, default_tag: bool) -> ImageRef:
    if not text or text != text.strip() or " " in text:
        raise ValueError("invalid reference format")
    rest, _, digest = text.partition("@")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not tag:
            raise ValueError("invalid reference format")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if not path:
        raise ValueError("invalid reference format")
    if path != path.lower():
        raise ValueError(f"invalid reference format: repository name ({path}) must be lowercase")
    if default_tag and tag is None and not digest:
        tag = "latest"
    return ImageRef(domain, path, tag, digest or None)
