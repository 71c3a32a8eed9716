"""A container's filesystem changes: `diff`, `export` and `commit` (a new image from them).

    changes(engine, "web")                    -> [{"Kind": 1, "Path": "/etc"}, ...]
    export(engine, "web", out)                # the merged rootfs as a tar, written to out
    commit(engine, "web", repo="app", tag="v2", changes=["CMD [\"top\"]"])  -> "sha256:..."

All three read the container's overlay upper dir and the image's committed snapshots directly:
the container's rootfs is mounted only inside its own mount namespace. A commit writes the
upper dir as a layer tar into the content store (hashing as it goes: that digest is the diff
id), stores the new config, and then records the image (and its tag) in one transaction, so a
commit killed at any point leaves no image behind; what it left on disk is removed by
ImageService.cleanup at the next start, or at once when it fails.

The layer's files are written once, into the blob: its snapshot is unpacked from the blob
when a container or a build first needs it (ImageService.resolve_rootfs), not here. Making
1,000 files costs a commit more than writing one blob of the same bytes (an inode each, while
the container's own writes may still be on their way to the disk), and many committed images
(a backup, an image to push or save) never run here at all. The layer records its unpacked
size ("unpackedSize"), so `image inspect`, `history` and `system df` need no snapshot.

`pause` freezes the container's cgroup (the freezer of cgroup v1, `cgroup.freeze` on v2) while
the layer is written, as docker pauses it, so that the layer is a consistent snapshot.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

from skiff.engine.config_changes import apply_changes
from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.oci import image as oci_image
from skiff.oci import reference
from skiff.snapshot import diff as snapdiff
from skiff.snapshot.snapshotter import chain_id
from skiff.store import failpoint

KINDS = {"C": 0, "A": 1, "D": 2}  # the Engine API's numbers for docker's letters
FREEZE_TIMEOUT = 10.0
# Keys of a container's Config that belong in an image config (docker's ContainerConfig).
IMAGE_CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout",
                     "AttachStderr", "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env",
                     "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
                     "Entrypoint", "NetworkDisabled", "OnBuild", "Labels", "StopSignal",
                     "StopTimeout", "Shell")
KEPT_IN_IMAGE = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Volumes",
                 "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal", "Shell")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _layers_of(engine, record) -> tuple[str, list[str], object]:
    """(upper dir, lower dirs top-most first, image record) of a container."""
    if record.image_id is None:
        raise NotFound(f"No such image for container {record.id[:12]}")
    image = engine.images.get(record.image_id)
    upper = engine.snapshots.upper(record.id)
    if not os.path.isdir(upper):
        raise NotFound(f"No such container: {record.id}: its filesystem is gone")
    lowers = [engine.snapshots.path(c) for c in reversed(engine.images.resolve_rootfs(image))]
    return upper, lowers, image


def _mount_points(engine, cid: str) -> frozenset[str]:
    """Destinations of the container's mounts: files the runtime made in the rootfs."""
    try:
        with open(os.path.join(engine.containers.container_dir(cid), "config.json")) as f:
            spec = json.load(f)
    except (OSError, ValueError):
        return frozenset()
    out = set()
    for m in spec.get("mounts") or []:
        dest = "/" + os.path.normpath("/" + str(m.get("destination", ""))).lstrip("/")
        while dest not in ("/", ""):
            out.add(dest)
            dest = os.path.dirname(dest)
    return frozenset(out)


def changes(engine, ref: str) -> list[dict]:
    record = engine.containers.get(ref)
    upper, lowers, _ = _layers_of(engine, record)
    found = snapdiff.changes(upper, lowers, _mount_points(engine, record.id))
    return [{"Kind": KINDS[kind], "Path": path} for kind, path in found]


def export(engine, ref: str, out) -> None:
    record = engine.containers.get(ref)
    upper, lowers, _ = _layers_of(engine, record)
    snapdiff.write_merged([upper] + lowers, out)  # mount points included, as docker's


# -- freezing ------------------------------------------------------------------------------------


