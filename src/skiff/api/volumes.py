"""/volumes/...: list, create, inspect, remove, prune (docker's local driver)."""

from __future__ import annotations

import asyncio

from skiff.api import validate
from skiff.api.http import Request, Response, json_response
from skiff.errors import InvalidArgument
from skiff.wire import filters as wire_filters
from skiff.wire import version as wire_version

CREATE_BODY = {"Name": "string", "Driver": "string", "DriverOpts": "{string}|null",
               "Labels": "{string}|null", "ClusterVolumeSpec": "object|null"}


def prune_everything(api_version: str, filters: dict[str, list[str]]) -> bool:
    """Docker's rule: from API 1.42, prune removes only anonymous volumes unless the `all`
    filter is true; older clients get every unused volume removed, as they expect."""
    if wire_version.compare_versions(api_version, "1.42") < 0:
        return True
    values = filters.get("all") or []
    for value in values:
        if value.lower() not in ("1", "true", "0", "false"):
            raise InvalidArgument(f"invalid filter 'all={value}'")
    return any(v.lower() in ("1", "true") for v in values)


def routes(engine):
    volumes = engine.volumes

    async def list_(request: Request):
        filters = wire_filters.parse_filters(request.arg("filters"))
        found = await asyncio.to_thread(volumes.list, filters)
        return json_response({"Volumes": found, "Warnings": None})

    async def create(request: Request):
        body = await request.json(default=None)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON: body must be an object")
        validate.check(body, CREATE_BODY, "CreateOptions")
        if body.get("ClusterVolumeSpec"):
            raise InvalidArgument("cluster volumes need swarm mode, which skiff does not have")
        record = await asyncio.to_thread(volumes.create, body.get("Name") or None,
                                         body.get("Driver") or None, body.get("DriverOpts"),
                                         body.get("Labels"))
        return json_response(volumes.document(record), 201)

    async def inspect(request: Request):
        return json_response(volumes.inspect(request.match["name"]))

    async def delete(request: Request):
        await asyncio.to_thread(volumes.remove, request.match["name"], request.flag("force"))
        return Response(204)

    async def prune(request: Request):
        filters = wire_filters.parse_filters(request.arg("filters"))
        everything = prune_everything(request.api_version or wire_version.API_VERSION,
                                      filters)
        return json_response(await asyncio.to_thread(volumes.prune, filters, everything))

    return [
        ("GET", "/volumes", list_),
        ("POST", "/volumes/create", create),
        ("POST", "/volumes/prune", prune),
        ("GET", "/volumes/{name}", inspect),
        ("DELETE", "/volumes/{name}", delete),
        ("PUT", "/volumes/{name}", _swarm_only),
    ]


async def _swarm_only(request: Request):
    return json_response({"message": "volume updates need swarm mode (cluster volumes), "
                          "which skiff does not have"}, 503)
