"""`tarfile` with PEP 706's extraction filters (`filter=`, `tar_filter`, `TarInfo.replace`)
on every Python skiff runs on.

CPython has them from 3.11.4 and 3.12. Debian 12's interpreter is 3.11.2 without them, yet
skiff's installer prefers it: built with PGO and LTO, it starts ~2 ms sooner than a plain
source build, and every CLI command pays the interpreter's start. There the PyPI package
`backports.tarfile` (the later module, published for older Pythons) stands in.
"""

import tarfile

if not hasattr(tarfile, "tar_filter"):
    from backports import tarfile  # noqa: F811

__all__ = ["tarfile"]
