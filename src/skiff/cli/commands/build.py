"""`skiff build` (and `skiff builder prune`): the context sent as a tar to POST /build, as the
docker CLI's classic builder sends it.

The context is a directory (walked in name order, `.dockerignore` applied, the Dockerfile
and .dockerignore always sent, owners 0:0 as docker's CLI writes them), a tar file, or `-`
(stdin: a tar, or a lone Dockerfile with an empty context). `-f` names the Dockerfile: inside
the context it is sent by its path there, outside it (or `-f -`) it is added to the tar under
a private name. The tar is streamed (chunked) while it is written; nothing is spooled.
"""

from __future__ import annotations

import io
import json
import os
import stat

from skiff.cli import tarwriter
from skiff.cli.context import StatusError

CHUNK = 1 << 20


def _tar_header(name: str, st: os.stat_result, link: str = "") -> bytes:
    if stat.S_ISDIR(st.st_mode):
        kind, size = tarwriter.DIRECTORY, 0
    elif stat.S_ISLNK(st.st_mode):
        kind, size = tarwriter.SYMLINK, 0
    else:
        kind, size = tarwriter.REGULAR, st.st_size
    return tarwriter.header(name, mode=stat.S_IMODE(st.st_mode), size=size,
                            mtime=int(st.st_mtime), kind=kind, link=link)


def _file_entry(name: str, data: bytes, mode: int = 0o644, mtime: int | None = None) -> bytes:
    if mtime is None:
        import time

        mtime = int(time.time())
    return tarwriter.header(name, mode=mode, size=len(data), mtime=mtime) + data + \
        tarwriter.padding(len(data))


def context_entries(root: str, ignore, always: set[str]):
    """(relative path, stat) of what the context sends, parents first, sorted."""
    matching = bool(ignore.patterns)

    def walk(rel: str, full: str):
        try:
            with os.scandir(full) as it:
                found = sorted((e.name, e) for e in it)
        except PermissionError as e:
            raise StatusError(1, f"error checking context: can't stat '{full}': {e}") from None
        for name, entry in found:
            child = f"{rel}/{name}" if rel else name
            st = entry.stat(follow_symlinks=False)
            excluded = matching and ignore.excluded(child) and child not in always
            if stat.S_ISDIR(st.st_mode):
                if excluded and not ignore.may_include_below(child):
                    continue
                if not excluded:
                    yield child, st
                yield from walk(child, entry.path)
            elif not excluded:
                yield child, st

    yield from walk("", root)


def _file_data(rel: str, full: str, st: os.stat_result):
    try:
        f = open(full, "rb")
    except PermissionError as e:
        raise StatusError(1, f"error checking context: can't open '{full}': {e}") from None
    with f:
        yield _tar_header(rel, st)
        left = st.st_size
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise StatusError(1, f"file changed while it was read: {full}")
            left -= len(chunk)
            yield chunk
        pad = (512 - st.st_size % 512) % 512
        if pad:
            yield b"\0" * pad


def context_tar(root: str, ignore, always: set[str], extra: dict[str, bytes]):
    """The context as tar bytes, chunk by chunk."""
    for rel, st in context_entries(root, ignore, always):
        full = os.path.join(root, rel)
        if stat.S_ISLNK(st.st_mode):
            yield _tar_header(rel, st, os.readlink(full))
        elif stat.S_ISDIR(st.st_mode):
            yield _tar_header(rel, st)
        elif stat.S_ISREG(st.st_mode):
            yield from _file_data(rel, full, st)
    for name, data in extra.items():
        yield _file_entry(name, data)
    yield b"\0" * 1024


MANIFEST_NAME = ".skiff-context-manifest.json"   # build/context_store.py's


def manifest_of(entries: list, extra: dict[str, bytes]) -> list:
    """[path, kind, mode, size, mtime_ns, link] for each path the context sends."""
    out = []
    for rel, st, link in entries:
        kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
        out.append([rel, kind, stat.S_IMODE(st.st_mode), st.st_size if kind == "f" else 0,
                    st.st_mtime_ns, link])
    for name, data in extra.items():
        out.append([name, "f", 0o644, len(data), 0, ""])
    return out


