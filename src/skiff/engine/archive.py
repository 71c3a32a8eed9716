"""`save`: images as one tarball that docker, podman and skiff load.

The layout is the one docker >= 25 writes, which older loaders read too:

    oci-layout                      {"imageLayoutVersion": "1.0.0"}
    index.json                      one manifest descriptor per image and name, annotated with
                                    io.containerd.image.name and org.opencontainers.image.ref.name
    manifest.json                   docker's list: [{"Config", "RepoTags", "Layers"}]
    blobs/sha256/<hex>              configs, manifests and layers, each once

Layers are written as they are stored (compressed layers stay compressed; every loader
decompresses them). An image that came with a manifest keeps it byte for byte; one made here
(commit, import) gets a Docker v2 manifest built from its layers.

    names = resolve_names(images, ["busybox", "app:v2"])   # NotFound before any byte is sent
    write_archive(images, names, out)
"""

from __future__ import annotations

import json
import os
import tarfile
import time

from skiff.oci import image as oci_image
from skiff.oci import reference
from skiff.oci.digest import digest_of

BLOCK = 512
CHUNK = 1 << 20


def resolve_names(images, names: list[str]) -> list[tuple[object, list[str]]]:
    """[(ImageRecord, tags to write)] in the order first named; a name that is a reference
    contributes its tag (full form), an id contributes none."""
    out: dict[str, tuple[object, list[str]]] = {}
    for name in names:
        row, how, missing = images._find(name)
        if row is None:
            raise missing
        record = images._record(row)
        entry = out.setdefault(record.id, (record, []))
        if how == "reference":
            ref = reference.parse(name)
            if ref.tag and not ref.digest:
                tag = ref.familiar()
                if tag not in entry[1]:
                    entry[1].append(tag)
    return list(out.values())


def _manifest(images, record, opened: dict) -> tuple[bytes, str]:
    """(manifest bytes, media type) of an image; `opened`: digest -> (file, size)."""
    if record.manifest_digest and images.store.has(record.manifest_digest):
        data = images.store.read_bytes(record.manifest_digest)
        try:
            media_type = json.loads(data).get("mediaType") or oci_image.OCI_MANIFEST
        except ValueError:
            media_type = oci_image.OCI_MANIFEST
        if media_type in oci_image.MANIFEST_TYPES:
            return data, media_type
    layers = [dict(l, size=opened[l["digest"]][1]) for l in record.layers]
    return manifest_for(record.id, opened[record.id][1], layers)


_OCI_FOR_DOCKER = {oci_image.DOCKER_LAYER: oci_image.OCI_LAYER,
                   oci_image.DOCKER_LAYER_GZIP: oci_image.OCI_LAYER_GZIP}


def manifest_for(config_digest: str, config_size: int, layers: list[dict]) -> tuple[bytes, str]:
    """(manifest bytes, media type) for a config and its layers ({"mediaType", "digest",
    "size"}): Docker schema 2 when every layer has a Docker media type (what docker pushes),
    else OCI, with Docker layer types translated (one manifest never mixes the two families:
    skopeo and containerd refuse that)."""
    docker_types = {oci_image.DOCKER_LAYER, oci_image.DOCKER_LAYER_GZIP}
    if all(l.get("mediaType") in docker_types for l in layers):
        doc = {"schemaVersion": 2, "mediaType": oci_image.DOCKER_MANIFEST,
               "config": {"mediaType": oci_image.DOCKER_CONFIG, "size": config_size,
                          "digest": config_digest},
               "layers": [{"mediaType": l["mediaType"], "size": l["size"],
                           "digest": l["digest"]} for l in layers]}
        return json.dumps(doc, indent=3).encode(), oci_image.DOCKER_MANIFEST
    doc = {"schemaVersion": 2, "mediaType": oci_image.OCI_MANIFEST,
           "config": {"mediaType": oci_image.OCI_CONFIG, "digest": config_digest,
                      "size": config_size},
           "layers": [{"mediaType": _OCI_FOR_DOCKER.get(l.get("mediaType"),
                                                        l.get("mediaType") or
                                                        oci_image.OCI_LAYER),
                       "digest": l["digest"], "size": l["size"]} for l in layers]}
    return json.dumps(doc, indent=3).encode(), oci_image.OCI_MANIFEST


class _Counter:
    """Where a dry run of the writer goes: the archive's length, to send as Content-Length."""

    def __init__(self):
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)


