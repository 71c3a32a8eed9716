"""/images/...: list (with filters), load, save, import, inspect, history, tag, remove, prune.
`POST /images/create` imports with `fromSrc`; `fromImage` (pull) is api/distribution.py's."""

from __future__ import annotations

import asyncio
import io
import queue
import tempfile
import threading

from skiff.api.http import Request, Response, StreamingResponse, json_response
from skiff.errors import InvalidArgument, SkiffError
from skiff.wire.filters import parse_filters, validate_filters
from skiff.timefmt import parse_rfc3339
from skiff.wire import progress

LOAD_SPOOL_LIMIT = 64 * 1024 * 1024  # import bodies larger than this are spooled to disk
BODY_QUEUE = 64                       # request chunks in flight between the loop and a loader
BODY_BUFFER = 1 << 20


def image_summary(image) -> dict:
    return {
        "Id": image.id, "ParentId": "", "RepoTags": list(image.repo_tags),
        "RepoDigests": list(getattr(image, "repo_digests", []) or []),
        "Created": int(parse_rfc3339(image.created)) if image.created else 0,
        "Size": image.size, "SharedSize": -1, "VirtualSize": image.size,
        "Labels": ((image.config or {}).get("config") or {}).get("Labels") or {},
        "Containers": -1,
    }


def image_inspect(image) -> dict:
    config = image.config or {}
    return {
        "Id": image.id, "RepoTags": list(image.repo_tags),
        "RepoDigests": list(getattr(image, "repo_digests", []) or []),
        "Parent": getattr(image, "parent", None) or "", "Comment": config.get("comment", ""),
        "Created": image.created or config.get("created", ""),
        "DockerVersion": "", "Author": config.get("author", ""),
        "Config": config.get("config") or {}, "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""), "Size": image.size, "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": {"Type": "layers", "Layers": list((config.get("rootfs") or {})
                                                     .get("diff_ids") or [])},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


