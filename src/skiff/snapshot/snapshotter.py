"""The overlay snapshotter: image layers unpacked once, shared read-only by every container.

Vocabulary (containerd's):
  - a *committed snapshot* is one image layer applied on its parents, named by its chain id
    (`sha256:...` of the layer stack up to it, see `chain_id`), at
    `<root>/snapshots/<hex>/fs`; it holds only that layer's files, with whiteouts in
    overlayfs form, so overlay stacks them. `<hex>/diff_id`, `<hex>/parent` describe it.
  - an *active snapshot* is a container's writable rootfs, named by a key of the caller's
    choosing (the container id): `<root>/snapshots/active/<key>/{upper,work}`.

Worked example (the busybox image has one layer, diff id D):

    snaps = Snapshotter("/var/lib/skiff")
    c1 = chain_id(None, D)                       # == D for a bottom layer
    snaps.unpack(c1, None, store.path(layer_digest), media_type, expected_diff_id=D)
    mounts = snaps.prepare(container_id, [c1])   # chain ids BOTTOM-FIRST, as in the config
    # -> [Mount("overlay", "overlay", "/", ["lowerdir=.../<c1 hex>/fs",
    #                                      "upperdir=.../active/<id>/upper",
    #                                      "workdir=.../active/<id>/work"])]
    ...                                          # the runtime mounts it as the rootfs
    snaps.remove(container_id)

The snapshotter knows no images, containers or database: whoever calls `delete(chain_id)`
makes sure no image needs it any more (an image that has layer N also has layers < N).

Crash safety: a committed snapshot is built in `<root>/snapshots/.tmp-*` and renamed into
place whole, so `exists()` is never true of a half-unpacked layer; `cleanup_temp()` (call it
at start-up) removes what a crash left. File contents are not fsync'd one by one (neither does
docker's overlay2): a power cut during an unpack can leave a layer with lost data, which
`verify` (not yet written) would catch.

Limits: overlay's lowerdir list must fit the kernel's mount data page (4096 bytes) with the
classic mount(2); about 40 layers with the default root. The runtime may use the new mount
API (fsconfig `lowerdir+`) to lift that; `prepare` does not check it. The root path must not
hold ':' or ',' (overlay's option separators).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.oci.mount import Mount
from skiff.snapshot.unpack import apply_layer
from skiff.store import failpoint

_HEX64 = re.compile(r"^[a-f0-9]{64}$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TEMP_PREFIX = ".tmp-"


def chain_id(parent: str | None, diff_id: str) -> str:
    """The OCI chain id of a layer: its diff id for the bottom layer, else
    sha256(parent_chain_id + " " + diff_id)."""
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def _hex(chain: str) -> str:
    alg, _, hexpart = chain.partition(":") if isinstance(chain, str) else ("", "", "")
    if alg != "sha256" or not _HEX64.match(hexpart):
        raise InvalidArgument(f"invalid chain id: {chain!r}")
    return hexpart


@dataclass(frozen=True)
class Usage:
    size: int    # bytes of regular files (each inode once)
    inodes: int


class Snapshotter:
    """Committed snapshots under `<root>/snapshots/<hex>`, active ones under `.../active/<key>`."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.path.abspath(os.fspath(root))
        self.dir = os.path.join(self.root, "snapshots")
        if ":" in self.dir or "," in self.dir:
            raise InvalidArgument(f"snapshot root {self.dir!r} must not contain ':' or ','")
        self.active_dir = os.path.join(self.dir, "active")
        os.makedirs(self.active_dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        # The one "are we root" decision of this package: without root, ownership is not kept.
        self.chown = os.geteuid() == 0
        self._usages: dict[str, Usage] = {}   # committed snapshots never change

    # -- committed snapshots ------------------------------------------------------------------

    def path(self, chain: str) -> str:
        """The directory holding the layer's files."""
        return os.path.join(self.dir, _hex(chain), "fs")

    def exists(self, chain: str) -> bool:
        return os.path.isdir(self.path(chain))

    def diff_id(self, chain: str) -> str:
        try:
            with open(os.path.join(self.dir, _hex(chain), "diff_id")) as f:
                return f.read().strip()
        except FileNotFoundError:
            raise NotFound(f"snapshot {chain} does not exist") from None

    def unpack(self, chain: str, parent_chain: str | None, blob_path: str,
               media_type: str | None = None, *, expected_diff_id: str | None = None,
               known_digest: str | None = None) -> str:
        """Unpack the layer blob at `blob_path` as the snapshot `chain` on top of `parent_chain`
        and return its diff id (the sha256 of the uncompressed tar).

        The chain id is checked against the content (`chain_id(parent_chain, diff_id)`), so a
        layer that is not the one the image config names is refused with InvalidArgument, as is
        any hostile entry (see unpack.py); nothing is left behind then. Idempotent: a snapshot
        that exists is not unpacked again. `known_digest`: the blob's digest as the content
        store verified it (an uncompressed layer is then not hashed again).
        """
        if parent_chain is not None and not self.exists(parent_chain):
            raise NotFound(f"parent snapshot {parent_chain} of {chain} does not exist")
        if self.exists(chain):
            return self.diff_id(chain)
        with open(blob_path, "rb") as blob:
            return self.unpack_fileobj(chain, parent_chain, blob, media_type,
                                       expected_diff_id=expected_diff_id,
                                       known_digest=known_digest,
                                       name=os.path.basename(blob_path))

    def unpack_fileobj(self, chain: str, parent_chain: str | None, fileobj,
                       media_type: str | None = None, *, expected_diff_id: str | None = None,
                       known_digest=None, name: str = "layer",
                       before_commit=None) -> str:
        """As `unpack`, from a stream (a layer while it downloads). The parent snapshot need
        not exist yet: the layers of one image unpack side by side, and the caller makes the
        image visible only once all are there. `before_commit()` runs after the layer is
        unpacked and checked, before it becomes visible (the download's own verification);
        what it raises leaves nothing behind."""
        target = os.path.join(self.dir, _hex(chain))
        if os.path.isdir(target):
            return self.diff_id(chain)
        tmp = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.dir)
        try:
            fs = os.path.join(tmp, "fs")
            os.mkdir(fs, 0o755)
            result = apply_layer(fileobj, fs, media_type=media_type, chown=self.chown,
                                 known_digest=known_digest)
            if expected_diff_id is not None and result.diff_id != expected_diff_id:
                raise InvalidArgument(f"layer {name} does not match the image config: its "
                                      f"diff id is {result.diff_id}, the config says "
                                      f"{expected_diff_id}")
            if chain_id(parent_chain, result.diff_id) != chain:
                raise InvalidArgument(f"layer {name} (diff id {result.diff_id}) on "
                                      f"{parent_chain or 'no parent'} does not produce chain "
                                      f"id {chain}")
            if before_commit is not None:
                before_commit()
            meta = {"diff_id": result.diff_id, "parent": parent_chain or "",
                    "info.json": json.dumps({"size": result.content_size,
                                             "tar_size": result.tar_size})}
            for meta_name, text in meta.items():
                _write_synced(os.path.join(tmp, meta_name), text)
            failpoint.hit("snapshot.unpack.before_rename")
            try:
                os.rename(tmp, target)
            except OSError:
                if not os.path.isdir(target):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another unpack of it won the race
            tmp = None
            _fsync_dir(self.dir)
            return result.diff_id
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def adopt(self, parent_chain: str | None, diff_id: str, source: str, *,
              size: int = 0, tar_size: int = 0) -> tuple[str, bool]:
        """Make the directory `source` the committed snapshot of the layer `diff_id` on
        `parent_chain`, by renaming it (nothing is copied): for a layer whose files were
        written in overlay form by the caller (a build step's directory, a container's upper
        dir), and whose tar the caller wrote from that same directory (so `diff_id` is its
        digest). `source` must be on this root's file system; it is gone afterwards (moved,
        or removed when the snapshot already existed). Returns (chain id, whether new)."""
        if parent_chain is not None and not self.exists(parent_chain):
            raise NotFound(f"parent snapshot {parent_chain} does not exist")
        chain = chain_id(parent_chain, diff_id)
        target = os.path.join(self.dir, _hex(chain))
        if os.path.isdir(target):
            shutil.rmtree(source, ignore_errors=True)
            return chain, False
        tmp = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.dir)
        try:
            fs = os.path.join(tmp, "fs")
            os.rename(source, fs)
            os.chmod(fs, 0o755)
            meta = {"diff_id": diff_id, "parent": parent_chain or "",
                    "info.json": json.dumps({"size": size, "tar_size": tar_size})}
            for meta_name, text in meta.items():
                _write_synced(os.path.join(tmp, meta_name), text)
            try:
                os.rename(tmp, target)
            except OSError:
                if not os.path.isdir(target):
                    raise
                return chain, False
            tmp = None
            _fsync_dir(self.dir)
            return chain, True
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def delete(self, chain: str) -> bool:
        """Remove a committed snapshot (atomically: renamed away, then removed)."""
        self._usages.pop(chain, None)
        target = os.path.join(self.dir, _hex(chain))
        if not os.path.isdir(target):
            return False
        doomed = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.dir)
        os.rename(target, os.path.join(doomed, "x"))
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def list(self) -> list[str]:
        """Chain ids of the committed snapshots."""
        return sorted(f"sha256:{n}" for n in os.listdir(self.dir) if _HEX64.match(n))

    def size(self, chain: str) -> int:
        """Bytes of regular-file content of a committed snapshot (hard links once), as
        recorded when it was made (info.json); walked like `usage` when not recorded."""
        try:
            with open(os.path.join(self.dir, _hex(chain), "info.json")) as f:
                size = json.load(f).get("size")
            if isinstance(size, int) and size >= 0:
                return size
        except (OSError, ValueError, AttributeError):
            pass
        return self.usage(chain).size

    def usage(self, chain: str) -> Usage:
        """Disk usage of one committed snapshot."""
        if not self.exists(chain):
            self._usages.pop(chain, None)
            raise NotFound(f"snapshot {chain} does not exist")
        known = self._usages.get(chain)
        if known is None:
            known = self._usages[chain] = _usage(self.path(chain))
        return known

    # -- active snapshots ---------------------------------------------------------------------

    def _active(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidArgument(f"invalid snapshot key: {key!r}")
        return os.path.join(self.active_dir, key)

    def prepare(self, key: str, chain_ids: list[str], *, readonly: bool = False) -> list[Mount]:
        """Make the active snapshot `key` on the layers `chain_ids` (BOTTOM-FIRST: the order of
        the image config's diff ids) and return the mounts of its rootfs (target "/").

        Always one overlay mount: with `readonly`, no upper/work dirs (an empty lower is added
        when there is only one layer, since overlay wants two lowers without an upper).
        Raises Conflict if `key` exists, NotFound if a layer is not unpacked.
        """
        path = self._active(key)
        for chain in chain_ids:
            if not self.exists(chain):
                raise NotFound(f"snapshot {chain} does not exist")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise Conflict(f"snapshot {key} already exists") from None
        try:
            lowers = [self.path(c) for c in reversed(chain_ids)]  # overlay: top-most first
            if len(lowers) < (2 if readonly else 1):
                lowers.append(self._empty_dir())
            options = ["lowerdir=" + ":".join(lowers)]
            if not readonly:
                upper, work = os.path.join(path, "upper"), os.path.join(path, "work")
                os.mkdir(upper, 0o755)
                os.mkdir(work, 0o700)
                options += [f"upperdir={upper}", f"workdir={work}"]
            else:
                options.append("ro")
            _write_synced(os.path.join(path, "parents.json"), json.dumps(list(chain_ids)))
            return [Mount(type="overlay", source="overlay", target="/", options=options)]
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of an existing active snapshot (as `prepare` returned them)."""
        path = self._active(key)
        try:
            with open(os.path.join(path, "parents.json")) as f:
                chain_ids = json.load(f)
        except FileNotFoundError:
            raise NotFound(f"snapshot {key} does not exist") from None
        upper = os.path.join(path, "upper")
        lowers = [self.path(c) for c in reversed(chain_ids)]
        if not os.path.isdir(upper):
            if len(lowers) < 2:
                lowers.append(self._empty_dir())
            return [Mount("overlay", "overlay", "/", ["lowerdir=" + ":".join(lowers), "ro"])]
        if not lowers:
            lowers.append(self._empty_dir())
        return [Mount("overlay", "overlay", "/", ["lowerdir=" + ":".join(lowers),
                                                  f"upperdir={upper}",
                                                  f"workdir={os.path.join(path, 'work')}"])]

    def upper(self, key: str) -> str:
        """The writable dir of an active snapshot (the container's changes, overlay-style)."""
        return os.path.join(self._active(key), "upper")

    def remove(self, key: str) -> bool:
        """Remove an active snapshot (which must not be mounted). False if it did not exist."""
        path = self._active(key)
        if not os.path.isdir(path):
            return False
        doomed = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.dir)
        os.rename(path, os.path.join(doomed, "x"))
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def active(self) -> list[str]:
        return sorted(os.listdir(self.active_dir))

    def active_usage(self, key: str) -> Usage:
        """Disk usage of an active snapshot's upper dir (docker's SizeRw)."""
        upper = self.upper(key)
        if not os.path.isdir(upper):
            return Usage(0, 0)
        return _usage(upper)

    # -- housekeeping -------------------------------------------------------------------------

    def _empty_dir(self) -> str:
        path = os.path.join(self.dir, "empty")
        os.makedirs(path, mode=0o755, exist_ok=True)
        return path

    def cleanup_temp(self) -> int:
        """Remove what interrupted unpacks and removals left; call when none is running."""
        removed = 0
        for name in os.listdir(self.dir):
            if name.startswith(TEMP_PREFIX):
                shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)
                removed += 1
        return removed


def _usage(top: str) -> Usage:
    seen: set[tuple[int, int]] = set()
    size = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            if stat.S_ISREG(st.st_mode):
                size += st.st_size
    return Usage(size, len(seen))


def _write_synced(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
