"""Tar headers for the build context the CLI sends, without importing tarfile (its import,
with shutil, struct and the compression modules behind it, is a good part of a rebuild's
start-up).

    header(name, mode=0o644, size=5, mtime=0, kind=REGULAR)  -> 512 bytes (or more: a PAX
                                                                 record first when needed)
    padding(size)                                            -> the zeros after the data

ustar headers, owners 0:0 (as docker's CLI writes a context), with a PAX extended header
first when a name or link target is longer than ustar holds or not ASCII, or a size or time
does not fit its octal field. Pure: values in, bytes out.
"""

from __future__ import annotations

REGULAR, DIRECTORY, SYMLINK, PAX = b"0", b"5", b"2", b"x"
BLOCK = 512


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _block(name: bytes, mode: int, size: int, mtime: int, kind: bytes, link: bytes) -> bytes:
    fields = [
        name.ljust(100, b"\0"), _octal(mode & 0o7777, 8), _octal(0, 8), _octal(0, 8),
        _octal(size, 12), _octal(mtime, 12), b" " * 8, kind, link.ljust(100, b"\0"),
        b"ustar\x0000", b"\0" * 32, b"\0" * 32, _octal(0, 8), _octal(0, 8), b"\0" * 155,
        b"\0" * 12,
    ]
    raw = bytearray(b"".join(fields))
    checksum = sum(raw)
    raw[148:156] = b"%06o\0 " % checksum
    return bytes(raw)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode("utf-8", "surrogateescape")
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def padding(size: int) -> bytes:
    return b"\0" * ((BLOCK - size % BLOCK) % BLOCK)


def header(name: str, *, mode: int, size: int = 0, mtime: int = 0, kind: bytes = REGULAR,
           link: str = "") -> bytes:
    raw_name = name.encode("utf-8", "surrogateescape")
    raw_link = link.encode("utf-8", "surrogateescape")
    pax = []
    if len(raw_name) > 100 or not raw_name.isascii():
        pax.append(_pax_record("path", name))
        raw_name = raw_name[:100]
    if len(raw_link) > 100 or not raw_link.isascii():
        pax.append(_pax_record("linkpath", link))
        raw_link = raw_link[:100]
    if size >= 8 ** 11:
        pax.append(_pax_record("size", str(size)))
    if not 0 <= mtime < 8 ** 11:
        pax.append(_pax_record("mtime", str(mtime)))
    out = b""
    if pax:
        data = b"".join(pax)
        out = _block(b"././@PaxHeader", 0o644, len(data), 0, PAX, b"") + data + padding(len(data))
    return out + _block(raw_name, mode, size if size < 8 ** 11 else 0,
                        mtime if 0 <= mtime < 8 ** 11 else 0, kind, raw_link)
