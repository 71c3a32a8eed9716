"""What a container mounts, as docker decides it: Binds (`-v`), HostConfig.Mounts (`--mount`),
VolumesFrom, the image's VOLUMEs and Config.Volumes (anonymous volumes) -> mount points, and
mount points -> the `mounts` entries of config.json.

Pure: values in, values out. The only look at the host is whether a `--mount type=bind`
source exists (docker refuses a missing one; `-v` creates it). A mount point is a dict, kept
in the container's document as `MountPoints` and shown by inspect as `Mounts`:

    {"Type": "volume", "Name": "data", "Source": "", "Destination": "/data",
     "Driver": "local", "Mode": "z", "RW": True, "Propagation": "", "CopyData": True}

Volume mount points get their Name (anonymous ones: a new random name) and Source (the
volume's directory) from the engine's VolumeService; `oci_mounts` then turns the list into
config.json entries, which the runtime performs inside the container's mount namespace.
"""

from __future__ import annotations

import os
import posixpath

from skiff.errors import InvalidArgument

RW_MODES = ("ro", "rw")
LABEL_MODES = ("z", "Z")
PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
COPY_MODES = ("nocopy",)
CONSISTENCY = ("consistent", "cached", "delegated")
DEFAULT_PROPAGATION = "rprivate"
TMPFS_DEFAULTS = ["nosuid", "nodev", "noexec"]
MOUNT_TYPES = ("bind", "volume", "tmpfs")


def invalid_spec(raw: str) -> str:
    return f"invalid volume specification: '{raw}'"


def _mount_config(kind: str, why: str) -> InvalidArgument:
    return InvalidArgument(f'invalid mount config for type "{kind}": {why}')


def valid_mode(mode: str) -> bool:
    """docker's rule: comma-separated, at most one of each kind."""
    if not mode:
        return True
    counts = {}
    for option in mode.split(","):
        for kind, options in (("rw", RW_MODES), ("label", LABEL_MODES),
                              ("propagation", PROPAGATIONS), ("copy", COPY_MODES),
                              ("consistency", CONSISTENCY)):
            if option in options:
                counts[kind] = counts.get(kind, 0) + 1
                break
        else:
            return False
    return all(n == 1 for n in counts.values())


def _propagation(mode: str) -> str:
    for option in mode.split(","):
        if option in PROPAGATIONS:
            return option
    return ""


