"""Reading a container's (or an exec's) output descriptors, pipes or a pty master."""

from __future__ import annotations

import errno
import os

READ_SIZE = 64 * 1024


def read_chunk(fd: int) -> bytes | None:
    """The next output; b"" at the end (a pty reports its end as EIO once the last slave
    closed); None when there is nothing to read yet."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        return b""
