"""Image references as the CLI needs them: the `fromImage`/`tag` pair of `POST /images/create`,
the familiar form for messages (`busybox:latest`) and the full form `pull` prints
(`docker.io/library/busybox:latest`), on top of skiff.oci.reference."""

from __future__ import annotations

from collections import namedtuple

DEFAULT_DOMAIN = "docker.io"


class ImageRef(namedtuple("_ImageRef", "domain path tag digest")):
    """Immutable; a namedtuple because `dataclasses` is slow to import on the CLI's path."""

    __slots__ = ()

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


def _explicit_tag(text: str) -> bool:
    name = text.split("@", 1)[0]
    return name.rfind(":") > name.rfind("/")


def parse(text: str, default_tag: bool = True) -> ImageRef:
    """Docker's normalisation (skiff.oci.reference); `default_tag` adds `latest` when there is
    neither tag nor digest. ValueError with docker's text for what cannot be a reference."""
    from skiff.oci.reference import parse as oci_parse

    try:
        ref = oci_parse(text)
    except Exception as exc:  # InvalidArgument
        raise ValueError(getattr(exc, "message", str(exc))) from None
    tag, digest = ref.tag, ref.digest
    if not default_tag and tag and not _explicit_tag(text):
        tag = None
    if default_tag and not tag and not digest:
        tag = "latest"
    return ImageRef(ref.domain, ref.path, tag, digest)
