"""`create [--bundle DIR] [--pid-file F] [--console-socket PATH] ID`: set the container up
and leave its init waiting on `<root>/<id>/exec.fifo` until `start`."""

import os

from . import console_fd, write_pid_file


def run(opts) -> int:
    from skiff.runtime.launch import spawn
    cid = opts.args[0]
    sock = console_fd(opts.console_socket) if opts.console_socket else None
    try:
        pid = spawn(opts.bundle or os.getcwd(), cid, console_socket=sock,
                    state_root=opts.root, wait_start=True,
                    preserve_fds=int(opts.preserve_fds or 0))
    finally:
        if sock is not None:
            os.close(sock)
    if opts.pid_file:
        write_pid_file(opts.pid_file, pid)
    return 0
