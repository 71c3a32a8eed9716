"""Copy-up: the first time an empty volume is mounted over a path where the container's image
has content, that content (owners, modes, times, links, xattrs) is copied into the volume,
as docker does (unless the mount asked for `nocopy`).

The image's view of the path exists only once the container's rootfs is mounted, which
happens inside the container's own mount namespace. So the copy runs in a short-lived child
process with a private mount namespace of its own: it mounts the rootfs there (the same
mounts the runtime would make), resolves the path inside that root (symlinks cannot lead out
of it), and copies with `cp -a`. When the child exits, its mounts vanish with its namespace:
nothing can leak on the host, even if skiffd is killed half-way.

    copy_up(rootfs_mounts, "/data", "/var/lib/skiff/volumes/v/_data")   # True if copied
"""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
import sys

MAX_LINKS = 40


def resolve_in_root(root: str, path: str) -> str | None:
    """The host path of `path` inside `root`, following symlinks as if `root` were `/`;
    None if it does not exist."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > MAX_LINKS:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        if not os.path.lexists(candidate):
            return None
        done.append(part)
    return os.path.join(root, *done)


def layer_dirs(rootfs_mounts: list[dict]) -> list[str] | None:
    """The directories the rootfs is made of (overlay upper and lower dirs, or a bind
    source); None when a mount is of another kind (then nothing can be ruled out)."""
    dirs = []
    for mount in rootfs_mounts:
        if (mount.get("destination") or "/") != "/":
            return None
        if mount.get("type") == "overlay":
            for option in mount.get("options") or []:
                if option.startswith("upperdir="):
                    dirs.append(option[len("upperdir="):])
                elif option.startswith("lowerdir="):
                    dirs.extend(option[len("lowerdir="):].split(":"))
        elif mount.get("type") == "bind" or "bind" in (mount.get("options") or []) or \
                "rbind" in (mount.get("options") or []):
            dirs.append(mount["source"])
        else:
            return None
    return dirs


def might_have(rootfs_mounts: list[dict], path: str) -> bool:
    """False only when no layer has anything at `path` or at a symlink on the way to it:
    then there is nothing to copy, and no child process is spent finding that out."""
    dirs = layer_dirs(rootfs_mounts)
    if dirs is None:
        return True
    parts = [p for p in path.split("/") if p and p != "."]
    for top in dirs:
        here = top
        for part in parts:
            here = os.path.join(here, part)
            if os.path.islink(here):
                return True
        if os.path.lexists(here):
            return True
    return False


def map_id(value: int, mappings: list[dict] | None) -> int:
    """A container id as the host sees it under a user namespace's maps (an id already in a
    host range stays: the container's own writes are stored shifted)."""
    if not mappings:
        return value
    for m in mappings:
        if m["hostID"] <= value < m["hostID"] + m["size"]:
            return value
    for m in mappings:
        if m["containerID"] <= value < m["containerID"] + m["size"]:
            return m["hostID"] + value - m["containerID"]
    return 65534


def copy_up(rootfs_mounts: list[dict], path: str, dest: str, uid_maps=None,
            gid_maps=None) -> bool:
    """Copy the image's `path` into the (empty) directory `dest`; False when the image has
    no directory there (nothing to copy). Raises RuntimeError when the copy fails. With a
    user namespace's maps, owners are shifted as the container will see them."""
    if not might_have(rootfs_mounts, path):
        return False
    request = json.dumps({"mounts": rootfs_mounts, "path": path, "dest": dest,
                          "uid_maps": uid_maps, "gid_maps": gid_maps})
    result = subprocess.run([sys.executable, "-m", "skiff.engine.copyup"], input=request,
                            capture_output=True, text=True,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                 "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    if result.returncode == 3:
        return False
    if result.returncode != 0:
        raise RuntimeError(f"copying image content of {path} into the volume: "
                           f"{result.stderr.strip() or result.returncode}")
    return True


def _child(request: dict) -> int:
    import tempfile

    from skiff.linux import mount as _m
    from skiff.linux import ns

    ns.unshare(ns.CLONE_NEWNS)
    _m.mount(None, "/", None, _m.MS_REC | _m.MS_PRIVATE)
    root = tempfile.mkdtemp(prefix="skiff-copyup-")
    try:
        for mount in request["mounts"]:
            target = posixpath.normpath(mount.get("destination") or "/")
            where = root if target == "/" else resolve_in_root(root, target)
            if where is None:
                continue
            options = mount.get("options") or []
            if mount.get("type") == "bind" or "bind" in options or "rbind" in options:
                flags = _m.MS_BIND | (_m.MS_REC if "rbind" in options else 0)
                _m.mount(mount["source"], where, None, flags)
            else:
                data = ",".join(o for o in options if "=" in o)
                _m.mount(mount.get("source") or mount["type"], where, mount["type"], 0, data)
        source = resolve_in_root(root, request["path"])
        if source is None or not os.path.isdir(source) or os.path.islink(source):
            return 3
        dest = request["dest"]
        if os.listdir(source):
            subprocess.run(["cp", "-a", "--", source + "/.", dest + "/"], check=True)
        st = os.stat(source)
        os.chown(dest, st.st_uid, st.st_gid)   # the volume's root takes the path's owner and
        os.chmod(dest, st.st_mode & 0o7777)    # mode, as docker's copyOwnership does
        uids, gids = request.get("uid_maps"), request.get("gid_maps")
        if uids or gids:
            for dirpath, dirnames, filenames in os.walk(dest):
                for entry in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
                    est = os.lstat(entry)
                    mode = est.st_mode & 0o7777
                    os.lchown(entry, map_id(est.st_uid, uids), map_id(est.st_gid, gids))
                    if not os.path.islink(entry) and mode & 0o6000:
                        os.chmod(entry, mode)   # chown clears set-id bits: put them back
        return 0
    finally:
        # the namespace dies with us; unmount anyway so that the rmdir below succeeds
        for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
            point = line.split()[4]
            if point == root or point.startswith(root + "/"):
                try:
                    _m.umount2(point, 2)
                except OSError:
                    pass
        try:
            os.rmdir(root)
        except OSError:
            pass


if __name__ == "__main__":
    try:
        sys.exit(_child(json.load(sys.stdin)))
    except subprocess.CalledProcessError as exc:
        print(f"cp failed with status {exc.returncode}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
