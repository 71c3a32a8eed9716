"""Images: load from tarballs, look up, list, tag and remove.

An image is its config blob: the image id is the config's digest (`sha256:...`). Its layers are
blobs in the ContentStore and committed snapshots (by chain id) in the Snapshotter; its row in
the `images` table and its tags make it visible, and they are written last, in one
transaction, so that a load that fails (or is killed) at any point leaves no image behind.

`load` accepts, plain or gzip/bzip2/xz-compressed:
  - docker-archive as docker < 25 writes it (`manifest.json`, `<id>/layer.tar`, `<hex>.json`,
    with layer.tar files that may be symlinks to another layer's);
  - docker-archive as docker >= 25 and podman write it (`manifest.json` naming files under
    `blobs/sha256/`, plus `index.json` and `oci-layout`);
  - an OCI image layout (`oci-layout`, `index.json`, `blobs/`), names taken from the
    `io.containerd.image.name` annotation or a full reference in
    `org.opencontainers.image.ref.name`.
Every blob is verified: files under `blobs/<alg>/<hex>` against their names while they stream
into the store, configs by their digest (which is the image id), layers by their diff ids as
they are unpacked (and compressed layers of an OCI manifest by their digests too).

Loads, tags and removals are serialised by one lock (they are rare; this keeps a failed load's
clean-up from deleting a blob that a concurrent load has just stored).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import tarfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import BinaryIO

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.oci import image as oci_image
from skiff.oci import reference
from skiff.oci.digest import digest_of, is_digest, parse_digest
from skiff.snapshot import Snapshotter, unpack
from skiff.snapshot.tarstream import TarStream
from skiff.store import ContentStore, MetadataDB, failpoint

METADATA_LIMIT = 16 * 1024 * 1024  # one manifest.json, index.json or config, read into memory
METADATA_TOTAL_LIMIT = 64 * 1024 * 1024  # all of them in one archive
_BLOB_PATH = re.compile(r"^blobs/([a-z0-9]+)/([a-f0-9]+)$")
_ID_PREFIX = re.compile(r"^(?:sha256:)?([a-f0-9]{1,64})$")


@dataclass(frozen=True)
class ImageRecord:
    id: str                             # config digest
    repo_tags: list[str]                # familiar form, sorted: ["busybox:latest"]
    created: str | None                 # the config's `created`
    size: int                           # bytes of the unpacked layers
    config: dict                        # the image config, parsed
    manifest_digest: str | None = None
    layers: list[dict] = field(default_factory=list)  # see _layer_doc
    parent: str | None = None
    top_chain_id: str | None = None
    repo_digests: list[str] = field(default_factory=list)

    @property
    def chain_ids(self) -> list[str]:
        """Bottom-first, as Snapshotter.prepare takes them."""
        return [layer["chainID"] for layer in self.layers]

    @property
    def short_id(self) -> str:
        return self.id.partition(":")[2][:12]


@dataclass
class _Member:
    """A regular file of the archive: in memory (small metadata) or stored as a blob."""
    data: bytes | None = None
    digest: str | None = None
    size: int = 0


@dataclass
class _Candidate:
    """One image found in an archive, before anything is committed."""
    config_digest: str
    config_bytes: bytes
    layers: list[dict]                  # {"digest", "size", "mediaType"} per layer, bottom first
    tags: list[reference.Reference]
    manifest_digest: str | None = None
    parent: str | None = None           # the image a commit was made from


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clean_name(name: str) -> str | None:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None  # never needed, never followed
    return "/".join(parts)


class _Archive:
    """The files of an image tarball, read in one pass: small metadata files in memory, every
    other regular file streamed into the content store."""

    def __init__(self, store: ContentStore):
        self.store = store
        self.files: dict[str, _Member] = {}
        self.links: dict[str, str] = {}
        self.ingested: set[str] = set()     # digests this load wrote (or found) in the store
        self.metadata_bytes = 0

    def read(self, fileobj: BinaryIO) -> None:
        try:
            stream = unpack.decompressed(fileobj)
            tar = TarStream(stream)
            for info in tar:
                self._member(tar, info)
            tar.drain()  # a compressed tarball's trailer is checked at its end
        except unpack.decode_errors() as e:
            detail = str(e) or type(e).__name__
            if "unexpected end" in detail or isinstance(e, EOFError):
                detail = "unexpected EOF (the tarball is truncated)"
            raise InvalidArgument(f"invalid image archive: {detail}") from None

    def _member(self, tar: TarStream, info: tarfile.TarInfo) -> None:
        name = _clean_name(info.name)
        if not name:
            return
        if info.issym():
            target = info.linkname
            target = target if target.startswith("/") else posixpath.join(
                posixpath.dirname(name), target)
            self.links[name] = _clean_name(posixpath.normpath(target)) or ""
            return
        if info.islnk():
            self.links[name] = _clean_name(info.linkname) or ""
            return
        if not info.isreg():
            return
        blob = _BLOB_PATH.match(name)
        if blob and is_digest(f"{blob.group(1)}:{blob.group(2)}"):
            expected = f"{blob.group(1)}:{blob.group(2)}"
            digest, size = self.store.ingest(tar, expected, info.size, durable=False)
            self.ingested.add(digest)
            self.files[name] = _Member(digest=digest, size=size)
        elif name.endswith(".json") or name in ("repositories", "oci-layout"):
            self.metadata_bytes += info.size
            if info.size > METADATA_LIMIT or self.metadata_bytes > METADATA_TOTAL_LIMIT:
                raise InvalidArgument(f"invalid image archive: {name} is too large")
            data = b"".join(iter(tar.read, b""))
            if len(data) != info.size:
                raise InvalidArgument("invalid image archive: unexpected EOF")
            self.files[name] = _Member(data=data, size=len(data))
        elif name.endswith(".tar") or name.endswith("layer.tar.gz"):
            digest, size = self.store.ingest(tar, None, info.size, durable=False)
            self.ingested.add(digest)
            self.files[name] = _Member(digest=digest, size=size)
        # anything else (VERSION, legacy <id>/json) is not needed

    def resolve(self, name: str) -> _Member:
        name = _clean_name(name) or ""
        for _ in range(16):
            if name in self.files:
                return self.files[name]
            if name not in self.links:
                break
            name = self.links[name]
        raise InvalidArgument(f"invalid image archive: {name or 'a file'} is missing")

    def bytes_of(self, name: str) -> bytes:
        member = self.resolve(name)
        if member.data is not None:
            return member.data
        if member.size > METADATA_LIMIT:
            raise InvalidArgument(f"invalid image archive: {name} is too large")
        return self.store.read_bytes(member.digest)

    def blob(self, digest: str) -> bytes:
        """A blob of the OCI layout by digest (already verified while it was stored)."""
        alg, hexpart = parse_digest(digest)
        return self.bytes_of(f"blobs/{alg}/{hexpart}")


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"invalid image archive: {what} is not valid JSON: {e}") from None


def _host_platform() -> oci_image.Platform:
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return oci_image.Platform(os="linux", architecture=arch)


class ImageService:
    def __init__(self, store: ContentStore, db: MetadataDB, snapshots: Snapshotter):
        self.store = store
        self.db = db
        self.snapshots = snapshots
        self._lock = threading.Lock()

    # -- load ---------------------------------------------------------------------------------

    def load(self, fileobj: BinaryIO) -> list[str]:
        """Load every image of a docker-archive or OCI-layout tarball; returns docker's
        progress lines (`Loaded image: busybox:latest`, `Loaded image ID: sha256:...`, and
        a line for each tag that moved from another image)."""
        with self._lock:
            archive = _Archive(self.store)
            new_snapshots: list[str] = []
            try:
                archive.read(fileobj)
                candidates = self._candidates(archive)
                for candidate in candidates:
                    archive.ingested.add(candidate.config_digest)
                    self._unpack(candidate, new_snapshots)
                self.store.sync(archive.ingested)  # written back while the layers unpacked
                messages = self._commit(candidates)
            except BaseException:
                self._discard(new_snapshots, archive.ingested)
                raise
            # blobs of the archive that no image needs (other platforms, junk)
            self._discard([], archive.ingested)
            return messages

    def _candidates(self, archive: _Archive) -> list[_Candidate]:
        if "manifest.json" in archive.files:
            found = self._docker_archive(archive)
        elif "index.json" in archive.files:
            found = self._oci_layout(archive)
        else:
            raise InvalidArgument("invalid image archive: no manifest.json or index.json (not "
                                  "a docker-archive or an OCI image layout)")
        if not found:
            raise InvalidArgument("invalid image archive: it holds no image")
        return found

    def _docker_archive(self, archive: _Archive) -> list[_Candidate]:
        entries = _json(archive.files["manifest.json"].data, "manifest.json")
        if not isinstance(entries, list):
            raise InvalidArgument("invalid image archive: manifest.json is not a list")
        manifests_by_config = {}
        if "index.json" in archive.files:
            try:  # only tells the manifest digests: docker's manifest.json is what counts here
                manifests_by_config = self._oci_manifests(archive)
            except InvalidArgument:
                pass
        found = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) or \
                    not isinstance(entry.get("Layers", []), list):
                raise InvalidArgument("invalid image archive: bad entry in manifest.json")
            config_bytes = archive.bytes_of(entry["Config"])
            config_digest = digest_of(config_bytes)
            layers = []
            for path in entry.get("Layers") or []:
                member = archive.resolve(path)
                if member.digest is None:
                    raise InvalidArgument(f"invalid image archive: layer {path} is missing")
                layers.append({"digest": member.digest, "size": member.size,
                               "mediaType": self._sniff_layer_type(member.digest)})
            manifest_digest, oci_layers = manifests_by_config.get(config_digest, (None, None))
            if oci_layers and [l["digest"] for l in oci_layers] == [l["digest"] for l in layers]:
                layers = oci_layers  # keep the manifest's media types
            tags = [self._parse_tag(t) for t in entry.get("RepoTags") or []]
            found.append(_Candidate(config_digest, config_bytes, layers, tags, manifest_digest))
        return found

    def _sniff_layer_type(self, digest: str) -> str:
        with self.store.open(digest) as f:
            head = f.read(4)
        if head.startswith(b"\x1f\x8b"):
            return oci_image.DOCKER_LAYER_GZIP
        if head.startswith(b"\x28\xb5\x2f\xfd"):
            return oci_image.OCI_LAYER_ZSTD
        return oci_image.DOCKER_LAYER

    @staticmethod
    def _parse_tag(text) -> reference.Reference:
        if not isinstance(text, str):
            raise InvalidArgument("invalid image archive: bad RepoTags in manifest.json")
        ref = reference.parse(text)
        if ref.digest:
            raise InvalidArgument(f"invalid image archive: {text} is not a tag")
        return ref

    def _manifests(self, archive: _Archive, index: oci_image.Index, depth: int = 0):
        """(descriptor in index.json, manifest) for every image the layout names; a nested
        index contributes its entries for this host's platform (or its only one)."""
        out = []
        for desc in index.manifests:
            if desc.media_type in oci_image.INDEX_TYPES:
                if depth > 2:
                    raise InvalidArgument("invalid image archive: indexes nested too deep")
                nested = oci_image.Index.from_json(archive.blob(desc.digest))
                wanted = nested.find(_host_platform())[:1] or (
                    nested.manifests[:1] if len(nested.manifests) == 1 else [])
                sub = oci_image.Index(manifests=wanted)
                for _, manifest, m_desc in self._manifests(archive, sub, depth + 1):
                    out.append((desc, manifest, m_desc))
            elif desc.media_type in oci_image.MANIFEST_TYPES or not desc.media_type:
                if desc.platform and not desc.platform.matches(_host_platform()) and \
                        len(index.manifests) > 1:
                    continue  # another platform's image (its blobs are often not there)
                out.append((desc, oci_image.Manifest.from_json(archive.blob(desc.digest)), desc))
        return out

    def _oci_manifests(self, archive: _Archive) -> dict[str, tuple[str, list[dict]]]:
        """config digest -> (manifest digest, layers) from index.json."""
        index = oci_image.Index.from_json(archive.files["index.json"].data)
        out = {}
        for _, manifest, m_desc in self._manifests(archive, index):
            out[manifest.config.digest] = (m_desc.digest, [
                {"digest": l.digest, "size": l.size, "mediaType": l.media_type}
                for l in manifest.layers])
        return out

    def _oci_layout(self, archive: _Archive) -> list[_Candidate]:
        index = oci_image.Index.from_json(archive.files["index.json"].data)
        by_config: dict[str, _Candidate] = {}
        for desc, manifest, m_desc in self._manifests(archive, index):
            config_bytes = archive.blob(manifest.config.digest)
            if len(config_bytes) != manifest.config.size:
                raise InvalidArgument(f"invalid image archive: config {manifest.config.digest} "
                                      f"has the wrong size")
            layers = []
            for l in manifest.layers:
                if l.media_type in oci_image.FOREIGN_LAYER_TYPES and \
                        f"blobs/{l.digest.replace(':', '/')}" not in archive.files:
                    raise InvalidArgument(f"invalid image archive: foreign layer {l.digest} is "
                                          f"not in the archive")
                member = archive.resolve(f"blobs/{l.digest.replace(':', '/')}")
                if member.size != l.size:
                    raise InvalidArgument(f"invalid image archive: layer {l.digest} has the "
                                          f"wrong size")
                oci_image.layer_compression(l.media_type)  # refuses unknown media types
                layers.append({"digest": l.digest, "size": l.size, "mediaType": l.media_type})
            candidate = by_config.setdefault(manifest.config.digest, _Candidate(
                manifest.config.digest, config_bytes, layers, [], m_desc.digest))
            name = self._layout_name(desc.annotations or {})
            if name and name not in candidate.tags:
                candidate.tags.append(name)
        return list(by_config.values())

    @staticmethod
    def _layout_name(annotations: dict) -> reference.Reference | None:
        for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
            text = annotations.get(key)
            if not isinstance(text, str) or not text:
                continue
            if key.startswith("org.") and not any(c in text for c in "/:"):
                continue  # a bare tag (`latest`) names no repository
            try:
                ref = reference.parse(text)
            except InvalidArgument:
                continue
            if ref.tag and not ref.digest:
                return ref
        return None

    def _unpack(self, candidate: _Candidate, new_snapshots: list[str]) -> None:
        config = oci_image.ImageConfig.from_json(candidate.config_bytes)
        if len(config.diff_ids) != len(candidate.layers):
            raise InvalidArgument(
                f"invalid image archive: image {candidate.config_digest} has "
                f"{len(candidate.layers)} layers but its config lists {len(config.diff_ids)}")
        self.store.ingest_bytes(candidate.config_bytes, candidate.config_digest)
        chains = oci_image.chain_ids(config.diff_ids)
        parent = None
        for layer, diff_id, chain in zip(candidate.layers, config.diff_ids, chains):
            layer["diffID"], layer["chainID"] = diff_id, chain
            if not self.snapshots.exists(chain):
                self.snapshots.unpack(chain, parent, self.store.path(layer["digest"]),
                                      layer["mediaType"], expected_diff_id=diff_id,
                                      known_digest=layer["digest"])
                new_snapshots.append(chain)
            parent = chain

    def _commit(self, candidates: list[_Candidate]) -> list[str]:
        messages: list[str] = []
        with self.db.transaction() as cur:
            for c in candidates:
                config = json.loads(c.config_bytes)
                size = sum(self.layer_size(l) for l in c.layers)
                layers_json = json.dumps(c.layers)
                top = c.layers[-1]["chainID"] if c.layers else None
                row = cur.execute("SELECT manifest_digest FROM images WHERE id = ?",
                                  (c.config_digest,)).fetchone()
                if row is None:
                    cur.execute(
                        "INSERT INTO images (id, manifest_digest, config, created, size, "
                        "parent, top_chain_id, layers, loaded) VALUES (?,?,?,?,?,?,?,?,?)",
                        (c.config_digest, c.manifest_digest, c.config_bytes.decode(),
                         config.get("created"), size, c.parent, top, layers_json, _now()))
                    cur.executemany(
                        "INSERT INTO image_layers (image_id, idx, chain_id, diff_id, "
                        "blob_digest) VALUES (?,?,?,?,?)",
                        [(c.config_digest, i, l["chainID"], l["diffID"], l["digest"])
                         for i, l in enumerate(c.layers)])
                elif row[0] is None and c.manifest_digest:
                    cur.execute("UPDATE images SET manifest_digest = ?, layers = ? WHERE id = ?",
                                (c.manifest_digest, layers_json, c.config_digest))
                for ref in c.tags:
                    old = cur.execute("SELECT image_id FROM tags WHERE reference = ?",
                                      (str(ref),)).fetchone()
                    if old and old[0] != c.config_digest:
                        messages.append(f"The image {ref.familiar()} already exists, renaming "
                                        f"the old one with ID {old[0]} to empty string")
                    cur.execute("INSERT OR REPLACE INTO tags (reference, image_id) VALUES (?,?)",
                                (str(ref), c.config_digest))
                    messages.append(f"Loaded image: {ref.familiar()}")
                if not c.tags:
                    messages.append(f"Loaded image ID: {c.config_digest}")
        return messages

    def _record_image(self, config_digest: str, config_bytes: bytes, layers: list[dict],
                      tags: list[reference.Reference], parent_id: str | None = None) -> None:
        """Make an image whose blobs and snapshots are in place visible (one transaction).
        `layers` as in ImageRecord.layers. The caller holds `_lock`."""
        self._commit([_Candidate(config_digest, config_bytes, layers, tags,
                                 parent=parent_id)])

    def _discard(self, chains: list[str], digests: set[str]) -> None:
        """Remove snapshots and blobs that no image row refers to."""
        for chain in reversed(chains):
            if not self.db.query_one("SELECT 1 FROM image_layers WHERE chain_id = ? LIMIT 1",
                                     (chain,)):
                self.snapshots.delete(chain)
        for digest in digests:
            if not self._blob_used(digest):
                self.store.delete(digest)

    def cleanup(self) -> dict:
        """Start-up clean-up after a crash: temp files of interrupted ingests and unpacks, and
        the blobs and snapshots that no image row names (what a killed load or removal left).
        Call it before anything else uses the store: it counts only images' references, so a
        package that keeps blobs for other reasons (a build cache) must run after it."""
        with self._lock:
            temp = self.store.cleanup_temp() + self.snapshots.cleanup_temp()
            chains = [c for c in self.snapshots.list() if not self.db.query_one(
                "SELECT 1 FROM image_layers WHERE chain_id = ? LIMIT 1", (c,))]
            for chain in chains:
                self.snapshots.delete(chain)
            blobs = [d for d, _ in self.store.walk() if not self._blob_used(d)]
            for digest in blobs:
                self.store.delete(digest)
            return {"temp": temp, "snapshots": len(chains), "blobs": len(blobs)}

    def _blob_used(self, digest: str) -> bool:
        return bool(self.db.query_one(
            "SELECT 1 FROM images WHERE id = ?1 OR manifest_digest = ?1 UNION ALL "
            "SELECT 1 FROM image_layers WHERE blob_digest = ?1 LIMIT 1", (digest,)))

    # -- lookups ------------------------------------------------------------------------------

    def _record(self, row) -> ImageRecord:
        refs = [reference.parse(r[0]) for r in self.db.query(
            "SELECT reference FROM tags WHERE image_id = ?", (row["id"],))]
        tags = sorted(r.familiar() for r in refs)
        # RepoDigests: each tagged repository at the manifest (or index) digest it came with
        digest = row["manifest_digest"]
        repo_digests = sorted({f"{r.familiar_name()}@{digest}" for r in refs}) if digest else []
        return ImageRecord(id=row["id"], repo_tags=tags, created=row["created"],
                           size=row["size"], config=json.loads(row["config"]),
                           manifest_digest=row["manifest_digest"],
                           layers=json.loads(row["layers"]), parent=row["parent"],
                           top_chain_id=row["top_chain_id"], repo_digests=repo_digests)

    def list(self) -> list[ImageRecord]:
        """Every image, newest first."""
        return [self._record(r) for r in
                self.db.query("SELECT * FROM images ORDER BY created DESC, id")]

    def get(self, ref_or_id: str) -> ImageRecord:
        """By full reference or familiar name (`busybox`, `busybox:latest`,
        `docker.io/library/busybox:latest`), `name@digest`, full id (with or without `sha256:`)
        or unique id prefix. NotFound("No such image: busybox:latest") otherwise."""
        row, _, missing = self._find(ref_or_id)
        if row is None:
            raise missing
        return self._record(row)

    def _find(self, text: str):
        """(row, "id" | "reference", None) or (None, None, the error to raise)."""
        if not isinstance(text, str) or not text:
            return None, None, NotFound("No such image: ")
        if reference.is_image_id(text):
            full = text if text.startswith("sha256:") else "sha256:" + text
            row = self.db.query_one("SELECT * FROM images WHERE id = ?", (full,))
            return row, "id", NotFound(f"No such image: {text}")
        parse_error = None
        try:
            ref = reference.parse(text)
        except InvalidArgument as e:
            ref, parse_error = None, e
        if ref is not None:
            if ref.digest:
                row = self.db.query_one("SELECT * FROM images WHERE manifest_digest = ? OR "
                                        "id = ?", (ref.digest, ref.digest))
            else:
                row = self.db.query_one("SELECT images.* FROM tags JOIN images ON "
                                        "images.id = tags.image_id WHERE reference = ?",
                                        (str(ref),))
            if row is not None:
                return row, "reference", None
        prefix = _ID_PREFIX.match(text)
        if prefix:
            rows = self.db.query("SELECT * FROM images WHERE substr(id, 8, ?) = ? LIMIT 2",
                                 (len(prefix.group(1)), prefix.group(1)))
            if len(rows) == 1:
                return rows[0], "id", None
        if parse_error is not None:
            return None, None, parse_error
        return None, None, NotFound(f"No such image: {ref.familiar()}")

    def resolve_rootfs(self, image: ImageRecord | str) -> list[str]:
        """The chain ids of an image's layers, BOTTOM-FIRST (Snapshotter.prepare's order),
        every one of them a snapshot on disk.

        A commit records its new layer as a blob only (see engine/commit.py: its files are
        written once, into the blob); the layer's snapshot is unpacked from that blob here,
        when a container or a build first needs it. Under the lock: two callers at once make
        it once (the second finds it made), and a removal cannot take the image's blobs
        away meanwhile. A process killed during the unpack leaves a temp dir that the
        start-up clean-up removes; the image stays whole (its blobs are what it is made of).
        """
        record = image if isinstance(image, ImageRecord) else self.get(image)
        chains = record.chain_ids
        if all(self.snapshots.exists(c) for c in chains):
            return chains
        with self._lock:
            if not self.db.query_one("SELECT 1 FROM images WHERE id = ?", (record.id,)):
                raise NotFound(f"No such image: {record.id}")
            parent = None
            for layer in record.layers:
                chain = layer["chainID"]
                if not self.snapshots.exists(chain):
                    if not self.store.has(layer["digest"]):
                        raise NotFound(f"layer {layer['digest']} of image {record.id} is "
                                       f"neither unpacked nor stored")
                    self.snapshots.unpack(chain, parent, self.store.path(layer["digest"]),
                                          layer.get("mediaType"),
                                          expected_diff_id=layer["diffID"],
                                          known_digest=layer["digest"])
                parent = chain
        return chains

    chain_ids = resolve_rootfs

    def layer_size(self, layer: dict) -> int:
        """Bytes of a layer's files unpacked (`layer` as in ImageRecord.layers): as a commit
        recorded it (its snapshot may not be made yet), else as its snapshot's."""
        size = layer.get("unpackedSize")
        if isinstance(size, int) and size >= 0:
            return size
        return self.snapshots.size(layer["chainID"])

    # -- tags and removal ---------------------------------------------------------------------

    def tag(self, ref_or_id: str, new_reference: str) -> str:
        """Point `new_reference` at an image (moving it if it named another); returns the
        normalised reference."""
        ref = reference.parse(new_reference)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        with self._lock:
            image = self.get(ref_or_id)
            with self.db.transaction() as cur:
                cur.execute("INSERT OR REPLACE INTO tags (reference, image_id) VALUES (?, ?)",
                            (str(ref), image.id))
        return str(ref)

    def _users(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) of the containers made from the image."""
        out = []
        for row in self.db.query("SELECT id, state FROM containers WHERE image_id = ?",
                                 (image_id,)):
            try:
                running = bool(json.loads(row["state"]).get("Running"))
            except (ValueError, AttributeError):
                running = False
            out.append((row["id"], running))
        return out

    def remove(self, ref_or_id: str, force: bool = False, prune: bool = True) -> list[dict]:
        """`docker rmi`: untag a reference, and delete the image when nothing else names or
        uses it. Returns docker's report: [{"Untagged": "busybox:latest"}, {"Deleted": id}...].

        By reference: only that tag goes when the image has others. By id: refused
        (Conflict) when several references name it, unless `force`. An image that containers
        use is never deleted (with `force` it is untagged and stays, dangling); without
        `force`, removing its last reference is a Conflict, in docker's words.
        """
        with self._lock:
            row, how, missing = self._find(ref_or_id)
            if row is None:
                raise missing
            image = self._record(row)
            short = image.short_id
            by_reference = how == "reference"
            refs = [r[0] for r in self.db.query(
                "SELECT reference FROM tags WHERE image_id = ? ORDER BY reference", (image.id,))]
            users = self._users(image.id)
            running = [cid for cid, is_running in users if is_running]
            report: list[dict] = []
            if by_reference:
                ref = reference.parse(ref_or_id)
                untag = [str(ref)] if str(ref) in refs else []
                if len(refs) <= 1 and users and not force:
                    raise Conflict(f'conflict: unable to remove repository reference '
                                   f'"{ref_or_id}" (must force) - container {users[0][0][:12]} '
                                   f"is using its referenced image {short}")
            else:
                if len(refs) > 1 and not force:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                   f"image is referenced in multiple repositories")
                if running:
                    raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - "
                                   f"image is being used by running container {running[0][:12]}")
                if users and not force:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                   f"image is being used by stopped container {users[0][0][:12]}")
                untag = refs
            delete = len(refs) - len(untag) == 0 and not users
            with self.db.transaction() as cur:
                for r in untag:
                    cur.execute("DELETE FROM tags WHERE reference = ?", (r,))
                    report.append({"Untagged": reference.parse(r).familiar()})
                if delete:
                    cur.execute("DELETE FROM images WHERE id = ?", (image.id,))
            if delete:
                failpoint.hit("image.remove.row_deleted")
                report.append({"Deleted": image.id})
                report += self._collect(image)
            return report

    def _collect(self, image: ImageRecord) -> list[dict]:
        """Delete the snapshots and blobs of a removed image that no other image needs."""
        report = []
        for layer in reversed(image.layers):
            chain = layer["chainID"]
            if not self.db.query_one("SELECT 1 FROM image_layers WHERE chain_id = ? LIMIT 1",
                                     (chain,)):
                # a commit's layer whose snapshot was never made is deleted all the same
                if self.snapshots.delete(chain) or "unpackedSize" in layer:
                    report.append({"Deleted": chain})
                    failpoint.hit("image.collect.snapshot_deleted")
        blobs = {image.id} | {l["digest"] for l in image.layers}
        if image.manifest_digest:
            blobs.add(image.manifest_digest)
        for digest in blobs:
            if not self._blob_used(digest):
                self.store.delete(digest)
        return report