def _check_target(kind: str, target: str) -> str:
    if not target:
        raise _mount_config(kind, "field Target must not be empty")
    if posixpath.normpath(target) == "/" or target == "/":
        raise _mount_config(kind, "invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise _mount_config(kind, f"invalid mount path: '{target}' mount path must be absolute")
    return posixpath.normpath(target)


def parse_bind(raw: str) -> dict:
    """One `HostConfig.Binds` entry: `SRC:DST[:MODE]` (SRC a host path or a volume name)."""
    parts = raw.split(":", 3)
    if not parts[0]:
        raise InvalidArgument(invalid_spec(raw))
    mode = ""
    if len(parts) == 1:
        # only a destination: docker takes it as an anonymous volume
        source, target = "", parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            raise InvalidArgument(invalid_spec(raw))
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise InvalidArgument(invalid_spec(raw))
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    kind = "bind" if source.startswith("/") else "volume"
    options = mode.split(",") if mode else []
    try:
        destination = _check_target(kind, target)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{invalid_spec(raw)}: {exc.message}") from None
    point = {"Type": kind, "Name": "", "Source": "", "Destination": destination,
             "Driver": "", "Mode": mode, "RW": "ro" not in options, "Propagation": ""}
    if kind == "bind":
        point["Source"] = posixpath.normpath(source)
        point["Propagation"] = _propagation(mode) or DEFAULT_PROPAGATION
        point["CreateSource"] = True  # `-v` makes a missing host directory, as docker does
    else:
        point["Name"] = source
        point["Driver"] = "local"
        point["Mode"] = mode or "z"   # docker's default label mode for local volumes
        point["CopyData"] = "nocopy" not in options
    return point


def parse_mount(spec: dict) -> dict:
    """One `HostConfig.Mounts` entry (what `--mount` sends), checked as docker checks it."""
    if not isinstance(spec, dict):
        raise InvalidArgument("invalid mount config: not an object")
    for key, kinds, go_type in (("Type", str, "string"), ("Source", str, "string"),
                                ("Target", str, "string"), ("ReadOnly", bool, "bool"),
                                ("Consistency", str, "string"),
                                ("BindOptions", dict, "object"),
                                ("VolumeOptions", dict, "object"),
                                ("TmpfsOptions", dict, "object")):
        value = spec.get(key)
        if value is not None and not isinstance(value, kinds):
            kind = {bool: "bool", int: "number", float: "number", str: "string",
                    list: "array", dict: "object"}.get(type(value), "value")
            raise InvalidArgument(f"json: cannot unmarshal {kind} into Go "
                                  f"struct field Mount.HostConfig.Mounts.{key} of type "
                                  f"{go_type}")
    kind = spec.get("Type") or ""
    source = spec.get("Source") or ""
    target = spec.get("Target") or ""
    readonly = bool(spec.get("ReadOnly"))
    bind_opts = spec.get("BindOptions")
    volume_opts = spec.get("VolumeOptions")
    tmpfs_opts = spec.get("TmpfsOptions")
    if kind not in MOUNT_TYPES:
        if kind in ("npipe", "cluster", "image"):
            raise _mount_config(kind, "mount type unknown")
        raise _mount_config(kind, "mount type unknown")
    destination = _check_target(kind, target)
    point = {"Type": kind, "Name": "", "Source": "", "Destination": destination,
             "Driver": "", "Mode": "", "RW": not readonly, "Propagation": "", "Spec": spec}
    if kind == "bind":
        if not source:
            raise _mount_config(kind, "field Source must not be empty")
        if volume_opts:
            raise _mount_config(kind, "field VolumeOptions must not be specified")
        if tmpfs_opts:
            raise _mount_config(kind, "field TmpfsOptions must not be specified")
        propagation = (bind_opts or {}).get("Propagation") or ""
        if propagation and propagation not in PROPAGATIONS:
            raise _mount_config(kind, f"invalid propagation mode: {propagation}")
        if not source.startswith("/"):
            raise _mount_config(kind, f"invalid mount path: '{source}' mount path must be "
                                      "absolute")
        create = bool((bind_opts or {}).get("CreateMountpoint"))
        if not create and not os.path.lexists(source):
            raise _mount_config(kind, f"bind source path does not exist: {source}")
        point["Source"] = posixpath.normpath(source)
        point["Propagation"] = propagation or DEFAULT_PROPAGATION
        point["CreateSource"] = create
        point["NonRecursive"] = bool((bind_opts or {}).get("NonRecursive"))
    elif kind == "volume":
        if bind_opts:
            raise _mount_config(kind, "field BindOptions must not be specified")
        if tmpfs_opts:
            raise _mount_config(kind, "field TmpfsOptions must not be specified")
        if readonly and not source:
            raise _mount_config(kind, "must not set ReadOnly mode when using anonymous "
                                      "volumes")
        volume_opts = volume_opts or {}
        if volume_opts.get("Subpath"):
            if not source:
                raise _mount_config(kind, "must not set Subpath when using anonymous volumes")
            sub = volume_opts["Subpath"]
            if sub.startswith("/") or posixpath.normpath(sub).split("/")[0] == "..":
                raise _mount_config(kind, "subpath must be a relative path within the volume")
        driver = (volume_opts.get("DriverConfig") or {}).get("Name") or "local"
        point["Name"] = source
        point["Driver"] = driver
        point["Mode"] = "z"
        point["CopyData"] = not volume_opts.get("NoCopy")
        point["Subpath"] = volume_opts.get("Subpath") or ""
    else:  # tmpfs
        if bind_opts:
            raise _mount_config(kind, "field BindOptions must not be specified")
        if volume_opts:
            raise _mount_config(kind, "field VolumeOptions must not be specified")
        if source:
            raise _mount_config(kind, "field Source must not be specified")
        point["TmpfsOptions"] = tmpfs_options(tmpfs_opts or {}, readonly)
    return point


def tmpfs_options(opts: dict, readonly: bool) -> list[str]:
    """TmpfsOptions -> mount options: docker's defaults, then ro, mode=, size= (with the
    largest unit that divides the size)."""
    out = list(TMPFS_DEFAULTS)
    if readonly:
        out.append("ro")
    mode = opts.get("Mode") or 0
    if not isinstance(mode, int) or mode < 0:
        raise _mount_config("tmpfs", f"invalid tmpfs mode: {mode!r}")
    if mode:
        out.append(f"mode={mode:o}")
    size = opts.get("SizeBytes") or 0
    if not isinstance(size, int) or size < 0:
        raise _mount_config("tmpfs", f"invalid tmpfs size: {size!r}")
    if size:
        for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                out.append(f"size={size // divisor}{suffix}")
                break
        else:
            out.append(f"size={size}")
    for option in opts.get("Options") or []:
        if not option or option[0] not in ("exec", "noexec"):
            raise _mount_config("tmpfs", "invalid option: " + (option[0] if option else ""))
        if option[0] == "exec" and "noexec" in out:
            out.remove("noexec")
        out.append(option[0] if len(option) == 1 else f"{option[0]}={option[1]}")
    return out


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """`CONTAINER[:MODE]` -> (container, mode); mode "rw" unless "ro" is asked."""
    if not spec:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    name, _, mode = spec.partition(":")
    if not mode:
        return name, "rw"
    if not valid_mode(mode) or _propagation(mode) or "nocopy" in mode.split(","):
        raise InvalidArgument(f"invalid mode: {mode}")
    return name, mode


def plan(host_config: dict, config_volumes: dict | None, image_volumes: dict | None,
         lookup=None) -> list[dict]:
    """Every mount point of a new container, in docker's order of precedence: VolumesFrom,
    then Binds, then Mounts (a destination given twice by these two is an error), then an
    anonymous volume for each VOLUME of the image or Config.Volumes not already covered (by
    them or by HostConfig.Tmpfs). `lookup(name)` returns a container record."""
    points: dict[str, dict] = {}
    for spec in host_config.get("VolumesFrom") or []:
        name, mode = parse_volumes_from(spec)
        if lookup is None:
            raise InvalidArgument(f"No such container: {name}")
        source = lookup(name)
        for point in source.config.get("MountPoints") or []:
            copied = {k: v for k, v in point.items() if k not in ("Spec",)}
            copied["CopyData"] = False
            if mode != "rw" or not point.get("RW"):
                copied["RW"] = point.get("RW", True) and "ro" not in mode.split(",")
            copied["Mode"] = mode if mode != "rw" or point["Type"] != "volume" else \
                point.get("Mode", "")
            copied["From"] = source.id
            points[copied["Destination"]] = copied
    explicit: set[str] = set()
    for raw in host_config.get("Binds") or []:
        point = parse_bind(raw)
        if point["Destination"] in explicit:
            raise InvalidArgument(f"Duplicate mount point: {point['Destination']}")
        explicit.add(point["Destination"])
        points[point["Destination"]] = point
    for spec in host_config.get("Mounts") or []:
        point = parse_mount(spec)
        if point["Destination"] in explicit:
            raise InvalidArgument(f"Duplicate mount point: {point['Destination']}")
        explicit.add(point["Destination"])
        points[point["Destination"]] = point
    tmpfs = {posixpath.normpath(p) for p in (host_config.get("Tmpfs") or {})}
    for dest in tmpfs & explicit:
        raise InvalidArgument(f"Duplicate mount point: {dest}")
    for path in list(image_volumes or {}) + list(config_volumes or {}):
        if not path.startswith("/"):
            raise InvalidArgument(invalid_spec(path))
        dest = posixpath.normpath(path)
        if dest == "/":
            raise InvalidArgument(f"{invalid_spec(path)}: invalid mount config for type "
                                  "\"volume\": invalid specification: destination can't be '/'")
        if dest in points or dest in tmpfs:
            continue
        points[dest] = {"Type": "volume", "Name": "", "Source": "", "Destination": dest,
                        "Driver": "local", "Mode": "", "RW": True, "Propagation": "",
                        "CopyData": True}
    return sorted(points.values(), key=lambda p: depth(p["Destination"]))


def depth(path: str) -> int:
    return 0 if path == "/" else path.rstrip("/").count("/")


def oci_mounts(points: list[dict]) -> list[dict]:
    """config.json `mounts` entries for resolved mount points (volumes have their Source)."""
    out = []
    for point in points:
        dest = point["Destination"]
        if point["Type"] == "tmpfs":
            out.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                        "options": list(point.get("TmpfsOptions") or TMPFS_DEFAULTS)})
            continue
        source = point["Source"]
        if point.get("Subpath"):
            source = posixpath.join(source, point["Subpath"])
        options = ["bind" if point.get("NonRecursive") else "rbind"]
        if not point.get("RW", True):
            options.append("ro")
        options.append(point.get("Propagation") or DEFAULT_PROPAGATION)
        out.append({"destination": dest, "type": "bind", "source": source,
                    "options": options})
    return out


