"""/containers/...: create, start, attach, wait, logs, resize, kill, stop, delete, list, inspect."""

from __future__ import annotations

import asyncio
import time

from skiff.api import validate
from skiff.api.http import HIJACKED, Request, Response, StreamingResponse, json_response
from skiff.engine.mounts import inspect_mounts
from skiff.errors import InvalidArgument
from skiff.timefmt import human_duration, parse_rfc3339
from skiff.wire import filters as wire_filters
from skiff.wire.detach import DEFAULT_DETACH_KEYS, EscapeDetector, detach_sequence
from skiff.wire.framing import encode_frame

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def status_text(state: dict, now: float | None = None) -> str:
    """The STATUS column of `docker ps`."""
    now = time.time() if now is None else now
    status = state.get("Status")
    if status in ("running", "paused"):
        text = "Up " + human_duration(now - parse_rfc3339(state["StartedAt"]))
        if state.get("Paused"):
            return text + " (Paused)"
        health = (state.get("Health") or {}).get("Status")
        if health == "starting":
            return text + " (health: starting)"
        return f"{text} ({health})" if health else text
    if status == "exited":
        finished = state.get("FinishedAt")
        if not finished or finished.startswith("0001"):
            return "Exited ({})".format(state.get("ExitCode", 0))
        return "Exited ({}) {} ago".format(state.get("ExitCode", 0),
                                           human_duration(now - parse_rfc3339(finished)))
    if status == "created":
        return "Created"
    if status == "restarting":
        return "Restarting ({}) {} ago".format(
            state.get("ExitCode", 0), human_duration(now - parse_rfc3339(state["FinishedAt"])))
    return str(status).capitalize()


def command_text(document: dict) -> str:
    return " ".join([document["Path"]] + list(document["Args"]))


_summaries: dict[int, tuple] = {}  # id(record) -> (record, summary without Status)


def summary(record) -> dict:
    """A row of `GET /containers/json`; all but the time-dependent Status is computed once
    per version of the record (records are immutable; the engine caches them)."""
    cached = _summaries.get(id(record))
    if cached is None or cached[0] is not record:
        if len(_summaries) > 4096:
            _summaries.clear()
        cached = (record, _summary(record))
        _summaries[id(record)] = cached
    return dict(cached[1], Status=status_text(record.state))


_network_summaries: dict[int, tuple] = {}


def network_summary(engine, record) -> dict:
    """The row's Ports, HostConfig.NetworkMode and NetworkSettings: computed from the
    database, so kept while neither the record nor the database has changed (listing 100
    containers asked SQLite a few hundred questions per request otherwise)."""
    generation = engine.db.generation
    cached = _network_summaries.get(id(record))
    if cached is None or cached[0] is not record or cached[1] != generation:
        if len(_network_summaries) > 4096:
            _network_summaries.clear()
        cached = (record, generation, engine.networks.summary(record))
        _network_summaries[id(record)] = cached
    return cached[2]


def _summary(record) -> dict:
    doc = record.config
    return {
        "Id": record.id, "Names": ["/" + record.name], "Image": doc.get("ImageRef", ""),
        "ImageID": record.image_id or "", "Command": command_text(doc),
        "Created": int(parse_rfc3339(record.created)), "Ports": [],
        "Labels": doc["Config"].get("Labels") or {}, "State": record.state["Status"],
        "Status": status_text(record.state),
        "HostConfig": {"NetworkMode": doc["HostConfig"].get("NetworkMode") or "none"},
        "NetworkSettings": {"Networks": {}},
        "Mounts": inspect_mounts(doc.get("MountPoints") or []),
    }


def inspect_document(engine, record) -> dict:
    doc = record.config
    cdir = engine.containers.container_dir(record.id)
    host_config = {"NetworkMode": "none", "AutoRemove": False, "Privileged": False,
                   "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                   "LogConfig": {"Type": "json-file", "Config": {}}, "Binds": None,
                   **doc["HostConfig"]}
    return {
        "Id": record.id, "Created": record.created, "Path": doc["Path"], "Args": doc["Args"],
        "State": record.state, "Image": record.image_id or "",
        "ResolvConfPath": f"{cdir}/resolv.conf", "HostnamePath": f"{cdir}/hostname",
        "HostsPath": f"{cdir}/hosts", "LogPath": engine.containers.log_path(record.id),
        "Name": "/" + record.name, "RestartCount": doc.get("RestartCount", 0),
        "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": engine.execs.ids_of(record.id) or None, "HostConfig": host_config,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "Mounts": inspect_mounts(doc.get("MountPoints") or []),
        "Config": doc["Config"],
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "Ports": {}, "SandboxKey": "",
                            "Networks": {}},
    }


