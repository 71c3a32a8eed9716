"""Descriptors, manifests, indexes and image configs (OCI image-spec and Docker schema 2).

`from_json` accepts bytes, text or an already-decoded dict and keeps fields it does not know
in `extra`, so `to_json` round-trips them. `to_json` writes compact JSON for *new* documents
(a config we commit, a manifest we push). It is never used to re-serialise bytes being
verified: a digest is over the exact bytes received, so keep those bytes and store them as
they are - the same document re-encoded need not produce the same bytes.
"""

import dataclasses
import json
from typing import Any

from skiff.errors import InvalidArgument
from skiff.oci.digest import parse_digest, sha256_hex

# OCI image-spec media types.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

# Docker image manifest v2, schema 2 media types.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
# Schema 1 is long deprecated; named so that callers can refuse it by name.
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
FOREIGN_LAYER_TYPES = frozenset(
    {DOCKER_FOREIGN_LAYER_GZIP, OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD}
)
_LAYER_COMPRESSION = {
    OCI_LAYER: None,
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDIST: None,
    OCI_LAYER_NONDIST_GZIP: "gzip",
    OCI_LAYER_NONDIST_ZSTD: "zstd",
    DOCKER_LAYER: None,
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_FOREIGN_LAYER_GZIP: "gzip",
}


def layer_compression(media_type: str) -> str | None:
    """"gzip", "zstd" or None (plain tar) for a layer media type; InvalidArgument otherwise."""
    try:
        return _LAYER_COMPRESSION[media_type]
    except (KeyError, TypeError):
        raise InvalidArgument(f"unsupported layer media type: {media_type!r}") from None


def is_layer_media_type(media_type: str) -> bool:
    return media_type in _LAYER_COMPRESSION


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI ChainIDs: chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + " " + diff[n]).

    A ChainID names a stack of layers, so equal prefixes of two images share snapshots."""
    chain: list[str] = []
    for diff_id in diff_ids:
        parse_digest(diff_id)
        if chain:
            diff_id = "sha256:" + sha256_hex(f"{chain[-1]} {diff_id}".encode())
        chain.append(diff_id)
    return chain


# --- decoding helpers: every malformed document becomes InvalidArgument ----------------

def _load(data: bytes | str | dict, what: str) -> dict:
    if isinstance(data, dict):
        return dict(data)
    try:
        value = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"invalid {what}: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {what}: not a JSON object")
    return value


def _typed(doc: dict, key: str, kind: type | tuple, what: str, default: Any = None) -> Any:
    value = doc.pop(key, default)
    if value is None:
        return default
    # bool is an int in Python; a size of `true` is still malformed.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidArgument(f"invalid {what}: field {key!r} has the wrong type")
    return value


def _dumps(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _omit_empty(doc: dict) -> dict:
    """Drop None values (Go's `omitempty` for optional fields)."""
    return {k: v for k, v in doc.items() if v is not None}


@dataclasses.dataclass
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: list[str] | None = None

    @classmethod
    def from_dict(cls, doc: dict) -> "Platform":
        if not isinstance(doc, dict):
            raise InvalidArgument("invalid platform: not a JSON object")
        doc = dict(doc)
        return cls(
            os=_typed(doc, "os", str, "platform", ""),
            architecture=_typed(doc, "architecture", str, "platform", ""),
            variant=_typed(doc, "variant", str, "platform"),
            os_version=_typed(doc, "os.version", str, "platform"),
            os_features=_typed(doc, "os.features", list, "platform"),
        )

    def to_dict(self) -> dict:
        return _omit_empty({
            "architecture": self.architecture,
            "os": self.os,
            "os.version": self.os_version,
            "os.features": self.os_features,
            "variant": self.variant,
        })

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """`linux/amd64`, `linux/arm64/v8` (the `--platform` flag's form)."""
        parts = text.split("/") if isinstance(text, str) else []
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidArgument(f"invalid platform: {text!r}")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, wanted: "Platform") -> bool:
        """True if this (an index entry's) platform satisfies `wanted`; a wanted platform
        without a variant accepts any variant."""
        if (self.os, self.architecture) != (wanted.os, wanted.architecture):
            return False
        return wanted.variant is None or self.variant == wanted.variant


@dataclasses.dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: dict) -> "Descriptor":
        if not isinstance(doc, dict):
            raise InvalidArgument("invalid descriptor: not a JSON object")
        doc = dict(doc)
        media_type = _typed(doc, "mediaType", str, "descriptor", "")
        digest = _typed(doc, "digest", str, "descriptor", "")
        size = _typed(doc, "size", int, "descriptor", -1)
        parse_digest(digest)
        if size < 0:
            raise InvalidArgument(f"invalid descriptor: missing or negative size for {digest}")
        platform = _typed(doc, "platform", dict, "descriptor")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            urls=_typed(doc, "urls", list, "descriptor"),
            annotations=_typed(doc, "annotations", dict, "descriptor"),
            platform=Platform.from_dict(platform) if platform is not None else None,
            artifact_type=_typed(doc, "artifactType", str, "descriptor"),
            extra=doc,
        )

    def to_dict(self) -> dict:
        return _omit_empty({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "urls": self.urls,
            "annotations": self.annotations,
            "platform": self.platform.to_dict() if self.platform else None,
            "artifactType": self.artifact_type,
        }) | self.extra


def _schema_version(doc: dict, what: str) -> int:
    version = _typed(doc, "schemaVersion", int, what, 0)
    if version != 2:
        raise InvalidArgument(f"invalid {what}: unsupported schemaVersion {version}")
    return version


