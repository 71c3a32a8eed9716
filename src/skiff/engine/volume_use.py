"""Containers and their volumes: the engine's hooks at create, start, exit and removal.

- create: plan the mount points (skiff.engine.mounts), create the named volumes they name
  and the anonymous ones they need, make missing `-v` host directories, and give the
  config.json entries;
- start: mount host-mounted volumes (tmpfs/device options), copy the image's content into
  empty volumes (copy-up), and emit docker's `mount` events;
- exit: docker's `unmount` events, and the last user of a host-mounted volume unmounts it;
- removal: `rm -v` (and `--rm`) removes the container's anonymous volumes no one else uses.
"""

from __future__ import annotations

import logging
import os

from skiff.engine import mounts as _mounts
from skiff.engine.volumes import ANONYMOUS_LABEL
from skiff.errors import InvalidArgument, NotFound, RuntimeFailure, SkiffError

log = logging.getLogger("skiffd")


class VolumeUse:
    def __init__(self, volumes, events, containers):
        self.volumes = volumes
        self.events = events
        self.containers = containers   # the container records (`list()`)
        self._active: dict[str, list[dict]] = {}   # container id -> volume points mounted

    def users(self, name: str) -> list[str]:
        """Ids of the containers, in any state, whose mount points name volume `name`."""
        return [r.id for r in self.containers.list()
                if name in _mounts.volume_names(r.config.get("MountPoints") or [])]

    # ------------------------------------------------------------------ create
    def prepare(self, host_config: dict, config_volumes, image_volumes, lookup,
                created: list[str]) -> list[dict]:
        """The container's mount points, volumes resolved; names of volumes made for it
        are appended to `created` (removed again by `discard` if the create fails)."""
        points = _mounts.plan(host_config, config_volumes, image_volumes, lookup)
        for point in points:
            if point["Type"] == "volume":
                spec = point.get("Spec") or {}
                volume_opts = spec.get("VolumeOptions") or {}
                driver = (volume_opts.get("DriverConfig") or {})
                if point["Name"]:
                    try:
                        record = self.volumes.get(point["Name"])
                    except NotFound:
                        if point.get("From"):
                            raise
                        record = self.volumes.create(point["Name"], driver.get("Name"),
                                                     driver.get("Options"),
                                                     volume_opts.get("Labels"))
                        created.append(record.name)
                else:
                    record = self.volumes.create(None, driver.get("Name"),
                                                 driver.get("Options"),
                                                 volume_opts.get("Labels"), anonymous=True)
                    created.append(record.name)
                point["Name"] = record.name
                point["Driver"] = record.driver
                point["Source"] = self.volumes.source(record)
                if point.get("Subpath"):
                    # resolved inside the volume: a symlink in it cannot lead out of it
                    from skiff.engine.copyup import resolve_in_root

                    found = resolve_in_root(point["Source"], point["Subpath"])
                    if found is None:
                        wanted = os.path.join(point["Source"], point["Subpath"])
                        raise InvalidArgument(f"cannot access path {wanted}: no such file or "
                                              "directory")
                    point["Subpath"] = os.path.relpath(found, point["Source"])
            elif point["Type"] == "bind" and point.pop("CreateSource", False):
                if not os.path.lexists(point["Source"]):
                    os.makedirs(point["Source"], mode=0o755, exist_ok=True)
            point.pop("Spec", None)
        return points

    def discard(self, created: list[str]) -> None:
        for name in created:
            try:
                self.volumes.remove(name, force=True)
            except SkiffError:
                pass

    # ------------------------------------------------------------------ start / exit
    def started(self, cid: str, points: list[dict], bundle_dir: str) -> None:
        """Before the runtime starts the container: host mounts, copy-up, events. On a
        failure, what this call mounted is undone (RuntimeFailure, as a failed start)."""
        from skiff.engine.copyup import copy_up

        done: list[dict] = []
        rootfs_mounts = None
        mountinfo = None
        try:
            for point in points:
                if point["Type"] == "bind" and point.get("Propagation") not in (
                        "", "private", "rprivate"):
                    if mountinfo is None:
                        with open("/proc/self/mountinfo") as f:
                            mountinfo = f.read()
                    problem = _mounts.propagation_problem(
                        os.path.realpath(point["Source"]), point["Propagation"], mountinfo)
                    if problem:
                        raise RuntimeFailure(problem)
                if point["Type"] != "volume":
                    continue
                self.volumes.mount(point["Name"], cid)
                done.append(point)
                data = point["Source"]
                if point.get("Subpath"):   # still inside the volume (it may have changed)
                    real = os.path.realpath(os.path.join(data, point["Subpath"]))
                    top = os.path.realpath(data)
                    if real != top and not real.startswith(top + os.sep):
                        raise SkiffError(f"volume subpath {point['Subpath']} leads out of "
                                         f"volume {point['Name']}")
                if point.get("CopyData", True) and not point.get("Subpath") and _empty(data):
                    if rootfs_mounts is None:
                        rootfs_mounts, linux = _bundle_facts(bundle_dir)
                    copy_up(rootfs_mounts, point["Destination"], data,
                            linux.get("uidMappings"), linux.get("gidMappings"))
        except BaseException as exc:
            for point in done:
                self.volumes.unmount(point["Name"], cid)
            if isinstance(exc, (OSError, RuntimeError, SkiffError)) and \
                    not isinstance(exc, RuntimeFailure):
                message = exc.message if isinstance(exc, SkiffError) else str(exc)
                if not message.startswith("error while mounting volume"):
                    message = f"error while mounting volume: {message}"
                raise RuntimeFailure(message) from None
            raise
        for point in done:
            self.events.emit("volume", "mount", point["Name"], {
                "driver": point.get("Driver") or "local", "container": cid,
                "destination": point["Destination"],
                "read/write": "true" if point.get("RW", True) else "false",
                "propagation": point.get("Propagation", "")})
        if done:
            self._active[cid] = done

    def stopped(self, cid: str) -> None:
        for point in self._active.pop(cid, []):
            try:
                self.volumes.unmount(point["Name"], cid)
            except (OSError, SkiffError) as exc:
                log.warning("unmounting volume %s: %s", point["Name"], exc)
            self.events.emit("volume", "unmount", point["Name"],
                             {"driver": point.get("Driver") or "local", "container": cid})

    def restore(self, running_records) -> None:
        """At daemon start, for containers that kept running while skiffd was away."""
        running: dict[str, set[str]] = {}
        for record in running_records:
            points = [p for p in record.config.get("MountPoints") or []
                      if p["Type"] == "volume"]
            if points:
                self._active[record.id] = points
            for point in points:
                running.setdefault(point["Name"], set()).add(record.id)
        self.volumes.restore(running)

    # ------------------------------------------------------------------ removal
    def removed(self, record, remove_volumes: bool) -> None:
        if not remove_volumes:
            return
        for point in record.config.get("MountPoints") or []:
            if point["Type"] != "volume" or point.get("From") or not point.get("Name"):
                continue
            try:
                volume = self.volumes.get(point["Name"])
            except NotFound:
                continue
            if ANONYMOUS_LABEL not in volume.labels:
                continue   # docker keeps named volumes
            try:
                self.volumes.remove(volume.name)
            except SkiffError as exc:   # still used by another container: kept
                log.info("keeping volume %s: %s", volume.name, exc.message)


def _bundle_facts(bundle_dir: str) -> tuple[list[dict], dict]:
    """The rootfs mounts the runtime makes and config.json's `linux` (user namespace maps)."""
    import json

    from skiff.engine.bundle import ROOTFS_MOUNTS_ANNOTATION

    with open(os.path.join(bundle_dir, "config.json")) as f:
        spec = json.load(f)
    mounts = json.loads((spec.get("annotations") or {}).get(ROOTFS_MOUNTS_ANNOTATION) or "[]")
    return mounts, spec.get("linux") or {}


def _empty(path: str) -> bool:
    try:
        return not os.listdir(path)
    except OSError:
        return False