def inspect_mounts(points: list[dict]) -> list[dict]:
    """`Mounts` of `GET /containers/{id}/json` (and the `Mounts` of list rows)."""
    out = []
    for point in points:
        entry = {"Type": point["Type"]}
        if point["Type"] == "volume":
            entry["Name"] = point.get("Name", "")
        entry.update(Source=point.get("Source", "") if point["Type"] != "tmpfs" else "",
                     Destination=point["Destination"])
        if point["Type"] == "volume":
            entry["Driver"] = point.get("Driver") or "local"
        entry.update(Mode=point.get("Mode", ""), RW=bool(point.get("RW", True)),
                     Propagation=point.get("Propagation", ""))
        out.append(entry)
    return out


def rootfs_propagation(mounts: list[dict]) -> str | None:
    """docker's rule: the root is made rshared when a mount asks for shared propagation
    (so that its events reach the host), rslave when one asks for slave; None otherwise."""
    options = {o for m in mounts for o in m.get("options") or ()}
    if options & {"shared", "rshared"}:
        return "rshared"
    if options & {"slave", "rslave"}:
        return "rslave"
    return None


def propagation_problem(source: str, propagation: str, mountinfo: str) -> str | None:
    """docker's check at start: a shared bind needs a source on a shared mount, a slave one
    a source on a shared or slave mount; the error text, or None."""
    if propagation not in ("shared", "rshared", "slave", "rslave"):
        return None
    best, fields = "", []
    for line in mountinfo.splitlines():
        parts = line.split()
        if len(parts) < 7:
            continue
        point = parts[4].replace("\\040", " ")
        inside = source == point or source.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fields = point, parts[6:parts.index("-")] if "-" in parts else []
    shared = any(f.startswith("shared:") for f in fields)
    slave = any(f.startswith("master:") for f in fields)
    if propagation in ("shared", "rshared") and not shared:
        return f"path {source} is mounted on {best} but it is not a shared mount"
    if propagation in ("slave", "rslave") and not (shared or slave):
        return f"path {source} is mounted on {best} but it is not a shared or slave mount"
    return None


def volume_names(points: list[dict]) -> list[str]:
    return [p["Name"] for p in points if p["Type"] == "volume" and p.get("Name")]