@dataclasses.dataclass
class Manifest:
    config: Descriptor
    layers: list[Descriptor]
    media_type: str | None = OCI_MANIFEST
    annotations: dict[str, str] | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes | str | dict) -> "Manifest":
        doc = _load(data, "manifest")
        _schema_version(doc, "manifest")
        media_type = _typed(doc, "mediaType", str, "manifest")
        if media_type is not None and media_type not in MANIFEST_TYPES:
            raise InvalidArgument(f"invalid manifest: unexpected media type {media_type}")
        config = _typed(doc, "config", dict, "manifest")
        if config is None:
            raise InvalidArgument("invalid manifest: no config descriptor")
        subject = _typed(doc, "subject", dict, "manifest")
        return cls(
            config=Descriptor.from_dict(config),
            layers=[Descriptor.from_dict(d) for d in _typed(doc, "layers", list, "manifest", [])],
            media_type=media_type,
            annotations=_typed(doc, "annotations", dict, "manifest"),
            subject=Descriptor.from_dict(subject) if subject is not None else None,
            artifact_type=_typed(doc, "artifactType", str, "manifest"),
            extra=doc,
        )

    def to_json(self) -> bytes:
        return _dumps(_omit_empty({
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "artifactType": self.artifact_type,
            "config": self.config.to_dict(),
            "layers": [d.to_dict() for d in self.layers],
            "subject": self.subject.to_dict() if self.subject else None,
            "annotations": self.annotations,
        }) | self.extra)


@dataclasses.dataclass
class Index:
    manifests: list[Descriptor]
    media_type: str | None = OCI_INDEX
    annotations: dict[str, str] | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes | str | dict) -> "Index":
        doc = _load(data, "index")
        _schema_version(doc, "index")
        media_type = _typed(doc, "mediaType", str, "index")
        if media_type is not None and media_type not in INDEX_TYPES:
            raise InvalidArgument(f"invalid index: unexpected media type {media_type}")
        subject = _typed(doc, "subject", dict, "index")
        return cls(
            manifests=[Descriptor.from_dict(d)
                       for d in _typed(doc, "manifests", list, "index", [])],
            media_type=media_type,
            annotations=_typed(doc, "annotations", dict, "index"),
            subject=Descriptor.from_dict(subject) if subject is not None else None,
            artifact_type=_typed(doc, "artifactType", str, "index"),
            extra=doc,
        )

    def to_json(self) -> bytes:
        return _dumps(_omit_empty({
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "artifactType": self.artifact_type,
            "manifests": [d.to_dict() for d in self.manifests],
            "subject": self.subject.to_dict() if self.subject else None,
            "annotations": self.annotations,
        }) | self.extra)

    def find(self, wanted: Platform) -> list[Descriptor]:
        """Entries for `wanted`, in index order (the first is the registry's preference)."""
        return [d for d in self.manifests if d.platform and d.platform.matches(wanted)]


@dataclasses.dataclass
class ImageConfig:
    """An image config. `config` is the container config ({"Env": [...], "Cmd": [...], ...})
    kept as a dict, so fields skiff does not know survive a round trip."""

    architecture: str = ""
    os: str = ""
    variant: str | None = None
    created: str | None = None
    author: str | None = None
    config: dict = dataclasses.field(default_factory=dict)
    diff_ids: list[str] = dataclasses.field(default_factory=list)
    history: list[dict] = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes | str | dict) -> "ImageConfig":
        doc = _load(data, "image config")
        rootfs = _typed(doc, "rootfs", dict, "image config", {})
        rootfs_type = rootfs.get("type", "layers")
        if rootfs_type != "layers":
            raise InvalidArgument(f"invalid image config: rootfs type {rootfs_type!r}")
        diff_ids = rootfs.get("diff_ids") or []
        if not isinstance(diff_ids, list):
            raise InvalidArgument("invalid image config: rootfs.diff_ids is not a list")
        for diff_id in diff_ids:
            parse_digest(diff_id)
        history = _typed(doc, "history", list, "image config", [])
        if not all(isinstance(h, dict) for h in history):
            raise InvalidArgument("invalid image config: history entries must be objects")
        return cls(
            architecture=_typed(doc, "architecture", str, "image config", ""),
            os=_typed(doc, "os", str, "image config", ""),
            variant=_typed(doc, "variant", str, "image config"),
            created=_typed(doc, "created", str, "image config"),
            author=_typed(doc, "author", str, "image config"),
            config=_typed(doc, "config", dict, "image config", {}),
            diff_ids=list(diff_ids),
            history=history,
            extra=doc,
        )

    def to_json(self) -> bytes:
        return _dumps(_omit_empty({
            "architecture": self.architecture,
            "os": self.os,
            "variant": self.variant,
            "created": self.created,
            "author": self.author,
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
            "history": self.history or None,
        }) | self.extra)

    # Read-only views of the container config, with Docker's empty defaults.
    @property
    def env(self) -> list[str]:
        return list(self.config.get("Env") or [])

    @property
    def cmd(self) -> list[str]:
        return list(self.config.get("Cmd") or [])

    @property
    def entrypoint(self) -> list[str]:
        return list(self.config.get("Entrypoint") or [])

    @property
    def working_dir(self) -> str:
        return self.config.get("WorkingDir") or ""

    @property
    def user(self) -> str:
        return self.config.get("User") or ""

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)
