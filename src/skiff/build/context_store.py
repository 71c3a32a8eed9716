"""Build contexts kept between builds, so that a rebuild sends (and the daemon writes) only
the files that changed: skiff's own context transfer, beside docker's whole-tar one.

    store = ContextStore("/var/lib/skiff/build/contexts")
    need = store.need(key, manifest)        # paths whose files the client must send
    ctx = store.apply(key, tar)             # the tar: the manifest (MANIFEST_NAME, first)
                                            # and those files; -> a ContextDir
    ... build ...
    store.save(key, ctx)                    # remember the content hashes computed

`key` names one client's context directory (64 hex digits the client derives from its host
and the directory's path). A manifest lists every path the client would send, after its
.dockerignore, as [path, kind, mode, size, mtime_ns, link] (kind "f", "d" or "l"; owners are
0:0 as docker's CLI sends them). A file is needed when the stored copy differs in any of those
fields or is missing; the stored copy is trusted otherwise ("unchanged" means what make and
BuildKit's file sync mean by it). Received files replace stored ones by rename (a new inode:
layers hard-link context files, so they are never written in place); paths gone from the
manifest are removed. Content hashes (for the build cache) are kept in the manifest and reused
while a file's fields are unchanged, so an unchanged file is never read again.

One build at a time per key (the caller holds a lock); the store keeps the KEEP most recently
used contexts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile

from skiff.build.context import ContextDir
from skiff.snapshot.unpack import apply_layer

KEEP = 16
MANIFEST_NAME = ".skiff-context-manifest.json"
_KEY = re.compile(r"^[a-f0-9]{64}$")
_KINDS = {"f": stat.S_IFREG, "d": stat.S_IFDIR, "l": stat.S_IFLNK}


class ContextOutOfDate(ValueError):
    """The tar lacks a file the manifest needs (another build changed the stored context
    between the two requests): the client asks again."""


def _entries(manifest) -> dict[str, tuple]:
    if not isinstance(manifest, list):
        raise ValueError("invalid context manifest: not a list")
    out = {}
    for item in manifest:
        if not isinstance(item, list) or len(item) != 6:
            raise ValueError("invalid context manifest entry")
        path, kind, mode, size, mtime, link = item
        if not isinstance(path, str) or kind not in _KINDS or not isinstance(mode, int) or \
                not isinstance(size, int) or not isinstance(mtime, int) or \
                not isinstance(link, str):
            raise ValueError(f"invalid context manifest entry: {item!r}")
        parts = path.split("/")
        if not path or "" in parts or "." in parts or ".." in parts:
            raise ValueError(f"invalid path in context manifest: {path!r}")
        out[path] = (kind, mode & 0o7777, size, mtime, link)
    return out


class ContextStore:
    def __init__(self, directory: str):
        self.dir = directory
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def _paths(self, key: str) -> tuple[str, str]:
        if not _KEY.match(key or ""):
            raise ValueError("invalid context key")
        base = os.path.join(self.dir, key)
        return os.path.join(base, "files"), os.path.join(base, "manifest.json")

    def _stored(self, key: str) -> dict:
        _, manifest_path = self._paths(key)
        try:
            with open(manifest_path) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return {}

    def need(self, key: str, manifest) -> list[str]:
        wanted = _entries(manifest)
        stored = self._stored(key)
        return [path for path, fields in wanted.items() if fields[0] != "d" and
                list(fields) != (stored.get(path) or [None])[:5]]

    def apply(self, key: str, tar) -> ContextDir:
        """Bring the stored context to the manifest the tar starts with, with the needed
        files the tar holds."""
        files, manifest_path = self._paths(key)
        stored = self._stored(key)
        os.makedirs(files, mode=0o700, exist_ok=True)
        os.utime(os.path.dirname(files))  # most recently used
        incoming = tempfile.mkdtemp(prefix=".incoming-", dir=os.path.dirname(files))
        try:
            apply_layer(tar, incoming)
            try:
                with open(os.path.join(incoming, MANIFEST_NAME)) as f:
                    wanted = _entries(json.load(f))
            except (FileNotFoundError, ValueError) as e:
                raise ValueError(f"invalid build context: no valid {MANIFEST_NAME}: {e}") \
                    from None
            # paths that went away (or changed kind), deepest first
            for path in sorted(stored, key=lambda p: -p.count("/")):
                old = stored[path]
                new = wanted.get(path)
                if new is None or new[0] != old[0]:
                    full = os.path.join(files, path)
                    if os.path.isdir(full) and not os.path.islink(full):
                        shutil.rmtree(full, ignore_errors=True)
                    elif os.path.lexists(full):
                        os.unlink(full)
            kept = {}
            touched = {os.path.dirname(p) for p in stored if p not in wanted}
            for path in sorted(wanted):  # parents before children
                kind, mode, size, mtime, link = wanted[path]
                full = os.path.join(files, path)
                old = stored.get(path)
                unchanged = old is not None and list(old[:5]) == [kind, mode, size, mtime, link]
                if kind == "d":
                    if not unchanged:
                        if not os.path.isdir(full) or os.path.islink(full):
                            if os.path.lexists(full):
                                os.unlink(full)
                            os.mkdir(full)
                            touched.add(os.path.dirname(path))
                        os.chmod(full, mode)
                        touched.add(path)
                    kept[path] = [kind, mode, size, mtime, link, None]
                    continue
                if unchanged:   # trusted, as `need` trusts it: nothing to stat
                    kept[path] = old
                    continue
                touched.add(os.path.dirname(path))
                received = os.path.join(incoming, path)
                try:
                    st = os.lstat(received)
                except FileNotFoundError:
                    if path in stored:  # gone from the store: the next `need` asks for it
                        del stored[path]
                        self._write(manifest_path, stored)
                    raise ContextOutOfDate(f"build context out of date: {path} was not "
                                           f"sent") from None
                if stat.S_IFMT(st.st_mode) != _KINDS[kind]:
                    raise ValueError(f"build context: {path} is not what the manifest says")
                parent = os.path.dirname(full)
                if not os.path.isdir(parent):
                    os.makedirs(parent, exist_ok=True)
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full)
                os.rename(received, full)
                if kind == "f":
                    os.chmod(full, mode)
                    os.utime(full, ns=(mtime, mtime))
                kept[path] = [kind, mode, size, mtime, link, None]
            # times of the directories whose entries changed, last (filling them changed them)
            for path in sorted(touched, reverse=True):
                entry = wanted.get(path)
                if entry is not None and entry[0] == "d":
                    os.utime(os.path.join(files, path), ns=(entry[3], entry[3]))
            if kept != stored:
                self._write(manifest_path, kept)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        ctx = ContextDir(files)
        ctx.load_ignore()
        for path, entry in kept.items():
            if entry[0] == "f" and entry[5]:
                ctx._hashes[path] = entry[5]
        ctx.manifest = kept
        try:
            with open(os.path.join(os.path.dirname(files), "digests.json")) as f:
                ctx.digests = json.load(f)
        except (FileNotFoundError, ValueError):
            ctx.digests = {}
        ctx.saved_digests = dict(ctx.digests)
        self._trim(key)
        return ctx

    def save(self, key: str, ctx: ContextDir) -> None:
        """Keep the content hashes the build computed."""
        _, manifest_path = self._paths(key)
        stored = self._stored(key)
        changed = False
        for path, digest in ctx._hashes.items():
            entry = stored.get(path)
            if entry is not None and entry[5] != digest:
                entry[5] = digest
                changed = True
        if changed:
            self._write(manifest_path, stored)
        if ctx.digests != getattr(ctx, "saved_digests", None):
            self._write(os.path.join(os.path.dirname(manifest_path), "digests.json"),
                        ctx.digests)

    @staticmethod
    def _write(path: str, manifest: dict) -> None:
        tmp = path + ".tmp"
        data = json.dumps(manifest, separators=(",", ":"))   # the C encoder, in one piece
        with open(tmp, "w") as f:
            f.write(data)
        os.rename(tmp, path)

    def _trim(self, keep_key: str) -> None:
        entries = []
        for name in os.listdir(self.dir):
            if _KEY.match(name) and name != keep_key:
                entries.append((os.stat(os.path.join(self.dir, name)).st_mtime, name))
        for _, name in sorted(entries, reverse=True)[KEEP - 1:]:
            shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)

    def remove_all(self) -> int:
        count = 0
        for name in os.listdir(self.dir):
            shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)
            count += 1
        return count
