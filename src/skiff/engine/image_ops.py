"""Image operations beyond load/get/remove: history, prune, import.

    history(images, "busybox")          -> docker's /images/{name}/history list, newest first
    prune(images, dangling_only=True)   -> {"ImagesDeleted": [...], "SpaceReclaimed": N}
    import_tarball(images, fileobj, repo="x", tag="1", changes=["CMD [\"sh\"]"]) -> image id
    import_url(images, "http://host/rootfs.tar.gz", progress=emit, repo="x") -> image id
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone

from skiff.engine.config_changes import apply_changes
from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.oci import image as oci_image
from skiff.oci import reference
from skiff.snapshot import unpack
from skiff.snapshot.snapshotter import chain_id
from skiff.store import failpoint
from skiff.timefmt import parse_rfc3339


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(text: str | None) -> int:
    try:
        return int(parse_rfc3339(text)) if text else 0
    except (ValueError, TypeError):
        return 0


def history(images, name: str) -> list[dict]:
    record = images.get(name)
    config = record.config or {}
    entries = list(config.get("history") or [])
    layers = list(record.layers)
    sizes = []
    for layer in layers:
        try:
            sizes.append(images.layer_size(layer))
        except Exception:
            sizes.append(0)
    if not entries:  # no history recorded: one line per layer, as docker shows it
        entries = [{"created": config.get("created")} for _ in layers] or \
            [{"created": config.get("created"), "empty_layer": True}]
    out = []
    li = 0
    for entry in entries:
        size = 0
        if not entry.get("empty_layer") and li < len(layers):
            size = sizes[li]
            li += 1
        out.append({"Id": "<missing>", "Created": _seconds(entry.get("created")),
                    "CreatedBy": entry.get("created_by", ""), "Tags": None, "Size": size,
                    "Comment": entry.get("comment", "")})
    # as docker: the images of the parent chain that are here (a build's steps) name their
    # own last entry; the others stay <missing>
    current, seen = images.get(record.parent) if _present(images, record.parent) else None, set()
    while current is not None and current.id not in seen:
        seen.add(current.id)
        n = len((current.config or {}).get("history") or [])
        if 0 < n <= len(out):
            out[n - 1]["Id"] = current.id
            out[n - 1]["Tags"] = list(current.repo_tags) or None
        current = images.get(current.parent) if _present(images, current.parent) else None
    out.reverse()
    out[0]["Id"] = record.id
    out[0]["Tags"] = list(record.repo_tags) or None
    return out


def _present(images, image_id: str | None) -> bool:
    if not image_id:
        return False
    try:
        images.get(image_id)
        return True
    except NotFound:
        return False


def _in_use(images) -> set[str]:
    return {row[0] for row in images.db.query(
        "SELECT DISTINCT image_id FROM containers WHERE image_id IS NOT NULL")}


def prune(images, dangling_only: bool = True, filters: dict | None = None) -> dict:
    """`docker image prune [-a]`: remove images without tags (or, with -a, every image no
    container uses). Filters `until` and `label` as docker has them."""
    filters = filters or {}
    if "dangling" in filters:
        values = [v.lower() for v in filters["dangling"]]
        dangling_only = not any(v in ("false", "0") for v in values)
    deleted: list[dict] = []
    reclaimed = 0
    used = _in_use(images)
    records = images.list()
    # docker's dangling images are heads: an untagged image that another image was made from
    # (a build step's, kept as the build cache) is not one
    parents = {r.parent for r in records if r.parent}
    for record in records:
        if record.id in used:
            continue
        if dangling_only and (record.repo_tags or record.id in parents):
            continue
        if not _matches(record, filters):
            continue
        before = _unique_size(images, record)
        try:
            if record.repo_tags:
                report = []
                for tag in record.repo_tags:
                    report += images.remove(tag, force=False)
            else:
                report = images.remove(record.id, force=False)
        except Conflict:
            continue
        deleted += report
        if any(item.get("Deleted") == record.id for item in report):
            reclaimed += before
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _unique_size(images, record) -> int:
    size = 0
    for layer in record.layers:
        users = images.db.query_one("SELECT COUNT(DISTINCT image_id) FROM image_layers WHERE "
                                    "chain_id = ?", (layer["chainID"],))[0]
        if users <= 1:
            try:
                size += images.layer_size(layer)
            except Exception:
                pass
    return size


def _matches(record, filters: dict) -> bool:
    labels = ((record.config or {}).get("config") or {}).get("Labels") or {}
    for value in filters.get("label", []):
        key, eq, want = value.partition("=")
        if key not in labels or (eq and labels[key] != want):
            return False
    for value in filters.get("label!", []):
        key, eq, want = value.partition("=")
        if key in labels and (not eq or labels[key] == want):
            return False
    for value in filters.get("until", []):
        limit = _time_filter(value)
        if _seconds(record.created) >= limit:
            return False
    return True


def _time_filter(value: str) -> float:
    """A timestamp (unix or RFC 3339) or a duration before now (`24h`, `10m`, `30s`)."""
    import re
    import time

    m = re.fullmatch(r"(\d+(?:\.\d+)?)(h|m|s)", value.strip())
    if m:
        seconds = float(m.group(1)) * {"h": 3600, "m": 60, "s": 1}[m.group(2)]
        return time.time() - seconds
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_rfc3339(value)
    except (ValueError, TypeError):
        raise InvalidArgument(f"invalid value for until: {value}") from None


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def import_tarball(images, fileobj, *, repo: str = "", tag: str = "",
                   changes: list[str] | None = None, message: str = "",
                   platform_text: str = "") -> str:
    """`docker import`: a filesystem tarball (plain or compressed) as a one-layer image."""
    target = None
    if repo:
        target = reference.parse(f"{repo}:{tag}" if tag else repo)
        if target.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
    cfg = apply_changes({}, list(changes or []))
    store, snaps = images.store, images.snapshots
    with images._lock:
        written: set[str] = set()
        new_chain = None
        try:
            # the layer is kept as it came (compressed or not); its diff id is found by
            # unpacking it, which also refuses hostile entries
            digest, size = store.ingest(fileobj)
            written.add(digest)
            with store.open(digest) as f:
                head = f.read(4)
            media_type = oci_image.DOCKER_LAYER_GZIP if head.startswith(b"\x1f\x8b") else \
                oci_image.OCI_LAYER_ZSTD if head.startswith(b"\x28\xb5\x2f\xfd") else \
                oci_image.DOCKER_LAYER
            diff_id = _diff_id(store.path(digest), media_type)
            failpoint.hit("import.layer_stored")
            created = _now()
            entry = {"created": created, "created_by": ""}
            if message:
                entry["comment"] = message
            config = {"architecture": _arch(), "os": "linux", "created": created,
                      "config": cfg, "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                      "history": [entry]}
            if message:
                config["comment"] = message
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            config_digest, _ = store.ingest_bytes(config_bytes)
            written.add(config_digest)
            chain = chain_id(None, diff_id)
            if not snaps.exists(chain):
                snaps.unpack(chain, None, store.path(digest), media_type,
                             expected_diff_id=diff_id)
                new_chain = chain
            layers = [{"digest": digest, "size": size, "mediaType": media_type,
                       "diffID": diff_id, "chainID": chain}]
            images._record_image(config_digest, config_bytes, layers,
                                 [target] if target else [])
        except BaseException:
            images._discard([new_chain] if new_chain else [], written)
            raise
        return config_digest


def _diff_id(path: str, media_type: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        try:
            stream = unpack.decompressed(f, media_type)
            while True:
                chunk = stream.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
        except unpack.decode_errors() as e:
            raise InvalidArgument(f"invalid tar archive: {e or type(e).__name__}") from None
    return "sha256:" + h.hexdigest()


URL_PROGRESS_STEP = 512 * 1024
URL_TIMEOUT = 60.0


class _Progress:
    """The download as a file, reporting docker's `Importing` progress while it is read."""

    def __init__(self, f, total: int | None, emit):
        self.f, self.total, self.emit = f, total, emit
        self.done = self.last = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.done += len(data)
        if self.done - self.last >= URL_PROGRESS_STEP or (not data and self.done):
            self.last = self.done
            self.emit({"status": "Importing", "progressDetail": {
                "current": self.done, "total": self.total or 0}})
        return data


def source_url(source: str) -> str:
    """docker's rule: a source without a scheme is an http URL; only http(s) is fetched."""
    import urllib.parse

    url = source if "://" in source else "http://" + source
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidArgument(f"unsupported URL scheme {scheme!r} in {source}: only http and "
                              f"https are imported")
    return url


def import_url(images, source: str, *, progress=None, **kw) -> str:
    """`docker import URL`: the tarball downloaded (streamed, never whole in memory) and
    imported as `import_tarball` does; `progress` gets docker's messages."""
    import urllib.error
    import urllib.request

    emit = progress or (lambda message: None)
    url = source_url(source)
    try:
        response = urllib.request.urlopen(url, timeout=URL_TIMEOUT)
    except urllib.error.HTTPError as e:
        raise InvalidArgument(f"failed to GET {url} with status {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise InvalidArgument(f"error downloading {url}: {reason}") from None
    with response:
        emit({"status": f"Downloading from {url}"})
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        return import_tarball(images, _Progress(response, total, emit), **kw)
