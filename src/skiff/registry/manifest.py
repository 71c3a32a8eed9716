"""Manifests as registries serve them, pure: the Accept header, telling an index from an image
manifest, choosing a platform's manifest, and reading the registry's error bodies.

Digests are always over the exact bytes the registry sent: `parse` never re-serialises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from skiff.errors import InvalidArgument, NotFound
from skiff.oci import image as oci_image
from skiff.oci.digest import digest_of

MAX_MANIFEST = 4 * 1024 * 1024      # distribution's own limit on a manifest's size
MAX_ERROR_BODY = 64 * 1024

ACCEPT = ", ".join([oci_image.OCI_INDEX, oci_image.DOCKER_MANIFEST_LIST,
                    oci_image.OCI_MANIFEST, oci_image.DOCKER_MANIFEST])

SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws")


@dataclass
class Fetched:
    """A manifest or index as served: exact bytes, their digest and media type."""
    data: bytes
    digest: str
    media_type: str
    document: oci_image.Manifest | oci_image.Index

    @property
    def is_index(self) -> bool:
        return isinstance(self.document, oci_image.Index)


def parse(data: bytes, content_type: str | None, expected_digest: str | None = None) -> Fetched:
    """Decide what the registry sent (the Content-Type, else the body's `mediaType`, else its
    shape) and check it against the digest asked for, if any."""
    if len(data) > MAX_MANIFEST:
        raise InvalidArgument(f"manifest too large: {len(data)} bytes")
    digest = digest_of(data)
    if expected_digest and digest != expected_digest:
        raise InvalidArgument(f"manifest verification failed for digest {expected_digest}")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("invalid manifest: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not a JSON object")
    media_type = (content_type or "").split(";")[0].strip()
    body_type = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else None
    if media_type in SCHEMA1_TYPES or body_type in SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
        raise InvalidArgument("unsupported manifest format: Docker Image manifest version 2, "
                              "schema 1 (deprecated; push the image again with a current tool)")
    if media_type not in oci_image.MANIFEST_TYPES | oci_image.INDEX_TYPES:
        media_type = body_type or ("" if not isinstance(doc.get("manifests"), list)
                                   else oci_image.OCI_INDEX)
        if not media_type:
            media_type = oci_image.OCI_MANIFEST
    if media_type in oci_image.INDEX_TYPES:
        document = oci_image.Index.from_json(doc)
    elif media_type in oci_image.MANIFEST_TYPES:
        document = oci_image.Manifest.from_json(doc)
    else:
        raise InvalidArgument(f"unsupported manifest media type: {media_type}")
    return Fetched(data, digest, media_type, document)


def _variant_rank(desc: oci_image.Descriptor, wanted: oci_image.Platform) -> int:
    """Lower is better: the exact variant first; for arm64 no variant equals v8."""
    have = desc.platform.variant if desc.platform else None
    if wanted.variant is None:
        return 0 if have in (None, "v8") or wanted.architecture != "arm64" else 1
    return 0 if have == wanted.variant else 2


def select_platform(index: oci_image.Index, wanted: oci_image.Platform) -> oci_image.Descriptor:
    """The manifest of `wanted` in an index (the first matching entry, preferring the variant
    that fits best; attestation manifests, whose platform is unknown/unknown, never match)."""
    candidates = []
    for pos, desc in enumerate(index.manifests):
        p = desc.platform
        if p is None or desc.media_type not in oci_image.MANIFEST_TYPES | {""}:
            continue
        if (p.os, p.architecture) != (wanted.os, wanted.architecture):
            continue
        if wanted.variant is not None and p.variant not in (wanted.variant, None) and not (
                wanted.architecture == "arm64" and wanted.variant == "v8" and p.variant is None):
            continue
        candidates.append((_variant_rank(desc, wanted), pos, desc))
    if not candidates:
        text = "/".join(x for x in (wanted.os, wanted.architecture, wanted.variant) if x)
        raise NotFound(f"no matching manifest for {text} in the manifest list entries")
    return min(candidates, key=lambda c: c[:2])[2]


@dataclass(frozen=True)
class RegistryError:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code.lower().replace('_', ' ')}: {self.message}"


def parse_errors(body: bytes) -> list[RegistryError]:
    """`{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}`; anything
    else gives an empty list."""
    if not body or len(body) > MAX_ERROR_BODY:
        return []
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    out = []
    for e in errors:
        if isinstance(e, dict) and isinstance(e.get("code"), str):
            out.append(RegistryError(e["code"], str(e.get("message") or e["code"].lower())))
    return out


def manifest_for_push(config: oci_image.Descriptor,
                      layers: list[oci_image.Descriptor]) -> bytes:
    """A Docker schema 2 manifest (what docker pushes) for a config and its layer blobs."""
    doc = {
        "schemaVersion": 2,
        "mediaType": oci_image.DOCKER_MANIFEST,
        "config": {"mediaType": oci_image.DOCKER_CONFIG, "size": config.size,
                   "digest": config.digest},
        "layers": [{"mediaType": l.media_type, "size": l.size, "digest": l.digest}
                   for l in layers],
    }
    return json.dumps(doc, indent=3).encode()