def partial_tar(root: str, manifest: list, need: set[str], extra: dict[str, bytes]):
    """The manifest first, then only the files the daemon asked for."""
    yield _file_entry(MANIFEST_NAME, json.dumps(manifest, separators=(",", ":")).encode())
    for rel, kind, mode, size, mtime, link in manifest:
        if rel not in need:
            continue
        if rel in extra:
            yield _file_entry(rel, extra[rel], mode=mode, mtime=0)
            continue
        full = os.path.join(root, rel)
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            yield _tar_header(rel, st, os.readlink(full))
        elif stat.S_ISREG(st.st_mode):
            yield from _file_data(rel, full, st)
    yield b"\0" * 1024


def _is_tar(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or \
        head[:4] == b"\x28\xb5\x2f\xfd" or (len(head) >= 262 and head[257:262] == b"ustar")


def _key_values(items: list[str], what: str, env_fallback: bool = False) -> dict:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise StatusError(125, f"invalid argument \"{item}\" for \"--{what}\" flag")
        if eq:
            out[key] = value
        elif env_fallback:
            if key in os.environ:
                out[key] = os.environ[key]
        else:
            out[key] = ""
    return out


def _parse_output(values: list[str]) -> dict | None:
    if not values:
        return None
    text = values[-1]
    if "=" not in text:
        return {"type": "tar", "dest": "-"} if text == "-" else {"type": "local", "dest": text}
    fields = dict(part.partition("=")[::2] for part in text.split(","))
    kind = fields.get("type", "")
    if kind not in ("tar", "local"):
        raise StatusError(125, f"invalid output type {kind!r}: skiff writes type=tar or "
                               f"type=local")
    if not fields.get("dest"):
        raise StatusError(125, f"dest is required for the {kind} output")
    return {"type": kind, "dest": fields["dest"]}


def cmd_build(cli, opts, args) -> int:
    from skiff.cli.progress import render_stream
    from skiff.dockerignore import IgnoreMatcher

    source = args[0]
    output = _parse_output(opts.output)
    params: dict = {"t": list(opts.tag) or None, "q": 1 if opts.quiet else None,
                    "nocache": 1 if opts.no_cache else None, "pull": 1 if opts.pull else None,
                    "rm": 1 if opts.rm else 0, "forcerm": 1 if opts.force_rm else None,
                    "target": opts.target or None, "networkmode": opts.network or None,
                    "platform": opts.platform or None}
    build_args = _key_values(opts.build_arg, "build-arg", env_fallback=True)
    if build_args:
        params["buildargs"] = json.dumps(build_args)
    labels = _key_values(opts.label, "label")
    if labels:
        params["labels"] = json.dumps(labels)
    if opts.cache_from:
        params["cachefrom"] = json.dumps(list(opts.cache_from))
    dockerfile_text: bytes | None = None
    kept = None   # a directory context: skiffd keeps it and takes only what changed
    if opts.file == "-":
        if source == "-":
            raise StatusError(1, "invalid argument: can't use stdin for both build context "
                                 "and dockerfile")
        dockerfile_text = getattr(cli.stdin, "buffer", cli.stdin).read()
    headers = {"Content-Type": "application/x-tar"}
    if source == "-":
        stdin = getattr(cli.stdin, "buffer", cli.stdin)
        head = stdin.read(512)
        if _is_tar(head):
            def body():
                yield head
                while chunk := stdin.read(CHUNK):
                    yield chunk
            params["dockerfile"] = opts.file or None
        else:
            data = head + stdin.read()
            name = "Dockerfile"
            body = lambda: iter([_file_entry(name, data), b"\0" * 1024])  # noqa: E731
            params["dockerfile"] = name
    elif os.path.isfile(source):
        f = open(source, "rb")

        def body():
            with f:
                while chunk := f.read(CHUNK):
                    yield chunk
        params["dockerfile"] = opts.file or None
    elif os.path.isdir(source):
        root = os.path.abspath(source)
        extra: dict[str, bytes] = {}
        dockerfile_name = "Dockerfile"
        if dockerfile_text is not None:
            dockerfile_name = f".dockerfile.{os.urandom(10).hex()}"
            extra[dockerfile_name] = dockerfile_text
        elif opts.file:
            path = os.path.abspath(opts.file)
            rel = os.path.relpath(path, root)
            if rel.startswith(".."):
                try:
                    with open(path, "rb") as fh:
                        extra_text = fh.read()
                except OSError as e:
                    raise StatusError(1, f"unable to prepare context: unable to evaluate "
                                         f"symlinks in Dockerfile path: {e}") from None
                dockerfile_name = f".dockerfile.{os.urandom(10).hex()}"
                extra[dockerfile_name] = extra_text
            else:
                dockerfile_name = rel.replace(os.sep, "/")
                if not os.path.exists(path):
                    raise StatusError(1, f"unable to prepare context: unable to evaluate "
                                         f"symlinks in Dockerfile path: lstat {path}: no such "
                                         f"file or directory")
        elif not os.path.exists(os.path.join(root, "Dockerfile")):
            raise StatusError(1, f"unable to prepare context: unable to evaluate symlinks in "
                                 f"Dockerfile path: lstat {os.path.join(root, 'Dockerfile')}: "
                                 f"no such file or directory")
        ignore_lines: list[str] = []
        for candidate in (os.path.join(root, dockerfile_name + ".dockerignore"),
                          os.path.join(root, ".dockerignore")):
            if os.path.isfile(candidate):
                with open(candidate, encoding="utf-8", errors="replace") as fh:
                    ignore_lines = fh.read().splitlines()
                break
        try:
            ignore = IgnoreMatcher.from_lines(ignore_lines)
        except ValueError as e:
            raise StatusError(1, f"error checking context: {e}") from None
        always = {dockerfile_name, ".dockerignore"}
        body = lambda: context_tar(root, ignore, always, extra)  # noqa: E731
        kept = (root, ignore, always, extra)
        params["dockerfile"] = dockerfile_name
    elif "://" in source or source.startswith("git@"):
        raise StatusError(1, f"unable to prepare context: skiff builds from a local "
                             f"directory, a tar file or stdin, not {source}")
    else:
        raise StatusError(1, f"unable to prepare context: path \"{source}\" not found")

    if opts.iidfile:
        try:
            os.unlink(opts.iidfile)
        except FileNotFoundError:
            pass
    client = cli.client()
    image_id = None
    query = {k: v for k, v in params.items() if v is not None}
    resp = _send_changes(client, query, headers, *kept) if kept else None
    if resp is None:
        resp = client.request("POST", "/build", query, body=body(), headers=headers,
                              stream=True)
    streamed: list[str] = []
    with resp:
        def messages():
            for message in resp.iter_json():
                detail = message.get("errorDetail")
                if detail or message.get("error"):
                    text = (detail or {}).get("message") or message.get("error")
                    raise StatusError(int((detail or {}).get("code") or 1), text)
                if opts.quiet and message.get("stream"):
                    streamed.append(message["stream"])
                yield message

        # -q: the daemon streams nothing but the id, which is printed as docker's CLI does
        aux = render_stream(messages(), cli.stdout, cli.isatty(cli.stdout) and not opts.quiet)
        for item in aux:
            if isinstance(item, dict) and item.get("ID"):
                image_id = item["ID"]
    if image_id is None and opts.quiet and "".join(streamed).strip().startswith("sha256:"):
        image_id = "".join(streamed).strip()   # dockerd's quiet build sends no aux id
    if image_id and opts.iidfile:
        with open(opts.iidfile, "w") as f:
            f.write(image_id)
    if image_id and output:
        _write_output(cli, client, image_id, output)
    return 0


def _state_path(client, key: str) -> str:
    """Where the CLI remembers the manifest a daemon last accepted for a context."""
    import hashlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    host = getattr(client, "host", "") or ""
    name = hashlib.sha256(f"{host}\0{key}".encode()).hexdigest()[:32]
    return os.path.join(base, "skiff", "build-contexts", name + ".json")


def _load_state(path: str) -> dict:
    try:
        with open(path) as f:
            return {e[0]: e for e in json.load(f)}
    except (OSError, ValueError, TypeError, IndexError):
        return {}


def _save_state(path: str, manifest: list) -> None:
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(json.dumps(manifest, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError:
        pass   # only an optimisation: the next build asks the daemon instead


def _send_changes(client, query: dict, headers: dict, root: str, ignore, always: set[str],
                  extra: dict[str, bytes]):
    """skiffd keeps each directory context between builds: send the manifest and only the
    files that changed. The CLI remembers what the daemon last accepted, so that usually one
    request does; when the daemon's copy differs (409), it asks the daemon what it needs.
    None when the daemon does not offer this (a dockerd): then the whole context goes as
    docker's CLI sends it."""
    import hashlib

    from skiff.client.errors import APIError

    key = hashlib.sha256(f"{os.uname().nodename}\0{root}".encode()).hexdigest()
    entries = [(rel, st, os.readlink(os.path.join(root, rel)) if stat.S_ISLNK(st.st_mode)
                else "") for rel, st in context_entries(root, ignore, always)]
    manifest = manifest_of(entries, extra)
    state_path = _state_path(client, key)
    try:
        client.api_version  # the version handshake tells which daemon this is
    except APIError:
        pass
    if (getattr(client, "server_headers", {}) or {}).get("server", "").startswith("skiff/"):
        known = _load_state(state_path)
        guess = {e[0] for e in manifest if e[1] != "d" and known.get(e[0]) != e}
        try:
            resp = client.request("POST", "/build", dict(query, skiffcontext=key),
                                  body=partial_tar(root, manifest, guess, extra),
                                  headers=headers, stream=True)
            _save_state(state_path, manifest)
            return resp
        except APIError as e:
            if e.status != 409:
                raise
    for attempt in range(3):
        try:
            need = (client.json("POST", "/skiff/build/context", {"key": key},
                                json_body=manifest) or {}).get("Need") or []
        except APIError as e:
            if e.status in (404, 405, 501):
                return None
            raise
        try:
            resp = client.request("POST", "/build", dict(query, skiffcontext=key),
                                  body=partial_tar(root, manifest, set(need), extra),
                                  headers=headers, stream=True)
            _save_state(state_path, manifest)
            return resp
        except APIError as e:
            if e.status != 409 or attempt == 2:
                raise  # 409: another build changed the kept context meanwhile; ask again
    return None


def _write_output(cli, client, image_id: str, output: dict) -> None:
    """--output: the image's files, exported through a container that never runs."""
    created = client.post("/containers/create", json_body={
        "Image": image_id, "Cmd": ["/"], "Entrypoint": [""], "Labels": {}})
    cid = created["Id"]
    try:
        with client.request("GET", f"/containers/{cid}/export", stream=True) as resp:
            if output["type"] == "tar":
                if output["dest"] == "-":
                    target = getattr(cli.stdout, "buffer", cli.stdout)
                    for chunk in resp.iter_chunks(CHUNK):
                        target.write(chunk)
                    target.flush()
                else:
                    with open(output["dest"], "wb") as f:
                        for chunk in resp.iter_chunks(CHUNK):
                            f.write(chunk)
            else:
                os.makedirs(output["dest"], exist_ok=True)
                reader = io.BufferedReader(_ChunkReader(resp.iter_chunks(CHUNK)), CHUNK)
                from skiff.tarfilters import tarfile

                with tarfile.open(fileobj=reader, mode="r|") as tar:
                    tar.extractall(output["dest"], filter="tar")
    finally:
        client.request("DELETE", f"/containers/{cid}", {"force": 1}).close()


class _ChunkReader(io.RawIOBase):
    """A response's chunks as a file for tarfile."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.buf:
            try:
                self.buf = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def cmd_builder_prune(cli, opts, args) -> int:
    from skiff.cli import format as fmt

    if not opts.force:
        cli.out("WARNING! This will remove all dangling build cache. Are you sure you want to "
                "continue? [y/N] ", end="")
        try:
            cli.stdout.flush()
        except (AttributeError, OSError):
            pass
        answer = (cli.stdin.readline() if cli.stdin else "").strip().lower()
        if answer not in ("y", "yes"):
            return 0
    result = cli.client().post("/build/prune", {"all": 1 if opts.all else None}) or {}
    deleted = result.get("CachesDeleted") or []
    if deleted:
        cli.out("Deleted build cache objects:")
        for item in deleted:
            cli.out(item)
        cli.out("")
    cli.out(f"Total reclaimed space: {fmt.human_size(result.get('SpaceReclaimed') or 0)}")
    return 0