def _matches(record, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key == "status" and record.state["Status"] not in values:
            return False
        if key == "name" and not any(v.lstrip("/") in record.name for v in values):
            return False
        if key == "id" and not any(record.id.startswith(v) for v in values):
            return False
        if key == "volume":   # a volume's name or a mount's destination, as docker has it
            points = record.config.get("MountPoints") or []
            if not any(p.get("Name") == v or p["Destination"] == v or p.get("Source") == v
                       for p in points for v in values):
                return False
        if key == "label":
            labels = record.config["Config"].get("Labels") or {}
            for v in values:
                k, eq, want = v.partition("=")
                if k not in labels or (eq and labels[k] != want):
                    return False
        if key == "health":
            health = (record.state.get("Health") or {}).get("Status") or "none"
            if health not in values:
                return False
        if key == "ancestor":
            ref = record.config.get("ImageRef", "")
            image_id = record.image_id or ""
            if not any(v in (ref, image_id) or image_id.startswith(v) or
                       ref == v + ":latest" or ref.split(":")[0] == v for v in values):
                return False
        if key == "exited":
            if record.state["Status"] != "exited" or \
                    str(record.state.get("ExitCode")) not in values:
                return False
    return True


def routes(engine):
    containers = engine.containers

    async def create(request: Request):
        body = validate.container_create(await request.json(default=None))
        record = await asyncio.to_thread(containers.create, body, request.arg("name"))
        return json_response({"Id": record.id,
                              "Warnings": record.config.get("Warnings") or []}, 201)

    async def start(request: Request):
        await containers.start(request.match["id"])
        return Response(204)

    async def wait(request: Request):
        condition = request.arg("condition") or "not-running"
        containers.get(request.match["id"])  # 404 before we answer 200

        async def body():
            result = await containers.wait(request.match["id"], condition)
            yield (__import__("json").dumps(result) + "\n").encode()

        return StreamingResponse(body())

    async def attach(request: Request):
        want_stdin = request.flag("stdin")
        want_stdout = request.flag("stdout")
        want_stderr = request.flag("stderr")
        try:
            keys = detach_sequence(request.arg("detachKeys") or DEFAULT_DETACH_KEYS)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        record, stream = await containers.attach(request.match["id"], stdin=want_stdin)
        tty = record.config["Config"]["Tty"]
        # docker detaches on the keys only with a terminal
        detector = EscapeDetector(keys) if want_stdin and tty else None
        conn = await request.hijack(RAW_STREAM if tty else MULTIPLEXED_STREAM)
        if stream is None:  # the container ended between lookup and attach
            await conn.close()
            return HIJACKED

        detached = asyncio.Event()

        async def pump_stdin():
            while True:
                data = await conn.read()
                if not data:
                    if conn.peer_gone():  # gone (or detached by its own keys): stdin stays
                        detached.set()
                    else:  # its input ended
                        stream.close_stdin()
                    return
                if detector is not None:
                    data, done = detector.feed(data)
                    if data:
                        await stream.send_stdin(data)
                    if done:  # the client leaves; the container runs on
                        detached.set()
                        return
                elif want_stdin:
                    await stream.send_stdin(data)

        stdin_task = asyncio.ensure_future(pump_stdin())
        detach_wait = asyncio.ensure_future(detached.wait())
        try:
            while True:
                next_item = asyncio.ensure_future(stream.next())
                await asyncio.wait({next_item, detach_wait},
                                   return_when=asyncio.FIRST_COMPLETED)
                if detached.is_set():
                    next_item.cancel()
                    break
                item = next_item.result()
                if item is None or item[0] == 3:
                    break
                which, data = item
                if (which == 1 and not want_stdout) or (which == 2 and not want_stderr):
                    continue
                if not await conn.write(data if tty else encode_frame(which, data)):
                    break
        finally:
            stdin_task.cancel()
            detach_wait.cancel()
            stream.close()
            await conn.close()
        return HIJACKED

    async def logs(request: Request):
        follow = request.flag("follow")
        stdout, stderr = request.flag("stdout"), request.flag("stderr")
        if not (stdout or stderr):
            raise InvalidArgument("You must choose at least one stream")
        tail = request.arg("tail", "all")
        options = {
            "stdout": stdout, "stderr": stderr, "follow": follow,
            "timestamps": request.flag("timestamps"), "details": request.flag("details"),
            "tail": None if tail in ("all", "", None) else int(tail),
            "since": float(request.arg("since")) if request.arg("since") not in (None, "", "0")
            else None,
            "until": float(request.arg("until")) if request.arg("until") not in (None, "", "0")
            else None,
        }
        record, lines = containers.logs(request.match["id"], **options)
        tty = record.config["Config"]["Tty"]

        async def body():
            async for batch in lines:
                if tty:
                    yield b"".join(data for _, data in batch)
                else:
                    yield b"".join(encode_frame(stream, data) for stream, data in batch)

        return StreamingResponse(body(), content_type=RAW_STREAM if tty else MULTIPLEXED_STREAM)

    async def resize(request: Request):
        await containers.resize(request.match["id"], request.int_arg("h", 0),
                                request.int_arg("w", 0))
        return Response(200, b"", content_type="text/plain")

    async def kill(request: Request):
        await containers.kill(request.match["id"], request.arg("signal"))
        return Response(204)

    async def stop(request: Request):
        await containers.stop(request.match["id"], request.int_arg("t"), request.arg("signal"))
        return Response(204)

    async def restart(request: Request):
        await containers.restart(request.match["id"], request.int_arg("t"),
                                 request.arg("signal"))
        return Response(204)

    async def rename(request: Request):
        containers.rename(request.match["id"], request.arg("name") or "")
        return Response(204)

    async def prune(request: Request):
        filters = wire_filters.parse_filters(request.arg("filters"))
        return json_response(await containers.prune(filters))

    async def stats(request: Request):
        from skiff.engine import stats as cgroup_stats
        from skiff.timefmt import rfc3339_nano

        record = containers.get(request.match["id"])
        stream = request.flag("stream", True)
        one_shot = request.flag("one-shot")

        def take(previous: dict | None) -> dict:
            current = containers.get(record.id)
            pid = current.state.get("Pid") or 0
            if not current.state.get("Running") or not pid:
                data = {"cpu_stats": cgroup_stats.EMPTY_CPU, "memory_stats": {},
                        "pids_stats": {}, "blkio_stats": {}, "num_procs": 0,
                        "storage_stats": {}}
            else:
                try:
                    data = cgroup_stats.sample(pid)
                except OSError:  # it exited between the check and the read
                    data = {"cpu_stats": cgroup_stats.EMPTY_CPU, "memory_stats": {},
                            "pids_stats": {}, "blkio_stats": {}, "num_procs": 0,
                            "storage_stats": {}}
            data.update(read=rfc3339_nano(), id=record.id, name="/" + current.name,
                        preread=previous["read"] if previous else "0001-01-01T00:00:00Z",
                        precpu_stats=previous["cpu_stats"] if previous
                        else cgroup_stats.EMPTY_CPU)
            return data

        async def body():
            previous = None
            if not stream and not one_shot:
                previous = take(None)  # docker's --no-stream shows a CPU % over a short span
                await asyncio.sleep(0.5)
            while True:
                current = take(previous)
                yield (__import__("json").dumps(current) + "\n").encode()
                if not stream:
                    return
                previous = current
                await asyncio.sleep(1.0)

        return StreamingResponse(body())

    async def delete(request: Request):
        await containers.remove(request.match["id"], force=request.flag("force"),
                                volumes=request.flag("v"))
        return Response(204)

    async def list_(request: Request):
        filters = wire_filters.parse_filters(request.arg("filters"))
        everyone = request.flag("all")
        records = [r for r in containers.records.list()
                   if (everyone or r.state.get("Running") or filters.get("status"))
                   and _matches(r, filters)]
        limit = request.int_arg("limit", -1)
        if limit is not None and limit > 0:
            records = records[:limit]
        rows = [summary(r) for r in records]
        for row, record in zip(rows, records):   # ports and networks (networking)
            row.update(network_summary(engine, record))
        if request.flag("size"):  # walks every upper dir: only when asked, as docker
            for row, record in zip(rows, records):
                row["SizeRw"], row["SizeRootFs"] = await asyncio.to_thread(containers.sizes,
                                                                           record)
        return json_response(rows)

    async def inspect(request: Request):
        record = containers.get(request.match["id"])
        document = inspect_document(engine, record)
        document["NetworkSettings"] = engine.networks.settings(record)
        if request.flag("size"):
            document["SizeRw"], document["SizeRootFs"] = await asyncio.to_thread(
                containers.sizes, record)
        return json_response(document)

    return [
        ("POST", "/containers/create", create),
        ("GET", "/containers/json", list_),
        ("POST", "/containers/{id}/start", start),
        ("POST", "/containers/{id}/wait", wait),
        ("POST", "/containers/{id}/attach", attach),
        ("GET", "/containers/{id}/logs", logs),
        ("POST", "/containers/{id}/resize", resize),
        ("POST", "/containers/{id}/kill", kill),
        ("POST", "/containers/{id}/stop", stop),
        ("POST", "/containers/{id}/restart", restart),
        ("POST", "/containers/{id}/rename", rename),
        ("POST", "/containers/prune", prune),
        ("GET", "/containers/{id}/stats", stats),
        ("DELETE", "/containers/{id}", delete),
        ("GET", "/containers/{id}/json", inspect),
    ]
