"""/images/...: list, load, inspect, remove; pull answers until the registry client exists."""

from __future__ import annotations

import asyncio
import tempfile

from skiff.api.http import Request, Response, StreamingResponse, json_response
from skiff.errors import NotFound, SkiffError
from skiff.oci import reference
from skiff.timefmt import parse_rfc3339
from skiff.wire import progress

LOAD_SPOOL_LIMIT = 64 * 1024 * 1024  # bodies larger than this are spooled to disk


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
        "RepoDigests": list(getattr(image, "repo_digests", []) or []), "Parent": "",
        "Comment": "", "Created": image.created or config.get("created", ""),
        "DockerVersion": "", "Author": config.get("author", ""),
        "Config": config.get("config") or {}, "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""), "Size": image.size, "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": {"Type": "layers", "Layers": list((config.get("rootfs") or {})
                                                     .get("diff_ids") or [])},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def routes(engine):
    images = engine.images

    async def list_(request: Request):
        return json_response([image_summary(i) for i in images.list()])

    async def inspect(request: Request):
        return json_response(image_inspect(images.get(request.match["name"])))

    async def load(request: Request):
        quiet = request.flag("quiet")
        spool = tempfile.SpooledTemporaryFile(max_size=LOAD_SPOOL_LIMIT,
                                              dir=engine.config.root)
        try:
            async for chunk in request.stream():
                spool.write(chunk)
            spool.seek(0)
            try:
                loaded = await asyncio.to_thread(images.load, spool)
            except SkiffError as exc:
                return json_response({"message": exc.message}, exc.status)
        finally:
            spool.close()

        async def body():
            for line in loaded:
                text = line if line.endswith("\n") else line + "\n"
                yield progress.encode(progress.stream_message(text))

        return StreamingResponse(body())

    async def delete(request: Request):
        removed = await asyncio.to_thread(images.remove, request.match["name"],
                                          force=request.flag("force"))
        return json_response(removed)

    return [
        ("GET", "/images/json", list_),
        ("POST", "/images/load", load),
        ("GET", "/images/{name:.+}/json", inspect),
        ("DELETE", "/images/{name:.+}", delete),
    ]
