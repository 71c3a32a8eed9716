"""/networks: list, inspect, create, delete, prune, connect, disconnect."""

from __future__ import annotations

from skiff.api import validate
from skiff.api.http import Request, Response, json_response
from skiff.errors import InvalidArgument
from skiff.wire import filters as wire_filters


def _body(value, where: str, schema: dict | None = None) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid JSON body for {where}: expected an object")
    if schema:
        validate.check(value, schema, where)
    return value


def routes(engine):
    networks = engine.networks

    async def list_(request: Request):
        filters = wire_filters.parse_filters(request.arg("filters"))
        return json_response(networks.list(filters))

    async def inspect(request: Request):
        return json_response(networks.inspect(request.match["id"]))

    async def create(request: Request):
        body = _body(await request.json(default=None), "NetworkCreateRequest",
                     validate.NETWORK_CREATE)
        return json_response(await networks.create(body), 201)

    async def delete(request: Request):
        await networks.remove(request.match["id"])
        return Response(204)

    async def prune(request: Request):
        filters = wire_filters.parse_filters(request.arg("filters"))
        return json_response(await networks.prune(filters))

    async def connect(request: Request):
        body = _body(await request.json(default=None), "NetworkConnect",
                     validate.NETWORK_CONNECT)
        await networks.connect(request.match["id"], body.get("Container") or "",
                               body.get("EndpointConfig") or {})
        return Response(200)

    async def disconnect(request: Request):
        body = _body(await request.json(default=None), "NetworkDisconnect",
                     validate.NETWORK_DISCONNECT)
        await networks.disconnect(request.match["id"], body.get("Container") or "",
                                  bool(body.get("Force")))
        return Response(200)

    return [
        ("GET", "/networks", list_),
        ("GET", "/networks/", list_),
        ("POST", "/networks/create", create),
        ("POST", "/networks/prune", prune),
        ("GET", "/networks/{id}", inspect),
        ("DELETE", "/networks/{id}", delete),
        ("POST", "/networks/{id}/connect", connect),
        ("POST", "/networks/{id}/disconnect", disconnect),
    ]
