"""The build context on the daemon's side: files received once (a tar unpacked into a private
directory), `.dockerignore` applied, sources of COPY/ADD found (globs), hashed by content
(never by timestamps) for the cache, and copied into a layer's directory as docker copies them.

    ctx = ContextDir.from_tar(fileobj, "/var/lib/skiff/build/tmp/ctx-1")
    srcs = ctx.sources(["src/*.py", "README"])       # context-relative paths, sorted
    ctx.digest(srcs)                                   # "sha256:..." of names, modes, contents
    copy_sources(ctx, srcs, upper, lowers, "/app/", owner=(0, 0), mode=None)

Copy rules (docker's): a directory source copies its contents; several sources, or a
destination ending in `/`, or one that is a directory in the image, make the destination a
directory; new files and directories belong to 0:0 unless `--chown`; `--chmod` sets the mode
of what is copied; mtimes are kept. Paths in the image are resolved through the image's own
symlinks (an image whose /bin is a link to usr/bin gets the file in usr/bin).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import posixpath
import shutil
import stat

from skiff.dockerignore import IgnoreMatcher
from skiff.snapshot import diff as snapdiff
from skiff.snapshot.unpack import apply_layer


class ContextError(ValueError):
    pass


def _go_match(pattern: str, name: str) -> bool:
    """filepath.Match for one path component (`*`, `?`, `[...]`, `[^...]`)."""
    return fnmatch.fnmatchcase(name, pattern.replace("[^", "[!"))


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


class ContextDir:
    def __init__(self, root: str, ignore: IgnoreMatcher | None = None):
        self.root = root
        self.ignore = ignore or IgnoreMatcher([])
        self._hashes: dict[str, str] = {}
        # A kept context (context_store.py) knows every path's fields without a stat: a
        # source's digest is then reused while the fields beneath it are unchanged.
        self.manifest: dict[str, list] | None = None
        self.digests: dict[str, list[str]] = {}     # source -> [fingerprint, digest]

    @classmethod
    def from_tar(cls, fileobj, dest: str) -> "ContextDir":
        """Unpack a (maybe compressed) context tar into the empty dir `dest`, safely (names
        with `..`, or written through symlinks, are refused)."""
        os.makedirs(dest, exist_ok=True)
        apply_layer(fileobj, dest)
        ctx = cls(dest)
        ctx.load_ignore()
        return ctx

    def load_ignore(self) -> None:
        try:
            with open(os.path.join(self.root, ".dockerignore"), "rb") as f:
                self.ignore = IgnoreMatcher.parse(f.read())
        except FileNotFoundError:
            self.ignore = IgnoreMatcher([])

    def path(self, rel: str) -> str:
        rel = posixpath.normpath("/" + rel).lstrip("/")
        return os.path.join(self.root, rel) if rel else self.root

    def read_file(self, rel: str) -> bytes | None:
        full = self.path(rel)
        if os.path.islink(full) or not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()

    def _excluded(self, rel: str) -> bool:
        return bool(rel) and self.ignore.excluded(rel)

    def sources(self, patterns: list[str]) -> list[str]:
        """Context-relative paths ("" is the whole context) the patterns name, each once."""
        out: list[str] = []
        for pattern in patterns:
            clean = posixpath.normpath("/" + pattern).lstrip("/")
            if clean in ("", "."):
                found = [""]
            elif _has_magic(clean):
                found = self._glob(clean)
            else:
                full = self.path(clean)
                found = [clean] if os.path.lexists(full) and not self._excluded(clean) else []
            if not found:
                raise ContextError(f"file not found in build context or excluded by "
                                   f".dockerignore: stat {pattern}: file does not exist")
            for f in found:
                if f not in out:
                    out.append(f)
        return out

    def _glob(self, pattern: str) -> list[str]:
        parts = pattern.split("/")
        current = [""]
        for part in parts:
            nxt = []
            for base in current:
                directory = self.path(base)
                if not os.path.isdir(directory) or os.path.islink(directory):
                    continue
                if _has_magic(part):
                    names = sorted(n for n in os.listdir(directory) if _go_match(part, n))
                else:
                    names = [part] if os.path.lexists(os.path.join(directory, part)) else []
                nxt += [posixpath.join(base, n) if base else n for n in names]
            current = nxt
        return [p for p in current if not self._excluded(p)]

    def walk(self, rel: str):
        """(relative path, stat) of `rel` and, for a directory, everything beneath it that is
        not excluded; sorted, parents first."""
        full = self.path(rel)
        st = os.lstat(full)
        yield rel, st
        if not stat.S_ISDIR(st.st_mode):
            return
        for name in sorted(os.listdir(full)):
            child = posixpath.join(rel, name) if rel else name
            if self._excluded(child):
                if not self.ignore.may_include_below(child):
                    continue
                cst = os.lstat(self.path(child))
                if stat.S_ISDIR(cst.st_mode):
                    yield from ((p, s) for p, s in self.walk(child)
                                if p != child and not self._excluded(p))
                continue
            yield from self.walk(child)

    def file_hash(self, rel: str) -> str:
        cached = self._hashes.get(rel)
        if cached is None:
            h = hashlib.sha256()
            with open(self.path(rel), "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            cached = self._hashes[rel] = h.hexdigest()
        return cached

    def _fingerprint(self, src: str) -> str | None:
        if self.manifest is None:
            return None
        prefix = src + "/"
        h = hashlib.sha256()
        for pattern in self.ignore.patterns:
            h.update(f"{pattern.exclusion}{pattern.text}\0".encode("utf-8", "surrogateescape"))
        for path, entry in self.manifest.items():
            if not src or path == src or path.startswith(prefix):
                h.update(json.dumps([path, entry[:5]]).encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def digest(self, sources: list[str]) -> str:
        """The content of the sources: names (relative to each source), types, modes, link
        targets and file contents; timestamps and ownership left out."""
        if len(sources) == 1:
            fingerprint = self._fingerprint(sources[0])
            known = self.digests.get(sources[0])
            if fingerprint and known and known[0] == fingerprint:
                return known[1]
            result = self._digest(sources)
            if fingerprint:
                self.digests[sources[0]] = [fingerprint, result]
            return result
        return self._digest(sources)

    def _digest(self, sources: list[str]) -> str:
        h = hashlib.sha256()
        for src in sources:
            h.update(b"src\0" + src.encode("utf-8", "surrogateescape") + b"\0")
            for rel, st in self.walk(src):
                inner = rel[len(src):].lstrip("/") if src else rel
                h.update(inner.encode("utf-8", "surrogateescape") + b"\0")
                h.update(f"{stat.S_IFMT(st.st_mode)}:{stat.S_IMODE(st.st_mode):o}\0".encode())
                if stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(self.path(rel)).encode("utf-8", "surrogateescape"))
                elif stat.S_ISREG(st.st_mode):
                    h.update(self.file_hash(rel).encode())
                h.update(b"\n")
        return "sha256:" + h.hexdigest()


# -- writing into a layer's directory ---------------------------------------------------------


def resolve_in_image(lowers: list[str], upper: str, path: str) -> str:
    """`path` (absolute, in the image) with symlinks of the image's directories resolved, as a
    relative path; a link never leads outside the image root."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        rel = "/".join(resolved + [part])
        full_upper = os.path.join(upper, rel)
        st = os.lstat(full_upper) if os.path.lexists(full_upper) else \
            snapdiff.lower_stat(lowers, rel)
        if st is not None and stat.S_ISLNK(st.st_mode) and parts:
            hops += 1
            if hops > 40:
                raise ContextError(f"too many levels of symbolic links: {path}")
            where = full_upper if os.path.lexists(full_upper) else next(
                os.path.join(l, rel) for l in lowers if os.path.lexists(os.path.join(l, rel)))
            target = os.readlink(where)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return "/".join(resolved)


