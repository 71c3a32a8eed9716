"""POST /containers/{id}/update: docker's UpdateConfig in, {"Warnings": [...]} out."""

from __future__ import annotations

from skiff.api import validate
from skiff.api.http import Request, json_response
from skiff.errors import InvalidArgument


def routes(engine):
    async def update(request: Request):
        body = await request.json(default=None)
        if body is None:
            raise InvalidArgument("invalid update request: empty body")
        validate.container_update(body)
        warnings = await engine.update.update(request.match["id"], body)
        return json_response({"Warnings": warnings or []})

    return [("POST", "/containers/{id}/update", update)]