class _BodyReader(io.RawIOBase):
    """The request body as a file for a worker thread, fed chunk by chunk from the event loop
    through a bounded queue (nothing is spooled to disk)."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue(BODY_QUEUE)
        self.buf = memoryview(b"")
        self.eof = False
        self.done = threading.Event()   # the worker stopped reading
        self.aborted = False            # the body will not be completed

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.buf and not self.eof:
            try:
                item = self.q.get(timeout=0.5)
            except queue.Empty:
                if self.aborted:
                    return 0  # the client went away: a truncated archive, refused
                continue
            if item is None:
                self.eof = True
            else:
                self.buf = memoryview(item)
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

    def put(self, item) -> None:
        """From a helper thread: wait for room unless the worker has stopped reading."""
        while not self.done.is_set():
            try:
                self.q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


async def body_to_thread(request: Request, fn):
    """Run `fn(fileobj)` in a thread while the request body streams into `fileobj`; the rest
    of the body is drained when `fn` stops early (an error in the archive)."""
    reader = _BodyReader()

    def work():
        try:
            return fn(io.BufferedReader(reader, BODY_BUFFER))
        finally:
            reader.done.set()

    task = asyncio.ensure_future(asyncio.to_thread(work))
    complete = False
    try:
        async for chunk in request.stream():
            if not reader.done.is_set():
                await asyncio.to_thread(reader.put, chunk)
        await asyncio.to_thread(reader.put, None)
        complete = True
    finally:
        if not complete:
            reader.aborted = True
    return await task


def disk_usage(engine) -> dict:
    """`GET /system/df`: images with their container counts and shared sizes, containers
    with the size of their writable layer, the total size of all layers."""
    from skiff.api.containers import summary

    images = engine.images
    records = images.list()
    containers = engine.containers.records.list()
    users: dict[str, int] = {}
    for c in containers:
        if c.image_id:
            users[c.image_id] = users.get(c.image_id, 0) + 1
    layer_size: dict[str, int] = {}
    layer_users: dict[str, int] = {}
    for r in records:
        for layer in r.layers:
            chain = layer["chainID"]
            layer_users[chain] = layer_users.get(chain, 0) + 1
            if chain not in layer_size:
                try:
                    layer_size[chain] = images.layer_size(layer)
                except SkiffError:
                    layer_size[chain] = 0
    out_images = []
    for r in records:
        row = image_summary(r)
        row["Containers"] = users.get(r.id, 0)
        row["SharedSize"] = sum(layer_size[l["chainID"]] for l in r.layers
                                if layer_users[l["chainID"]] > 1)
        out_images.append(row)
    image_sizes = {r.id: r.size for r in records}
    out_containers = []
    for c in containers:
        row = summary(c)
        try:
            rw = engine.snapshots.active_usage(c.id).size
        except SkiffError:
            rw = 0
        row["SizeRw"] = rw
        row["SizeRootFs"] = rw + image_sizes.get(c.image_id, 0)
        out_containers.append(row)
    volumes = []
    lister = getattr(getattr(engine, "volumes", None), "disk_usage", None)
    if callable(lister):
        volumes = lister()
    return {"LayersSize": sum(layer_size.values()), "Images": out_images,
            "Containers": out_containers, "Volumes": volumes, "BuildCache": []}


def hide_intermediate(records) -> list:
    """Without all=1 docker lists no untagged image that is another's parent (the images a
    build makes for its steps, which stay as its cache)."""
    parents = {r.parent for r in records if r.parent}
    return [r for r in records if r.repo_tags or r.id not in parents]


def _filtered(images, filters: dict) -> list:
    """`GET /images/json` filters as docker has them: dangling, reference (glob on the
    familiar name or name:tag), label / label!, before / since (another image), until."""
    import fnmatch

    from skiff.engine.image_ops import _matches

    records = images.list()
    for key in ("before", "since"):
        for value in filters.get(key, []):
            pivot = images.get(value)
            pivot_t = parse_rfc3339(pivot.created) if pivot.created else 0
            def keep(r, key=key, pivot_t=pivot_t):
                t = parse_rfc3339(r.created) if r.created else 0
                return t < pivot_t if key == "before" else t > pivot_t
            records = [r for r in records if keep(r)]
    if "dangling" in filters:
        values = {v.lower() for v in filters["dangling"]}
        if not values <= {"true", "false", "1", "0"}:
            raise InvalidArgument(f"Invalid filter 'dangling={filters['dangling'][0]}'")
        want = bool(values & {"true", "1"})
        records = [r for r in records if (not r.repo_tags) == want]
    if "reference" in filters:  # as docker: only the matching tags are listed
        import dataclasses

        def matching(r) -> list[str]:
            out = []
            for tag in r.repo_tags:
                name = tag.rpartition(":")[0] if ":" in tag.rsplit("/", 1)[-1] else tag
                if any(fnmatch.fnmatchcase(tag, p) or fnmatch.fnmatchcase(name, p)
                       for p in filters["reference"]):
                    out.append(tag)
            return out
        records = [dataclasses.replace(r, repo_tags=m) for r in records if (m := matching(r))]
    rest = {k: v for k, v in filters.items() if k in ("label", "label!", "until")}
    return [r for r in records if _matches(r, rest)]


def emit_image_event(engine, action: str, actor_id: str, name: str) -> None:
    """An image event as docker's LogImageEvent makes it: the image's labels as attributes
    (while it still exists), and `name`. Called on the event loop."""
    attributes: dict = {}
    try:
        record = engine.images.get(actor_id)
        attributes.update(((record.config or {}).get("config") or {}).get("Labels") or {})
    except SkiffError:
        pass
    attributes["name"] = name
    engine.events.emit("image", action, actor_id, attributes)


def routes(engine):
    images = engine.images

    async def list_(request: Request):
        filters = parse_filters(request.arg("filters"))
        validate_filters(filters, {"dangling", "reference", "label", "label!", "before",
                                   "since", "until"})
        found = await asyncio.to_thread(_filtered, images, filters)
        if not request.flag("all"):
            found = hide_intermediate(found)
        return json_response([image_summary(i) for i in found])

    async def inspect(request: Request):
        return json_response(image_inspect(images.get(request.match["name"])))

    async def load(request: Request):
        request.flag("quiet")
        try:
            loaded = await body_to_thread(request, images.load)
        except SkiffError as exc:
            return json_response({"message": exc.message}, exc.status)

        loaded_ids: list[str] = []   # docker: one `load` per image, its id as actor and name
        for line in loaded:
            for prefix in ("Loaded image: ", "Loaded image ID: "):
                if line.startswith(prefix):
                    ref = line[len(prefix):].strip()
                    try:
                        image_id = images.get(ref).id
                    except SkiffError:
                        image_id = ref
                    if image_id not in loaded_ids:
                        loaded_ids.append(image_id)
        for image_id in loaded_ids:
            image_event("load", image_id, image_id=image_id)

        async def body():
            for line in loaded:
                text = line if line.endswith("\n") else line + "\n"
                yield progress.encode(progress.stream_message(text))

        return StreamingResponse(body())

    def image_event(action: str, ref: str, image_id: str | None = None) -> None:
        """An image event as docker emits it: the image's id, its name as an attribute."""
        if image_id is None:
            try:
                image_id = images.get(ref).id
            except SkiffError:
                image_id = ref
        emit_image_event(engine, action, image_id, ref)

    async def delete(request: Request):
        target = images.get(request.match["name"]).id  # 404 as docker, before anything
        removed = await asyncio.to_thread(images.remove, request.match["name"],
                                          force=request.flag("force"))
        for item in removed:
            if "Untagged" in item:
                image_event("untag", item["Untagged"], image_id=target)
            if "Deleted" in item:
                image_event("delete", item["Deleted"], image_id=item["Deleted"])
        return json_response(removed)

    async def save(request: Request):
        from skiff.api.container_fs import stream_from_thread
        from skiff.engine import archive

        names = request.query.get("names") or []
        if "name" in request.match:
            names = [request.match["name"]]
        if not names:
            raise InvalidArgument("no image names given")
        selected = await asyncio.to_thread(archive.resolve_names, images, names)
        ready = await asyncio.to_thread(archive.Archive, images, selected)
        for record, _ in selected:  # docker logs `save` per image as the export starts
            emit_image_event(engine, "save", record.id, record.id)
        return stream_from_thread(ready.write_to, headers={"Content-Length": str(ready.size)})

    async def tag(request: Request):
        repo = request.arg("repo") or ""
        if not repo:
            raise InvalidArgument("repository name must be given")
        tag_text = request.arg("tag") or ""
        new_ref = await asyncio.to_thread(images.tag, request.match["name"],
                                          f"{repo}:{tag_text}" if tag_text else repo)
        image_event("tag", new_ref if isinstance(new_ref, str) else repo)
        return Response(201, b"", content_type="")

    async def history(request: Request):
        from skiff.engine import image_ops

        found = await asyncio.to_thread(image_ops.history, images, request.match["name"])
        return json_response(found)

    async def prune(request: Request):
        from skiff.engine import image_ops

        filters = parse_filters(request.arg("filters"))
        validate_filters(filters, {"dangling", "until", "label", "label!"})
        result = await asyncio.to_thread(image_ops.prune, images, True, filters)
        return json_response(result)

    pull_handler: dict = {}  # distribution's handler for fromImage, made once

    async def create(request: Request):
        if request.arg("fromSrc") is None:
            try:
                from skiff.api import distribution
            except ImportError:
                raise InvalidArgument("fromImage or fromSrc is required") from None
            if not pull_handler:
                pull_handler.update(
                    {(m, p): h for m, p, h in distribution.routes(engine)})
            return await pull_handler[("POST", "/images/create")](request)
        return await import_(request)

    async def import_(request: Request):
        from skiff.engine import image_ops

        source = request.arg("fromSrc")
        if source != "-":
            return await import_url(request, source)
        spool = tempfile.SpooledTemporaryFile(max_size=LOAD_SPOOL_LIMIT,
                                              dir=engine.config.root)
        try:
            async for chunk in request.stream():
                spool.write(chunk)
            spool.seek(0)
            try:
                image_id = await asyncio.to_thread(
                    image_ops.import_tarball, images, spool, repo=request.arg("repo") or "",
                    tag=request.arg("tag") or "", changes=request.query.get("changes") or [],
                    message=request.arg("message") or "")
            except SkiffError as exc:
                return json_response({"message": exc.message}, exc.status)
        finally:
            spool.close()
        emit_image_event(engine, "import", image_id, image_id)

        async def body():
            yield progress.encode({"status": image_id})

        return StreamingResponse(body())

    async def import_url(request: Request, source: str):
        from skiff.api.distribution import _stream
        from skiff.engine import image_ops

        await request.drain()
        image_ops.source_url(source)  # a bad scheme: 400 before the stream starts
        done: dict = {}

        def work(emit):
            done["id"] = image_ops.import_url(
                images, source, progress=emit, repo=request.arg("repo") or "",
                tag=request.arg("tag") or "", changes=request.query.get("changes") or [],
                message=request.arg("message") or "")
            emit({"status": done["id"]})

        return _stream(work, lambda: emit_image_event(engine, "import", done["id"],
                                                      done["id"]))

    async def df(request: Request):
        return json_response(await asyncio.to_thread(disk_usage, engine))

    return [
        ("GET", "/images/json", list_),
        ("GET", "/system/df", df),
        ("POST", "/images/load", load),
        ("GET", "/images/get", save),
        ("POST", "/images/prune", prune),
        ("POST", "/images/create", create),
        ("GET", "/images/{name:.+}/json", inspect),
        ("GET", "/images/{name:.+}/get", save),
        ("GET", "/images/{name:.+}/history", history),
        ("POST", "/images/{name:.+}/tag", tag),
        ("DELETE", "/images/{name:.+}", delete),
    ]