class _Writer:
    def __init__(self, out, mtime: int, dry: bool = False):
        self.out = out
        self.mtime = mtime
        self.dry = dry     # count blobs' bytes without reading them

    def _info(self, name: str, size: int, kind=tarfile.REGTYPE) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.type, info.mtime = size, kind, self.mtime
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        info.uname = info.gname = ""
        self.out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def directory(self, name: str) -> None:
        self._info(name, 0, tarfile.DIRTYPE)

    def data(self, name: str, data: bytes) -> None:
        self._info(name, len(data))
        self.out.write(data)
        self.out.write(bytes(-len(data) % BLOCK))

    def file(self, name: str, f, size: int) -> None:
        self._info(name, size)
        if self.dry:
            self.out.size += size + (-size % BLOCK)
            return
        with f:
            left = size
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(f"{name} is shorter than {size} bytes")
                self.out.write(chunk)
                left -= len(chunk)
        self.out.write(bytes(-size % BLOCK))

    def finish(self) -> None:
        self.out.write(bytes(2 * BLOCK))


def _open_blobs(images, selected) -> dict:
    """Every blob the archive needs, opened at once under the image lock: an image removed
    while a slow client reads the archive can delete its blobs, but open files stay readable
    (the lease on them is the open descriptor). NotFound if an image went before this."""
    from skiff.errors import NotFound

    opened: dict = {}
    try:
        with images._lock:
            for record, _ in selected:
                if images.db.query_one("SELECT 1 FROM images WHERE id = ?",
                                       (record.id,)) is None:
                    raise NotFound(f"No such image: {record.id}")
                for digest in [record.id] + [l["digest"] for l in record.layers]:
                    if digest not in opened:
                        f = images.store.open(digest)
                        opened[digest] = (f, os.fstat(f.fileno()).st_size)
    except BaseException:
        for f, _ in opened.values():
            f.close()
        raise
    return opened


class Archive:
    """An archive ready to be written: its blobs open (see `_open_blobs`) and its exact
    length known beforehand (a dry run of the writer), so that it can be sent with a
    Content-Length instead of chunked framing, which both ends would copy byte by byte."""

    def __init__(self, images, selected: list[tuple[object, list[str]]]):
        self.images, self.selected = images, selected
        self.mtime = int(time.time())
        self.opened = _open_blobs(images, selected)
        try:
            counter = _Counter()
            _write(images, selected, _Writer(counter, self.mtime, dry=True), self.opened)
            self.size = counter.size
        except BaseException:
            self.close()
            raise

    def write_to(self, out) -> None:
        try:
            _write(self.images, self.selected, _Writer(out, self.mtime), self.opened)
        finally:
            self.close()

    def close(self) -> None:
        for f, _ in self.opened.values():
            if not f.closed:
                f.close()


def write_archive(images, selected: list[tuple[object, list[str]]], out) -> None:
    Archive(images, selected).write_to(out)


def _write(images, selected, w: "_Writer", opened: dict) -> None:
    w.data("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    w.directory("blobs/")
    w.directory("blobs/sha256/")
    written: set[str] = set()
    index, manifest_list = [], []

    def blob(digest: str) -> str:
        name = "blobs/" + digest.replace(":", "/")
        if digest not in written:
            written.add(digest)
            f, size = opened[digest]
            w.file(name, f, size)
        return name

    for record, tags in selected:
        config_name = blob(record.id)
        layer_names = [blob(l["digest"]) for l in record.layers]
        manifest, media_type = _manifest(images, record, opened)
        manifest_digest = digest_of(manifest)
        if manifest_digest not in written:
            written.add(manifest_digest)
            w.data("blobs/" + manifest_digest.replace(":", "/"), manifest)
        descriptor = {"mediaType": media_type, "digest": manifest_digest,
                      "size": len(manifest)}
        for tag in tags or [None]:
            entry = dict(descriptor)
            if tag:
                ref = reference.parse(tag)
                entry["annotations"] = {"io.containerd.image.name": str(ref),
                                        "org.opencontainers.image.ref.name": ref.tag}
            index.append(entry)
        manifest_list.append({"Config": config_name, "RepoTags": tags or None,
                              "Layers": layer_names})
    w.data("index.json", json.dumps({"schemaVersion": 2, "mediaType": oci_image.OCI_INDEX,
                                     "manifests": index}, separators=(",", ":")).encode())
    w.data("manifest.json", json.dumps(manifest_list, separators=(",", ":")).encode())
    w.finish()
