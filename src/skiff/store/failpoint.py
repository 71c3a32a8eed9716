"""Named failpoints: lets a test stop the process at an exact step, to prove crash safety.

A test sets `SKIFF_FAILPOINTS=name[,name...]` in the environment of a child process; when that
process reaches `hit("name")` it exits at once with status 86, with no clean-up, as a crash or
a kill -9 would. This is the only environment variable read below the entry points, and it is
read only when a failpoint is reached, so production code pays one dict lookup per step.
"""

import os

EXIT_STATUS = 86


def hit(name: str) -> None:
    names = os.environ.get("SKIFF_FAILPOINTS")
    if names and name in names.split(","):
        os._exit(EXIT_STATUS)
