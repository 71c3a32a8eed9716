"""Routing for the Engine API: version prefixes, common headers, errors as Docker writes them.

Each resource module (system.py, containers.py, images.py) exposes `routes(engine)`: a list of
(method, pattern, handler). Patterns use `{name}` for one path segment and `{name:.+}` for the
rest (image names contain slashes).
"""

from __future__ import annotations

import logging
import re

from skiff import __version__
from skiff.api.http import HTTPError, Request, Response, json_response
from skiff.errors import SkiffError
from skiff.wire import version as wire_version

log = logging.getLogger("skiffd")

UNSUPPORTED = ("swarm", "nodes", "services", "tasks", "secrets", "configs", "plugins")


def compile_pattern(pattern: str) -> re.Pattern:
    def group(m: re.Match) -> str:
        name, _, rx = m.group(1).partition(":")
        return f"(?P<{name}>{rx or '[^/]+'})"

    return re.compile("^" + re.sub(r"\{([^}]+)\}", group, pattern) + "$")


class App:
    def __init__(self, engine):
        from skiff.api import execs, container_fs, containers, distribution, images, system
        from skiff.api import update

        self.engine = engine
        self.routes: list[tuple[str, re.Pattern, object]] = []
        for module in (system, execs, containers, images, distribution, container_fs, update):
            for method, pattern, handler in module.routes(engine):
                self.routes.append((method, compile_pattern(pattern), handler))
        from skiff.api import volumes

        for method, pattern, handler in volumes.routes(engine):
            self.routes.append((method, compile_pattern(pattern), handler))

        from skiff.api import build   # /build, /build/prune (the builder)

        for method, pattern, handler in build.routes(engine):
            self.routes.append((method, compile_pattern(pattern), handler))

        from skiff.api import networks   # /networks (networking)

        for method, pattern, handler in networks.routes(engine):
            self.routes.append((method, compile_pattern(pattern), handler))

    def common_headers(self) -> dict[str, str]:
        return {"Api-Version": wire_version.API_VERSION, "Ostype": "linux",
                "Server": f"skiff/{__version__} (linux)", "Docker-Experimental": "false"}

    async def dispatch(self, request: Request):
        version, path = wire_version.split_version_prefix(request.raw_path)
        try:
            if version is not None:
                wire_version.check_request_version(version)
            request.api_version = version or wire_version.API_VERSION
            request.path = path
            return await self._route(request)
        except SkiffError as exc:
            if exc.status == 304:
                return Response(304, b"")
            return json_response({"message": exc.message}, exc.status)
        except HTTPError:
            raise
        except Exception as exc:  # a bug: say so as docker would, and keep serving
            log.exception("%s %s failed", request.method, request.raw_path)
            return json_response({"message": f"skiffd: {type(exc).__name__}: {exc}"}, 500)

    async def _route(self, request: Request):
        method = "GET" if request.method == "HEAD" else request.method
        path_known = False
        for route_method, pattern, handler in self.routes:
            m = pattern.match(request.path)
            if not m:
                continue
            path_known = True
            if route_method == method:
                request.match = m.groupdict()
                return await handler(request)
        first = request.path.strip("/").split("/")[0]
        if first in UNSUPPORTED:
            return json_response({"message": "This node is not a swarm manager. skiff does "
                                  "not implement swarm mode."}, 503)
        if path_known:
            return json_response({"message": "method not allowed"}, 405)
        return json_response({"message": "page not found"}, 404)