class _Freezer:
    """Freeze a running container's cgroup for the duration of a `with` block."""

    def __init__(self, pid: int):
        self.pid = pid
        self.path: str | None = None
        self.v2 = False

    def _locate(self) -> None:
        v2_root = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") \
            else "/sys/fs/cgroup/unified"
        with open(f"/proc/{self.pid}/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
        for hid, controllers, path in lines:
            if "freezer" in controllers.split(","):
                candidate = f"/sys/fs/cgroup/freezer{path}/freezer.state"
                if os.path.exists(candidate):
                    self.path = candidate
                    return
        for hid, controllers, path in lines:
            if hid == "0" and controllers == "":
                candidate = f"{v2_root}{path}/cgroup.freeze"
                if os.path.exists(candidate):
                    self.path, self.v2 = candidate, True
                    return
        raise Conflict("cannot pause the container: no cgroup freezer for it")

    def _state(self) -> bool:
        if self.v2:
            with open(os.path.join(os.path.dirname(self.path), "cgroup.events")) as f:
                return "frozen 1" in f.read()
        with open(self.path) as f:
            return f.read().strip() == "FROZEN"

    def __enter__(self) -> "_Freezer":
        self._locate()
        with open(self.path, "w") as f:
            f.write("1" if self.v2 else "FROZEN")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while not self._state():
            if time.monotonic() > deadline:
                self.__exit__()
                raise Conflict("cannot pause the container: its cgroup did not freeze")
            time.sleep(0.002)
        return self

    def __exit__(self, *exc) -> None:
        with open(self.path, "w") as f:
            f.write("0" if self.v2 else "THAWED")


# -- commit --------------------------------------------------------------------------------------


def _image_config(record, image_cfg: dict, overrides: dict | None) -> dict:
    """The new image's `config`: the container's config (docker's rules), then the
    request's overrides."""
    cfg = dict(record.config.get("Config") or {})
    hostname = cfg.get("Hostname") or ""
    base_env = image_cfg.get("Env") or []
    env = []
    for e in cfg.get("Env") or []:
        if e == f"HOSTNAME={hostname}" and e not in base_env:
            continue  # the engine adds these at create; docker keeps them out of the config
        if cfg.get("Tty") and e == "TERM=xterm" and e not in base_env:
            continue
        env.append(e)
    cfg["Env"] = env
    out = {k: cfg[k] for k in KEPT_IN_IMAGE if cfg.get(k) not in (None, "", [], {})}
    for key, value in (overrides or {}).items():
        if key in IMAGE_CONFIG_KEYS and value not in (None, "", [], {}):
            out[key] = value
    return out


def _id_maps(engine, cid: str):
    """A user-namespaced container's id maps (its upper dir holds shifted owners); None
    without a user namespace."""
    from skiff.oci.idmap import of_spec

    try:
        with open(os.path.join(engine.containers.container_dir(cid), "config.json")) as f:
            ids = of_spec(json.load(f))
    except (OSError, ValueError):
        return None
    return ids if ids[0] or ids[1] else None


def commit(engine, ref: str, *, repo: str = "", tag: str = "", comment: str = "",
           author: str = "", changes: list[str] | None = None, pause: bool = True,
           config: dict | None = None) -> str:
    """Make an image of the container's changes; returns its id (`sha256:...`)."""
    record = engine.containers.get(ref)
    target = None
    if repo:
        text = f"{repo}:{tag}" if tag else repo
        target = reference.parse(text)
        if target.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
    elif tag:
        raise InvalidArgument("invalid reference format: repository name must be given with "
                              "a tag")
    upper, lowers, image = _layers_of(engine, record)
    base = json.loads(json.dumps(image.config or {}))
    new_cfg = apply_changes(_image_config(record, base.get("config") or {}, config),
                            list(changes or []))
    exclude = _mount_points(engine, record.id)
    ids = _id_maps(engine, record.id)

    images, store = engine.images, engine.content
    with images._lock:
        written: set[str] = set()
        try:
            parent = image.chain_ids[-1] if image.chain_ids else None
            pid = int(record.state.get("Pid") or 0)
            freeze = pause and record.state.get("Running") and not \
                record.state.get("Paused") and pid > 0
            with store.writer() as blob:
                if freeze:
                    with _Freezer(pid):
                        unpacked = snapdiff.write_layer(upper, blob, lowers=lowers,
                                                        exclude=exclude, ids=ids)
                else:
                    unpacked = snapdiff.write_layer(upper, blob, lowers=lowers,
                                                    exclude=exclude, ids=ids)
                diff_id, size = blob.commit()
            written.add(diff_id)
            failpoint.hit("commit.layer_written")
            created = _now()
            history = list(base.get("history") or [])
            entry = {"created": created,
                     "created_by": " ".join(_command_of(record))}
            if author:
                entry["author"] = author
            if comment:
                entry["comment"] = comment
            history.append(entry)
            rootfs = base.get("rootfs") or {"type": "layers", "diff_ids": []}
            diff_ids = list(rootfs.get("diff_ids") or []) + [diff_id]
            new = {k: v for k, v in base.items() if k not in ("container_config", "container")}
            new.update({"created": created, "config": new_cfg, "history": history,
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}})
            new.setdefault("architecture", base.get("architecture") or "amd64")
            new.setdefault("os", base.get("os") or "linux")
            if author:
                new["author"] = author
            else:
                new.pop("author", None)
            if comment:
                new["comment"] = comment
            else:
                new.pop("comment", None)
            config_bytes = json.dumps(new, separators=(",", ":")).encode()
            config_digest, _ = store.ingest_bytes(config_bytes)
            written.add(config_digest)
            failpoint.hit("commit.config_written")
            layers = [dict(l) for l in image.layers] + [{
                "digest": diff_id, "size": size, "mediaType": oci_image.DOCKER_LAYER,
                "diffID": diff_id, "chainID": chain_id(parent, diff_id),
                "unpackedSize": unpacked}]
            images._record_image(config_digest, config_bytes, layers,
                                 [target] if target else [], parent_id=image.id)
        except BaseException:
            images._discard([], written)
            raise
        return config_digest


def _command_of(record) -> list[str]:
    path = record.config.get("Path") or ""
    return [path] + list(record.config.get("Args") or []) if path else []
