"""A forward-only tar reader for streams, faster than tarfile's `r|` mode on big members.

tarfile's stream mode copies every byte of member data three times (it joins its record
buffer, then slices it twice); image archives and layers are mostly big members, so loading
spent more time there than hashing and writing together. Here tarfile still parses every
header (`TarInfo.fromtarfile`: ustar, pax and GNU long names, with its checks), and member data
is read straight from the underlying stream.

    reader = TarStream(stream)
    for info in reader:              # tarfile.TarInfo, bottom-up as in the archive
        if info.isreg():
            data = reader.read(1 << 20)   # up to n bytes of this member's data; b"" at its end
    reader.drain()                   # the rest of the stream (end blocks, padding)

As Go's archive/tar (which docker uses), a stream that ends cleanly at a header boundary ends
the archive, even without the two zero blocks; a header cut short, or member data shorter than
its header says, raises tarfile.ReadError("unexpected end of data"). Sparse members are
refused (no image layer uses them).
"""

from __future__ import annotations

import tarfile

BLOCK = tarfile.BLOCKSIZE
CHUNK = 1 << 20


class _Counted:
    """The stream as tarfile's header parser reads it, counting the offset."""

    def __init__(self, raw):
        self.raw = raw
        self.pos = 0

    def read(self, n: int) -> bytes:
        data = self.raw.read(n)
        if len(data) < n:  # a short read of a pipe or socket is not the end: read on
            parts = [data]
            got = len(data)
            while got < n:
                more = self.raw.read(n - got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self.pos += len(data)
        return data

    def tell(self) -> int:
        return self.pos


class TarStream:
    encoding = "utf-8"
    errors = "surrogateescape"

    def __init__(self, raw):
        self.fileobj = _Counted(raw)
        self.offset = 0              # tarfile's name for the next header's position
        self.pax_headers: dict = {}  # global pax headers, as tarfile keeps them
        self._left = 0               # data bytes of the current member not yet read
        self._pad = 0                # padding after it
        self._done = False

    # -- members ----------------------------------------------------------------------------

    def __iter__(self):
        while True:
            info = self.next()
            if info is None:
                return
            yield info

    def next(self) -> tarfile.TarInfo | None:
        if self._done:
            return None
        self._skip_rest()
        self.offset = self.fileobj.pos
        try:
            info = tarfile.TarInfo.fromtarfile(self)
        except tarfile.EOFHeaderError:       # a zero block: the end of the archive
            self._done = True
            return None
        except tarfile.EmptyHeaderError:     # a clean end at a header boundary
            if self.offset == 0:
                raise tarfile.ReadError("empty file") from None
            self._done = True
            return None
        except tarfile.TruncatedHeaderError:
            raise tarfile.ReadError("unexpected end of data") from None
        except tarfile.HeaderError as e:
            raise tarfile.ReadError(str(e)) from None
        if info.sparse is not None:
            raise tarfile.ReadError(f"{info.name}: sparse files are not supported")
        if self.fileobj.pos != info.offset_data:
            raise tarfile.ReadError(f"{info.name}: header parsing went astray")
        if info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:  # as tarfile: data follows
            self._left = info.size
            self._pad = -info.size % BLOCK
        else:
            self._left = self._pad = 0
        return info

    # -- data -------------------------------------------------------------------------------

    def read(self, n: int = CHUNK) -> bytes:
        """Up to `n` bytes of the current member's data; b"" when it is all read."""
        if self._left <= 0:
            return b""
        data = self.fileobj.raw.read(min(n, self._left))
        if not data:
            raise tarfile.ReadError("unexpected end of data")
        self.fileobj.pos += len(data)
        self._left -= len(data)
        return data

    def _skip_rest(self) -> None:
        while self._left > 0:
            self.read(CHUNK)
        if self._pad:
            pad = self.fileobj.read(self._pad)
            if len(pad) < self._pad:
                raise tarfile.ReadError("unexpected end of data")
            self._pad = 0

    def drain(self) -> None:
        """Read what follows the last member (end blocks, record padding) to EOF."""
        self._skip_rest()
        while self.fileobj.raw.read(CHUNK):
            pass
