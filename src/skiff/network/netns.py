"""Network namespaces kept as files: a namespace bind-mounted on `<dir>/<id>` lives as long as
that mount, whoever holds it, so a container's network outlives skiffd and can be set up
before the runtime starts the container (which joins it through config.json's path).

A network namespace belongs to a thread, not a process: every function here that changes
namespace does it in a thread of its own that ends afterwards, so that no thread of skiffd
(nor of asyncio's pool) is ever left in another namespace.
"""

from __future__ import annotations

import errno
import os
import threading

from skiff.linux import mount as _mount
from skiff.linux import ns as _ns


def _in_thread(fn):
    box: dict = {}

    def body():
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=body, name="skiff-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def create(path: str) -> None:
    """A new network namespace (only `lo`, down) bind-mounted on `path`."""
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def make():
        _ns.unshare(_ns.CLONE_NEWNET)
        _mount.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None,
                     _mount.MS_BIND)
    try:
        _in_thread(make)
    except BaseException:
        os.unlink(path)
        raise


def exists(path: str) -> bool:
    """True when `path` is a mounted namespace file (not a bare file a crash left)."""
    try:
        with open(path, "rb"):
            pass
    except OSError:
        return False
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def remove(path: str) -> None:
    """Unmount and delete a namespace file; the namespace (and the veth ends in it) goes away
    with its last user. Missing files are fine."""
    try:
        _mount.umount2(path, _mount.MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def run_in(path: str, fn):
    """fn() called in a thread that has joined the namespace at `path`; its result."""
    def body():
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _ns.setns(fd, _ns.CLONE_NEWNET)
        finally:
            os.close(fd)
        return fn()
    return _in_thread(body)