def image_stat(lowers: list[str], upper: str, rel: str) -> os.stat_result | None:
    full = os.path.join(upper, rel)
    if os.path.lexists(full):
        return os.lstat(full)
    return snapdiff.lower_stat(lowers, rel) if rel else os.stat(upper)


def make_dirs(lowers: list[str], upper: str, rel: str, owner: tuple[int, int] | None) -> None:
    """Make `rel` a directory in the upper dir, with its parents: those the image already has
    keep their mode and owner, new ones are 0755 and owned by `owner` (0:0 by default)."""
    done = ""
    for part in [p for p in rel.split("/") if p]:
        done = posixpath.join(done, part) if done else part
        full = os.path.join(upper, done)
        if os.path.isdir(full) and not os.path.islink(full):
            continue
        existing = snapdiff.lower_stat(lowers, done)
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            os.mkdir(full)
            os.chmod(full, stat.S_IMODE(existing.st_mode))
            os.lchown(full, existing.st_uid, existing.st_gid)
            os.utime(full, ns=(existing.st_atime_ns, existing.st_mtime_ns))
        else:
            if os.path.lexists(full):
                os.unlink(full)
            os.mkdir(full)
            os.chmod(full, 0o755)
            uid, gid = owner or (0, 0)
            os.lchown(full, uid, gid)


def _link(src: str, dest: str) -> bool:
    """Hard-link a context file into a layer instead of copying it: creating inodes is what a
    COPY of many files spends its time on. Safe because nothing writes to either file in
    place: the context is replaced file by file (rename), and a layer is read-only once
    committed (containers copy up). False where links cannot be made (another mount)."""
    try:
        os.link(src, dest)
        return True
    except OSError:
        return False


