"""Volumes with docker's `local` driver: `<root>/volumes/<name>/_data`, a row each in the
`volumes` table (skiff.store.volumes), and docker's rules for names, options, use and removal.

A plain local volume is a directory; containers bind-mount it (the runtime does, inside the
container's mount namespace). The driver's options change that as docker's do:

- `type=none,o=bind,device=/path`: the volume *is* /path; containers bind-mount /path itself
  (docker mounts it over _data on the host first; we need no host mount for a bind).
- `type=tmpfs,device=tmpfs[,o=size=...]` or a device with a filesystem type: mounted over
  _data on the host when the first container using it starts, unmounted when the last one
  stops and on removal, as docker does, so that every container sees the same filesystem.
  These are the only host-side mounts skiff makes; `restore` (at daemon start) unmounts the
  ones no running container needs any more.

Who uses a volume is read from the containers' documents (`MountPoints`), through the
`users(name)` function the engine gives us: a volume named by any container, running or not,
cannot be removed (docker's "volume is in use").
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
import threading

from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError
from skiff.store import failpoint
from skiff.store.volumes import VolumeRecord, VolumeRecords, no_such_volume
from skiff.timefmt import rfc3339_nano

log = logging.getLogger("skiffd")

NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
NAME_RE = re.compile(f"^{NAME_CHARS}+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
LOCAL_OPTIONS = ("type", "o", "device", "size")
REQUIRED_OPTIONS = {"device": ("type",), "type": ("device",), "o": ("device", "type")}
LIST_FILTERS = {"dangling", "name", "label", "label!", "driver"}
PRUNE_FILTERS = {"label", "label!", "all"}


def validate_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a local '
                              f'volume name, only "{NAME_CHARS}" are allowed. If you intended '
                              f"to pass a host directory, use absolute path")


def validate_options(name: str, options: dict) -> None:
    """The local driver's options, with its words."""
    for key in options:
        if key not in LOCAL_OPTIONS:
            raise InvalidArgument(f'create {name}: invalid option: "{key}"')
    if options.get("size"):
        raise InvalidArgument(f"create {name}: quota size requested but no quota support")
    for key, needs in REQUIRED_OPTIONS.items():
        if key in options:
            for other in needs:
                if other not in options:
                    raise InvalidArgument(f'create {name}: missing required option: "{other}"')


def is_bind(options: dict) -> bool:
    return "bind" in (options.get("o") or "").split(",")


def needs_host_mount(options: dict) -> bool:
    return bool(options.get("type") or options.get("device")) and not is_bind(options)


def _truthy(value: str) -> bool:
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid filter 'dangling={value}'")


def label_match(labels: dict, wanted: str) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


def dir_size(path: str) -> int:
    """Bytes of the files below `path` (hard links once), as docker's directory.Size."""
    total, seen = 0, set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            if not os.path.isdir(os.path.join(dirpath, name)) or os.path.islink(
                    os.path.join(dirpath, name)):
                total += st.st_size
    return total


def is_mountpoint(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == path for line in f)
    except OSError:
        return False


