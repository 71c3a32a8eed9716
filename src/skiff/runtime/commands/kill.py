"""`kill [--all] ID [SIGNAL]` (default SIGTERM): signal a created or running container's init
through a pidfd opened and checked against the recorded start time (no recycled pid), or
with --all every process in its cgroup."""

import os

from . import parse_signal


def run(opts) -> int:
    from skiff.errors import RuntimeFailure
    from skiff.linux import proc
    from skiff.runtime import state as st
    cid = opts.args[0]
    sig = parse_signal(opts.args[1]) if len(opts.args) > 1 else 15
    doc = st.read(opts.root, cid)
    if st.status(opts.root, doc) == "stopped":
        raise RuntimeFailure("container not running")
    if opts.all:  # every process in the container's cgroup
        for d in doc.get("cgroup_dirs", [])[:1]:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        return 0
    pidfd = proc.pidfd_open(doc["pid"])
    try:
        if proc.start_time(doc["pid"]) != doc.get("pid_start"):
            raise RuntimeFailure("container not running")
        proc.pidfd_send_signal(pidfd, sig)
    finally:
        os.close(pidfd)
    return 0