def _copy_entry(src_full: str, st: os.stat_result, dest_full: str,
                owner: tuple[int, int], mode: int | None) -> None:
    if os.path.lexists(dest_full) and not (stat.S_ISDIR(st.st_mode) and
                                           os.path.isdir(dest_full) and
                                           not os.path.islink(dest_full)):
        if os.path.isdir(dest_full) and not os.path.islink(dest_full):
            shutil.rmtree(dest_full)
        else:
            os.unlink(dest_full)
    if stat.S_ISDIR(st.st_mode):
        if not os.path.isdir(dest_full):
            os.mkdir(dest_full)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src_full), dest_full)
    elif stat.S_ISREG(st.st_mode) and (st.st_uid, st.st_gid) == owner and \
            (mode is None or mode == stat.S_IMODE(st.st_mode)) and _link(src_full, dest_full):
        return  # the same inode: owner, mode and times are already right
    elif stat.S_ISREG(st.st_mode):
        with open(src_full, "rb") as fin, open(dest_full, "wb") as fout:
            try:
                size = st.st_size
                offset = 0
                while offset < size:
                    n = os.copy_file_range(fin.fileno(), fout.fileno(), size - offset)
                    if n == 0:
                        break
                    offset += n
            except OSError:
                fin.seek(0)
                fout.seek(0)
                fout.truncate()
                shutil.copyfileobj(fin, fout, 1 << 20)
    else:
        return  # devices, sockets and fifos of a context are not copied
    os.lchown(dest_full, owner[0], owner[1])
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dest_full, mode if mode is not None else stat.S_IMODE(st.st_mode))
        os.utime(dest_full, ns=(st.st_mtime_ns, st.st_mtime_ns))
    else:
        os.utime(dest_full, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)


def copy_tree(src_root: str, walk, upper: str, dest_rel: str, owner: tuple[int, int],
              mode: int | None, src_rel: str) -> None:
    """Copy what `walk` yields (paths relative to the context, starting at `src_rel`) to
    `dest_rel` in the upper dir: a directory's contents go into dest_rel."""
    dirs = []
    for rel, st in walk:
        inner = rel[len(src_rel):].lstrip("/") if src_rel else rel
        dest = os.path.join(upper, dest_rel, inner) if inner else os.path.join(upper, dest_rel)
        src_full = os.path.join(src_root, rel) if rel else src_root
        if not inner and stat.S_ISDIR(st.st_mode):
            continue  # the source dir itself: its contents go into the destination
        _copy_entry(src_full, st, dest, owner, mode)
        if stat.S_ISDIR(st.st_mode):
            dirs.append((dest, st))
    for dest, st in reversed(dirs):  # directory times last: filling them changed them
        os.utime(dest, ns=(st.st_mtime_ns, st.st_mtime_ns))


def copy_sources(ctx: ContextDir, sources: list[str], upper: str, lowers: list[str],
                 dest: str, dest_is_dir_hint: bool, owner: tuple[int, int] | None,
                 mode: int | None) -> None:
    """COPY: the sources into the layer directory `upper` at the image path `dest`."""
    owner_or_root = owner or (0, 0)
    many = len(sources) > 1
    dest_rel = resolve_in_image(lowers, upper, dest)
    st_dest = image_stat(lowers, upper, dest_rel)
    dest_is_dir = dest_is_dir_hint or many or (st_dest is not None and
                                               stat.S_ISDIR(st_dest.st_mode))
    if many and not (dest.endswith("/") or dest_is_dir_hint):
        if st_dest is None or not stat.S_ISDIR(st_dest.st_mode):
            raise ContextError("When using COPY with more than one source file, the "
                               "destination must be a directory and end with a /")
    for src in sources:
        src_st = os.lstat(ctx.path(src))
        if stat.S_ISDIR(src_st.st_mode):
            make_dirs(lowers, upper, dest_rel, owner)
            copy_tree(ctx.root, ctx.walk(src), upper, dest_rel, owner_or_root, mode, src)
        else:
            target = posixpath.join(dest_rel, posixpath.basename(src)) if dest_is_dir \
                else dest_rel
            make_dirs(lowers, upper, posixpath.dirname(target), owner)
            copy_tree(ctx.root, [(src, src_st)], upper, target, owner_or_root, mode, src)


def is_archive(path: str) -> bool:
    """A tar (plain, gzip, bzip2 or xz), as ADD recognises one by its content."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def unpack_archive(path: str, upper: str, lowers: list[str], dest_rel: str,
                   scratch: str) -> None:
    """ADD of a local tar: its entries go into dest_rel (created), ownership kept."""
    os.makedirs(scratch)
    try:
        with open(path, "rb") as f:
            apply_layer(f, scratch)
        make_dirs(lowers, upper, dest_rel, None)

        def walk(rel=""):
            full = os.path.join(scratch, rel) if rel else scratch
            st = os.lstat(full)
            yield rel, st
            if stat.S_ISDIR(st.st_mode):
                for name in sorted(os.listdir(full)):
                    yield from walk(posixpath.join(rel, name) if rel else name)

        for rel, st in walk():
            if not rel:
                continue
            dest = os.path.join(upper, dest_rel, rel)
            _copy_entry(os.path.join(scratch, rel), st, dest, (st.st_uid, st.st_gid), None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