class VolumeService:
    def __init__(self, root: str, db, events, users=None):
        self.dir = os.path.join(root, "volumes")
        os.makedirs(self.dir, mode=0o701, exist_ok=True)
        self.records = VolumeRecords(db)
        self.events = events
        # users(name) -> ids of the containers (any state) whose mount points name it
        self.users = users or (lambda name: [])
        self._lock = threading.Lock()
        self._mounted_by: dict[str, set[str]] = {}   # host-mounted volume -> container ids
        # owner() -> (uid, gid) of new volumes' _data: the remapped root under userns-remap
        # (as docker's local driver), None for root
        self.owner = lambda: None

    # ------------------------------------------------------------------ paths
    def mountpoint(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    def source(self, record: VolumeRecord) -> str:
        """What a container bind-mounts for this volume."""
        if is_bind(record.options):
            return record.options["device"]
        return self.mountpoint(record.name)

    # ------------------------------------------------------------------ create / get
    def create(self, name: str | None = None, driver: str | None = None,
               options: dict | None = None, labels: dict | None = None,
               anonymous: bool = False) -> VolumeRecord:
        """`anonymous`: made for a container's mount point (docker's anonymous label, which
        prune and `rm -v` go by); a volume created without a name is not anonymous."""
        driver = driver or "local"
        if not name:
            name = secrets.token_hex(32)
        validate_name(name)
        if driver != "local":
            raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin '
                           f'"{driver}" not found')
        options = {str(k): str(v) for k, v in (options or {}).items()}
        labels = {str(k): str(v) for k, v in (labels or {}).items()}
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        validate_options(name, options)
        if is_bind(options) and not os.path.isdir(options["device"]):
            raise InvalidArgument(f"create {name}: failed to mount local volume: mount "
                                  f"{options['device']}:{self.mountpoint(name)}, flags: "
                                  "0x1000: no such file or directory")
        # The directory first: a crash before the row leaves an empty directory, which
        # `restore` removes; the row makes the volume exist.
        os.makedirs(os.path.join(self.dir, name), mode=0o701, exist_ok=True)
        os.makedirs(self.mountpoint(name), mode=0o755, exist_ok=True)
        ids = self.owner()
        if ids and not is_bind(options):
            os.chown(self.mountpoint(name), *ids)
        record = VolumeRecord(name, driver, rfc3339_nano().split(".")[0] + "Z", labels, options)
        stored, created = self.records.insert(record)
        if created:
            self.events.emit("volume", "create", name, {"driver": driver})
        return stored

    def get(self, name: str) -> VolumeRecord:
        if not name:
            raise no_such_volume(name)
        return self.records.get(name)

    def inspect(self, name: str) -> dict:
        return self.document(self.get(name))

    def document(self, record: VolumeRecord) -> dict:
        return {"CreatedAt": record.created, "Driver": record.driver,
                "Labels": record.labels or None, "Mountpoint": self.mountpoint(record.name),
                "Name": record.name, "Options": record.options or None, "Scope": "local"}

    # ------------------------------------------------------------------ list
    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict]:
        filters = filters or {}
        for key in filters:
            if key not in LIST_FILTERS:
                raise InvalidArgument(f"Invalid filter '{key}'")
        out = []
        for record in self.records.list():
            if self._matches(record, filters):
                out.append(self.document(record))
        return out

    def _matches(self, record: VolumeRecord, filters: dict[str, list[str]]) -> bool:
        for value in filters.get("dangling", []):
            if _truthy(value) == bool(self.users(record.name)):
                return False
        names = filters.get("name", [])
        if names and not any(re.search(v, record.name) if _is_regex(v) else v in record.name
                             for v in names):
            return False
        drivers = filters.get("driver", [])
        if drivers and not any(re.search(v, record.driver) for v in drivers):
            return False
        for value in filters.get("label", []):
            if not label_match(record.labels, value):
                return False
        for value in filters.get("label!", []):
            if label_match(record.labels, value):
                return False
        return True

    # ------------------------------------------------------------------ remove / prune
    def remove(self, name: str, force: bool = False) -> None:
        """docker's rule: a volume any container names is refused, forced or not; `force`
        only makes a missing volume no error."""
        try:
            record = self.get(name)
        except NotFound:
            if force:
                return
            raise
        users = self.users(record.name)
        if users:
            raise Conflict(f"remove {record.name}: volume is in use - [{', '.join(users)}]")
        self._destroy(record)

    def _destroy(self, record: VolumeRecord) -> None:
        self.records.mark_removing(record.name)   # from here on, the removal will finish
        self._finish_removal(record)
        self.events.emit("volume", "destroy", record.name, {"driver": record.driver})

    def _finish_removal(self, record: VolumeRecord) -> None:
        path = self.mountpoint(record.name)
        failpoint.hit("volume-remove-marked")   # a crash here: `restore` finishes the job
        if is_mountpoint(path):
            self._umount(path)
        # a bind volume's device belongs to the user: only our directory goes
        shutil.rmtree(os.path.join(self.dir, record.name), ignore_errors=True)
        self.records.delete(record.name)
        with self._lock:
            self._mounted_by.pop(record.name, None)

    def prune(self, filters: dict[str, list[str]] | None = None,
              all_volumes: bool = False) -> dict:
        """Unused volumes: only anonymous ones unless `all_volumes` (API >= 1.42's rule;
        the API layer decides it from the version and the `all` filter)."""
        filters = dict(filters or {})
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise InvalidArgument(f"Invalid filter '{key}'")
        filters.pop("all", None)
        deleted, reclaimed = [], 0
        for record in self.records.list():
            if not all_volumes and ANONYMOUS_LABEL not in record.labels:
                continue
            if not self._matches(record, filters) or self.users(record.name):
                continue
            size = 0 if needs_host_mount(record.options) or is_bind(record.options) \
                else dir_size(self.mountpoint(record.name))
            try:
                self._destroy(record)
            except SkiffError:
                continue
            deleted.append(record.name)
            reclaimed += size
        self.events.emit("volume", "prune", "", {"reclaimed": reclaimed})
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ------------------------------------------------------------------ disk usage
    def disk_usage(self) -> list[dict]:
        """`Volumes` of `GET /system/df`: each with UsageData {Size, RefCount}."""
        out = []
        for record in self.records.list():
            document = self.document(record)
            if is_bind(record.options) or needs_host_mount(record.options):
                size = -1   # docker does not measure what it does not own
            else:
                size = dir_size(self.mountpoint(record.name))
            document["UsageData"] = {"Size": size, "RefCount": len(self.users(record.name))}
            out.append(document)
        return out

    # ------------------------------------------------------------------ use by containers
    def mount(self, name: str, cid: str) -> None:
        """A container using the volume starts: mount it on the host if its options need
        it and nobody has yet."""
        record = self.get(name)
        if not needs_host_mount(record.options):
            return
        with self._lock:
            users = self._mounted_by.setdefault(name, set())
            if not users and not is_mountpoint(self.mountpoint(name)):
                self._host_mount(record)
            users.add(cid)

    def unmount(self, name: str, cid: str) -> None:
        """A container using the volume stopped: the last one out unmounts it."""
        with self._lock:
            users = self._mounted_by.get(name)
            if users is None:
                return
            users.discard(cid)
            if users:
                return
            del self._mounted_by[name]
        path = self.mountpoint(name)
        if is_mountpoint(path):
            self._umount(path)

    def _host_mount(self, record: VolumeRecord) -> None:
        options = record.options
        command = ["mount", "-t", options.get("type") or "auto"]
        if options.get("o"):
            command += ["-o", options["o"]]
        command += [options.get("device") or "none", self.mountpoint(record.name)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SkiffError(f"error while mounting volume '{self.mountpoint(record.name)}': "
                             f"failed to mount local volume: {result.stderr.strip()}")

    @staticmethod
    def _umount(path: str) -> None:
        from skiff.linux import mount as _m

        try:
            _m.umount2(path, 0)
        except OSError:
            _m.umount2(path, 2)  # MNT_DETACH: busy (a process of ours has a file open)

    def restore(self, running: dict[str, set[str]]) -> None:
        """At daemon start: finish removals a crash interrupted, drop directories that never
        got their row, and keep host mounts only for volumes running containers use
        (`running`: volume name -> ids of the running containers that mount it)."""
        for record in self.records.removing():
            self._finish_removal(record)
        known = {r.name: r for r in self.records.list()}
        for name in os.listdir(self.dir):
            if name in known:
                continue
            data = self.mountpoint(name)
            if is_mountpoint(data):
                self._umount(data)
            try:
                empty = not os.listdir(data)
            except OSError:
                empty = True
            if empty:
                shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)
            else:
                log.warning("volumes: %s has data but no record; left in place", name)
        for name, record in known.items():
            if not needs_host_mount(record.options):
                continue
            users = running.get(name) or set()
            if users:
                with self._lock:
                    self._mounted_by[name] = set(users)
                if not is_mountpoint(self.mountpoint(name)):
                    log.warning("volumes: %s is used by a running container but not mounted",
                                name)
            elif is_mountpoint(self.mountpoint(name)):
                self._umount(self.mountpoint(name))


def _is_regex(value: str) -> bool:
    return any(c in value for c in "^$*+?[](){}|\\")
