"""Files a build step reads or writes besides the context: owners looked up in the image,
heredoc and URL files written into a layer, read-only mounts of other images' layers
(`COPY --from`), and a RUN container's upper dir made ready to become a layer as it is.

Helpers of engine/builder.py; each takes what it works on explicitly (the snapshotter, the
layer dirs), and none knows the Build object.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import stat

from skiff.build.context import make_dirs, resolve_in_image
from skiff.errors import SkiffError
from skiff.oci.users import lookup_user
from skiff.snapshot import diff as snapdiff


class BuildFailed(SkiffError):
    """A step failed (a RUN's exit code, a missing file): docker reports these in the
    stream; as an HTTP status, 400 like a bad Dockerfile."""

    status = 400

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def owner_in_image(snaps, chains: list[str], text: str) -> tuple[int, int]:
    """--chown (and USER for WORKDIR): names looked up in the image's /etc files."""
    lowers = [snaps.path(c) for c in reversed(chains)]

    def image_file(rel: str) -> str | None:
        for layer in lowers:
            full = os.path.join(layer, rel)
            if os.path.lexists(full):
                try:
                    with open(full, encoding="utf-8", errors="replace") as f:
                        return f.read()
                except OSError:
                    return None
        return None

    user, _, group = text.partition(":")
    try:
        found = lookup_user(text if group else user,
                            image_file("etc/passwd"), image_file("etc/group"))
    except SkiffError as exc:
        raise BuildFailed(f"unable to convert uid/gid chown string to host mapping: "
                          f"{exc.message}") from None
    uid = found.uid
    gid = found.gid if (group or not user.isdigit()) else uid
    return uid, gid


def describe(ctx, found: list[str], heredocs: dict, urls: list[str],
              content: str) -> str:
    hexpart = content.partition(":")[2] if content else ""
    if len(found) == 1 and not heredocs and not urls:
        is_dir = os.path.isdir(ctx.path(found[0])) and not os.path.islink(ctx.path(found[0]))
        return ("dir:" if is_dir else "file:") + hexpart
    if heredocs and not found and not urls:
        return "heredoc:" + ",".join(heredocs)
    if urls and not found:
        return ",".join(urls)
    return "multi:" + hexpart

def write_file(upper: str, lowers: list[str], dest: str, dest_is_dir: bool, name: str,
                data: bytes, owner, mode: int) -> None:
    rel = resolve_in_image(lowers, upper, dest)
    st = snapdiff.lower_stat(lowers, rel) if rel else None
    if dest_is_dir or (st is not None and stat.S_ISDIR(st.st_mode)):
        rel = posixpath.join(rel, name)
    make_dirs(lowers, upper, posixpath.dirname(rel), owner)
    full = os.path.join(upper, rel)
    if os.path.lexists(full):
        os.unlink(full)
    with open(full, "wb") as f:
        f.write(data)
    os.chmod(full, mode)
    uid, gid = owner or (0, 0)
    os.lchown(full, uid, gid)

def download(url: str, workdir: str) -> tuple[str, str]:
    """ADD of a URL: the file fetched into the build's scratch dir; (path, digest)."""
    import hashlib
    import urllib.request

    path = os.path.join(workdir, "url-" + secrets.token_hex(8))
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(path, "wb") as out:
            if resp.status >= 400:
                raise BuildFailed(f"failed to GET {url} with status {resp.status}")
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except OSError as e:
        raise BuildFailed(f"ADD failed: failed to GET {url}: {e}") from None
    return path, "sha256:" + h.hexdigest()


def mount_layers(snaps, chains: list[str], target: str) -> None:
    """A read-only overlay of an image's layers at `target` (COPY --from)."""
    from skiff.linux import mount as linux_mount

    lowers = [snaps.path(c) for c in reversed(chains)]
    if len(lowers) < 2:
        lowers.append(snaps._empty_dir())
    linux_mount.mount("overlay", target, "overlay", linux_mount.MS_RDONLY,
                      "lowerdir=" + ":".join(lowers))

def unmount(target: str) -> None:
    from skiff.linux import mount as linux_mount

    try:
        linux_mount.umount2(target, linux_mount.MNT_DETACH)
    except OSError:
        pass
    try:
        os.rmdir(target)
    except OSError:
        pass



def drop_mount_points(upper: str, lowers: list[str], exclude: frozenset[str]) -> None:
    """Remove from a RUN container's upper dir what the runtime made only as mount points
    (an empty /etc/hosts that no layer has): they are not the step's changes."""
    for path in sorted(exclude, key=lambda p: -p.count("/")):
        rel = path.strip("/")
        full = os.path.join(upper, rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue
        if snapdiff._excluded(rel, st, full, lowers, exclude):
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(full)
            else:
                os.unlink(full)


def strip_overlay_xattrs(upper: str) -> None:
    """overlayfs marks what it copies up (`trusted.overlay.origin`, `.impure`, ...); only the
    opaque marker means something in a lower layer, the rest is dropped (the layer tar
    leaves them all out too, and unpacking turns its opaque entries back into the marker)."""
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in [""] + dirnames + filenames:
            full = os.path.join(dirpath, name) if name else dirpath
            try:
                names = os.listxattr(full, follow_symlinks=False)
            except OSError:
                continue
            for attr in names:
                if attr.startswith("trusted.overlay.") and attr != snapdiff.OPAQUE_XATTR:
                    try:
                        os.removexattr(full, attr, follow_symlinks=False)
                    except OSError:
                        pass


def unshift_owners(upper: str, ids) -> None:
    """A user-namespaced RUN container's upper dir holds owners shifted into its id range;
    the directory becomes an image layer as it is, so they go back to the container's ids
    (what the layer's tar would carry: snapshot/diff.py's write_layer with the same maps)."""
    uids, gids = ids
    for dirpath, dirnames, filenames in os.walk(upper):
        # each directory once: as its parent's entry (the top one as itself), since the
        # shift is not idempotent
        for name in ([""] if dirpath == upper else []) + dirnames + filenames:
            full = os.path.join(dirpath, name) if name else dirpath
            try:
                st = os.lstat(full)
                mode = stat.S_IMODE(st.st_mode)
                os.lchown(full, uids.to_container(st.st_uid), gids.to_container(st.st_gid))
                if mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISLNK(st.st_mode):
                    os.chmod(full, mode)   # chown clears set-id bits: keep the file's own
            except OSError:
                continue
