"""`delete [--force] ID`: remove a stopped (or created) container's cgroups and state;
with --force, kill a running one first."""

import time


def run(opts) -> int:
    from skiff.errors import RuntimeFailure
    from skiff.linux import proc
    from skiff.runtime import state as st
    from skiff.runtime.launch import cleanup
    cid = opts.args[0]
    doc = st.read(opts.root, cid)
    status = st.status(opts.root, doc)
    if status == "running" and not opts.force:
        raise RuntimeFailure(f"cannot delete container {cid} that is not stopped: running")
    if status != "stopped":
        pid = doc["pid"]
        try:
            fd = proc.pidfd_open(pid)
        except OSError:
            fd = None
        if fd is not None:
            try:
                if proc.start_time(pid) == doc.get("pid_start"):
                    proc.pidfd_send_signal(fd, 9)
            except OSError:
                pass
            finally:
                import os
                os.close(fd)
        deadline = time.monotonic() + 10
        while st.alive(doc):
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"container {cid} did not die")
            time.sleep(0.005)
    cleanup(doc.get("bundle", ""), cid, state_root=opts.root)
    return 0
