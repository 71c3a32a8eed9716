"""`--mount` and `--volumes-from` as the docker CLI turns them into HostConfig.Mounts and
HostConfig.VolumesFrom. Pure: text in, the API's values out, ValueError with docker's words.

    parse_mount("type=bind,src=/srv,dst=/data,readonly")
    -> {"Type": "bind", "Source": "/srv", "Target": "/data", "ReadOnly": True}
"""

from __future__ import annotations

import os

BOOL_TRUE = ("1", "t", "T", "true", "TRUE", "True")
BOOL_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def _bool(key: str, value: str, message: str | None = None) -> bool:
    if value in BOOL_TRUE:
        return True
    if value in BOOL_FALSE:
        return False
    raise ValueError(message or f"invalid value for {key}: {value}")


def _fields(text: str) -> list[str]:
    import csv

    try:
        rows = list(csv.reader([text]))
    except csv.Error as exc:
        raise ValueError(str(exc)) from None
    return rows[0] if rows else []


def parse_mount(text: str) -> dict:
    """One `--mount` value -> a HostConfig.Mounts entry."""
    from skiff.cli.config import parse_memory

    mount: dict = {"Type": "volume"}
    volume: dict | None = None
    bind: dict | None = None
    tmpfs: dict | None = None

    def volume_opts() -> dict:
        nonlocal volume
        if volume is None:
            volume = {"Labels": {}, "DriverConfig": {}}
        return volume

    def bind_opts() -> dict:
        nonlocal bind
        if bind is None:
            bind = {}
        return bind

    def tmpfs_opts() -> dict:
        nonlocal tmpfs
        if tmpfs is None:
            tmpfs = {}
        return tmpfs

    for field in _fields(text):
        key, sep, value = field.partition("=")
        if not sep:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
            elif key == "volume-nocopy":
                volume_opts()["NoCopy"] = True
            elif key == "bind-nonrecursive":
                bind_opts()["NonRecursive"] = True
            else:
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "type":
            mount["Type"] = value.lower()
        elif key in ("source", "src"):
            mount["Source"] = os.path.abspath(value) if value == "." or \
                value.startswith("./") else value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _bool(key, value)
        elif key == "consistency":
            mount["Consistency"] = value.lower()
        elif key == "bind-propagation":
            bind_opts()["Propagation"] = value.lower()
        elif key == "bind-nonrecursive":
            bind_opts()["NonRecursive"] = _bool(key, value)
        elif key == "bind-create-mountpoint":
            bind_opts()["CreateMountpoint"] = _bool(key, value)
        elif key == "volume-nocopy":
            volume_opts()["NoCopy"] = _bool(key, value,
                                            f"invalid value for volume-nocopy: {value}")
        elif key == "volume-label":
            k, _, v = value.partition("=")
            if k:
                volume_opts()["Labels"][k] = v
        elif key == "volume-driver":
            volume_opts()["DriverConfig"]["Name"] = value
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            if k:
                volume_opts()["DriverConfig"].setdefault("Options", {})[k] = v
        elif key == "volume-subpath":
            volume_opts()["Subpath"] = value
        elif key == "tmpfs-size":
            try:
                tmpfs_opts()["SizeBytes"] = parse_memory(value)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {value}") from None
        elif key == "tmpfs-mode":
            try:
                tmpfs_opts()["Mode"] = int(value, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {value}") from None
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if not mount["Type"]:
        raise ValueError("type is required")
    if not mount.get("Target"):
        raise ValueError("target is required")
    for options, name, prefix in ((volume, "volume", "volume-*"), (bind, "bind", "bind-*"),
                                  (tmpfs, "tmpfs", "tmpfs-*")):
        if options is not None and mount["Type"] != name:
            raise ValueError(f"cannot mix '{prefix}' options with mount type "
                             f"'{mount['Type']}'")
    if volume is not None:
        if not volume["DriverConfig"]:
            del volume["DriverConfig"]
        mount["VolumeOptions"] = volume
    if bind is not None:
        mount["BindOptions"] = bind
    if tmpfs is not None:
        mount["TmpfsOptions"] = tmpfs
    return mount


def mount_host_config(mount_values: list[str], volumes_from: list[str]) -> dict:
    """HostConfig.Mounts and HostConfig.VolumesFrom for the `run`/`create` flags."""
    host: dict = {}
    if mount_values:
        mounts = []
        for value in mount_values:
            try:
                mounts.append(parse_mount(value))
            except ValueError as exc:
                raise ValueError(f'invalid argument "{value}" for "--mount" flag: {exc}') \
                    from None
        host["Mounts"] = mounts
    if volumes_from:
        host["VolumesFrom"] = list(volumes_from)
    return host


def absolute_bind(value: str) -> str:
    """`-v ./dir:/dst`: the docker CLI (>= 23) sends a relative host path that starts with
    '.' as an absolute one; anything else that is not absolute is a volume name."""
    source, sep, rest = value.partition(":")
    if sep and (source == "." or source.startswith("./") or source.startswith("../")
                or source == ".."):
        return os.path.abspath(source) + ":" + rest
    return value
