"""`docker build` (the classic builder's behaviour): a Dockerfile and a context to an image.

    image_id = await Build(engine, ctx, BuildOptions(tags=["app:1"]), emit).run()

`emit(message)` receives docker's JSON progress messages as dicts, in order:
{"stream": "Step 1/3 : FROM busybox\\n"}, {"stream": " ---> 3f57d9401f8d\\n"}, the output of
RUN steps, {"aux": {"ID": "sha256:..."}}, {"stream": "Successfully built 6d1ef012b567\\n"},
{"stream": "Successfully tagged app:1\\n"}. Errors are raised (the API turns them into
`errorDetail` messages, or an HTTP error when nothing was written yet).

Each step makes an image, as docker's classic builder does: metadata steps (ENV, CMD, ...) a
config with an `empty_layer` history entry, RUN, COPY, ADD and WORKDIR a layer. RUN runs in a
real container made by the engine from the previous step's image, with the stage's
environment, user, working directory and shell, and its upper dir becomes the layer; COPY and
ADD write straight into a fresh snapshot's upper dir. Stages the target does not need are not
built. Every step is looked up in the cache first (see build_cache.py).

Clean-up: the containers of RUN steps are removed whatever happens (also when the client goes
away and the build task is cancelled); the snapshot dirs of COPY steps, the context and
mounts of `COPY --from` images are removed in `finally` blocks; a layer is recorded as an image
in one transaction only once it is complete, so a failed step leaves no half image.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

from skiff.build import steps
from skiff.build.context import (ContextDir, ContextError, copy_sources, is_archive,
                                 make_dirs, resolve_in_image, unpack_archive)
from skiff.build.dockerfile import DockerfileError, Instruction, parse, parse_instruction
from skiff.build.expand import ExpansionError, expand_heredoc, expand_word
from skiff.build.plan import PROXY_ARGS, Stage, plan_build
from skiff.engine import build_files
from skiff.engine.build_files import BuildFailed
from skiff.engine.build_cache import BuildCache
from skiff.errors import InvalidArgument, NotFound, SkiffError
from skiff.oci import image as oci_image
from skiff.oci import reference
from skiff.snapshot import diff as snapdiff
from skiff.snapshot.snapshotter import chain_id

# Keys of an image's `config` as docker's classic builder writes them (in this order).
CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
               "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
               "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild",
               "Labels", "StopSignal", "Shell")
_DEFAULTS = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
             "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
             "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
             "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    quiet: bool = False
    network_mode: str = ""
    platform: str = ""
    cache_from: list[str] = field(default_factory=list)
    remove: bool = True          # rm: remove intermediate containers after a good build
    force_remove: bool = False   # forcerm: always remove them
    registry_options: object = None                       # engine.pull.RegistryOptions
    registry_auth: dict = field(default_factory=dict)     # registry domain -> Credentials


@dataclass
class _State:
    """A stage while it is built: the image so far (None before any step of FROM scratch)."""
    stage: Stage
    image_id: str | None
    config: dict                 # the whole image config (architecture, config, history, ...)
    layers: list[dict]           # as ImageRecord.layers
    args: dict[str, str | None] = field(default_factory=dict)   # ARGs declared in the stage
    cmd_set: bool = False

    @property
    def cfg(self) -> dict:
        return self.config.get("config") or {}

    @property
    def chains(self) -> list[str]:
        return [l["chainID"] for l in self.layers]

    @property
    def shell(self) -> list[str]:
        return list(self.cfg.get("Shell") or steps.DEFAULT_SHELL)


LOG_POLL = 0.05   # seconds between reads of a running RUN container's log
# On the containers of RUN steps, so that those of a build the daemon's death interrupted
# are removed when it starts again (the image config is made from the stage, not from them).
STEP_LABEL = "io.skiff.build.step"
SNAPSHOT_PREFIX = "build-"   # active snapshots of COPY/ADD/WORKDIR steps


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _short(image_id: str) -> str:
    return image_id.partition(":")[2][:12]


def _full_config(cfg: dict) -> dict:
    out = {}
    for key in CONFIG_KEYS:
        if key in cfg:
            out[key] = cfg[key]
        elif key in _DEFAULTS:
            out[key] = _DEFAULTS[key]
    return out


def _scratch_config(platform: oci_image.Platform) -> dict:
    return {"architecture": platform.architecture, "os": platform.os,
            "config": _full_config({"Env": [steps.DEFAULT_PATH]}),
            "rootfs": {"type": "layers", "diff_ids": []}, "history": []}


class Build:
    def __init__(self, engine, ctx: ContextDir, options: BuildOptions, emit, *,
                 workdir: str):
        self.engine = engine
        self.ctx = ctx
        self.options = options
        self.emit_raw = emit
        self.workdir = workdir           # private scratch dir of this build (removed by caller)
        self.cache = BuildCache(engine.config.root)
        self.escape = "\\"
        self.total = 0
        self.used_args: set[str] = set()
        self.containers: list[str] = []  # RUN containers not yet removed
        self.quiet_buffer: list[dict] = []
        self.cache_from: set[str] = set()
        self.start_lock = asyncio.Lock()
        self.removals: list[asyncio.Future] = []   # RUN containers being removed
        self.wait_room = None                       # see build()

    # -- output -------------------------------------------------------------------------------

    def emit(self, text: str) -> None:
        message = {"stream": text}
        if self.options.quiet:
            self.quiet_buffer.append(message)
        else:
            self.emit_raw(message)

    # -- the build ----------------------------------------------------------------------------

    async def run(self) -> str:
        options = self.options
        text = await asyncio.to_thread(self.ctx.read_file, options.dockerfile)
        if text is None:
            raise InvalidArgument(f"Cannot locate specified Dockerfile: {options.dockerfile}")
        dockerfile = parse(text)
        self.escape = dockerfile.escape
        plan = plan_build(dockerfile, options.build_args, options.target)
        target = plan.stages[plan.needed[-1]]
        if options.labels:
            pairs = " ".join(json.dumps(k) + "=" + json.dumps(v)
                             for k, v in sorted(options.labels.items()))
            target.instructions.append(parse_instruction("label", pairs, "LABEL " + pairs,
                                                         target.from_instruction.line))
        self.total = sum(1 + len(plan.stages[i].instructions) for i in plan.needed)
        for ref in options.cache_from:
            try:
                self.cache_from.add(self.engine.images.get(ref).id)
            except NotFound:
                pass
        self.global_args = plan.global_args
        results = await self._stages(plan)
        if self.removals:
            await self._remove_containers()
        final = results[plan.needed[-1]]
        if final.image_id is None:
            raise BuildFailed("No image was generated. Is your Dockerfile empty?")
        unused = sorted(k for k in options.build_args if k not in self.used_args and
                        k not in PROXY_ARGS)
        if unused:
            self.emit(f"[Warning] One or more build-args [{' '.join(unused)}] were not "
                      f"consumed\n")
        for tag in options.tags:
            await asyncio.to_thread(self.engine.images.tag, final.image_id, tag)
            name = reference.parse(tag).familiar()
            self.engine.events.emit("image", "tag", final.image_id, {"name": name})
        self.emit_raw({"aux": {"ID": final.image_id}})
        if options.quiet:
            self.emit_raw({"stream": final.image_id + "\n"})
        else:
            self.emit(f"Successfully built {_short(final.image_id)}\n")
            for tag in options.tags:
                self.emit(f"Successfully tagged {reference.parse(tag).familiar()}\n")
        return final.image_id

    def flush_quiet(self) -> None:
        """On failure in quiet mode, docker shows what the build printed."""
        for message in self.quiet_buffer:
            self.emit_raw(message)
        self.quiet_buffer = []

    async def _stages(self, plan) -> dict[int, _State]:
        """Every needed stage, each as soon as the stages it uses are built: stages that do
        not depend on each other run side by side. Steps keep the numbers of the Dockerfile's
        order. The first failure cancels the others (their RUN containers are removed)."""
        results: dict[int, _State] = {}
        tasks: dict[int, asyncio.Task] = {}
        first = 0

        async def one(index: int, number: int) -> None:
            stage = plan.stages[index]
            deps = set(stage.copy_from)
            if stage.base_stage is not None:
                deps.add(stage.base_stage)
            for dep in sorted(deps):
                await asyncio.shield(tasks[dep])
            results[index] = await self._stage(stage, results, number)

        for index in plan.needed:
            tasks[index] = asyncio.ensure_future(one(index, first))
            first += 1 + len(plan.stages[index].instructions)
        try:
            finished, _ = await asyncio.wait(tasks.values(),
                                             return_when=asyncio.FIRST_EXCEPTION)
            for task in finished:
                if task.exception() is not None:
                    raise task.exception()
        except BaseException:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            await self._remove_containers()
            raise
        return results

    def _step_header(self, inst: Instruction, number: int) -> None:
        self.emit(f"Step {number}/{self.total} : {inst.original}\n")

    async def _stage(self, stage: Stage, done: dict[int, _State], first: int) -> _State:
        inst = stage.from_instruction
        number = first + 1
        self._step_header(inst, number)
        state = await self._from(stage, done)
        if state.image_id:
            self.emit(f" ---> {_short(state.image_id)}\n")
        triggers = list(state.cfg.get("OnBuild") or [])
        if triggers:
            self.emit(f"# Executing {len(triggers)} build trigger"
                      f"{'s' if len(triggers) > 1 else ''}\n")
            cfg = dict(state.cfg)
            cfg["OnBuild"] = None
            state.config = dict(state.config, config=cfg)
            for trigger in triggers:
                word, _, rest = trigger.strip().partition(" ")
                sub = parse_instruction(word.lower(), rest, trigger, inst.line)
                state = await self._dispatch(state, sub, done)
        for inst in stage.instructions:
            number += 1
            self._step_header(inst, number)
            state = await self._dispatch(state, inst, done)
            if state.image_id:
                self.emit(f" ---> {_short(state.image_id)}\n")
        return state

    async def _from(self, stage: Stage, done: dict[int, _State]) -> _State:
        if stage.base_stage is not None:
            base = done[stage.base_stage]
            return _State(stage=stage, image_id=base.image_id, config=base.config,
                          layers=list(base.layers))
        platform = self._platform(stage.platform or self.options.platform,
                                  stage.from_instruction.line)
        if stage.base.lower() == "scratch":
            return _State(stage=stage, image_id=None, config=_scratch_config(platform),
                          layers=[])
        image = await self._base_image(stage.base, stage.from_instruction.line)
        config = json.loads(json.dumps(image.config or {}))
        config["config"] = _full_config(config.get("config") or {})
        return _State(stage=stage, image_id=image.id, config=config, layers=list(image.layers))

    def _platform(self, text: str, line: int) -> oci_image.Platform:
        from skiff.engine.images import _host_platform

        host = _host_platform()
        if not text:
            return host
        os_name, _, rest = text.partition("/")
        arch = rest.partition("/")[0]
        if os_name != host.os or (arch and arch != host.architecture):
            raise BuildFailed(f"image platform {text} does not match the host's "
                              f"({host.os}/{host.architecture}): skiff builds for the host")
        return host

    async def _base_image(self, name: str, line: int):
        """FROM's image (and COPY --from's): pulled when missing, or always with --pull, as
        docker does, with the pull's progress in the build's stream."""
        images = self.engine.images
        try:
            ref = reference.parse(name)
        except InvalidArgument as e:
            raise DockerfileError(str(e), line) from None
        if self.options.pull or not self._have(name):
            from skiff.engine import pull

            loop = asyncio.get_running_loop()
            quiet = self.options.quiet

            def progress(message: dict) -> None:
                if not quiet:
                    loop.call_soon_threadsafe(self.emit_raw, message)

            credentials = self.options.registry_auth.get(ref.domain) or \
                self.options.registry_auth.get(pull.login_domain(ref.domain))
            await asyncio.to_thread(pull.pull, images, str(ref), credentials=credentials,
                                    options=self.options.registry_options, progress=progress)
        image = images.get(name)
        await asyncio.to_thread(images.resolve_rootfs, image)  # a commit's layer: unpacked now
        return image

    def _have(self, name: str) -> bool:
        try:
            self.engine.images.get(name)
            return True
        except NotFound:
            return False

    # -- steps --------------------------------------------------------------------------------

    def _vars(self, state: _State) -> dict[str, str]:
        return steps.variables(state.cfg, state.args)

    def _word(self, text: str, state: _State, line: int) -> str:
        try:
            return expand_word(text, self._vars(state), self.escape)
        except ExpansionError as e:
            raise DockerfileError(str(e), line) from None

    async def _dispatch(self, state: _State, inst: Instruction, done) -> _State:
        cmd = inst.cmd
        if cmd == "arg":
            return await self._arg(state, inst)
        if cmd == "run":
            return await self._run(state, inst)
        if cmd in ("copy", "add"):
            return await self._copy(state, inst, done)
        if cmd == "workdir":
            return await self._workdir(state, inst)
        if cmd == "from":
            raise DockerfileError("FROM is not allowed here", inst.line)
        cfg, text = steps.apply_metadata(inst, state.cfg, self._vars(state), self.escape,
                                         cmd_set=state.cmd_set)
        if cmd == "cmd":
            state.cmd_set = True
        if cmd == "maintainer":
            return await self._metadata(state, cfg, text, author=inst.args[0])
        return await self._metadata(state, cfg, text)

    async def _arg(self, state: _State, inst: Instruction) -> _State:
        shown = []
        for word in inst.args:
            key, eq, default = word.partition("=")
            key = self._word(key, state, inst.line)
            value = self._word(default, state, inst.line) if eq else None
            if key in self.options.build_args and self.options.build_args[key] is not None:
                value = self.options.build_args[key]
            elif not eq and key in self.global_args:
                value = self.global_args[key]
            state.args[key] = value
            self.used_args.add(key)
            shown.append(f"{key}={self._word(default, state, inst.line)}" if eq else key)
        return await self._metadata(state, state.cfg, "ARG " + " ".join(shown))

    def _history(self, state: _State, created_by: str, empty: bool, created: str,
                 author: str = "") -> list[dict]:
        history = list(state.config.get("history") or [])
        entry = {"created": created, "created_by": created_by}
        if author:
            entry["author"] = author
        if empty:
            entry["empty_layer"] = True
        return history + [entry]

    async def _cached(self, state: _State, key: str, created_by: str = "",
                      empty: bool = False, cfg: dict | None = None) -> _State | None:
        if self.options.no_cache:
            return None
        image_id = self.cache.get(key, self.engine.images)
        if image_id is None and self.cache_from and created_by:
            image_id = await asyncio.to_thread(self._from_cache_sources, state, created_by,
                                               empty, state.cfg if cfg is None else cfg)
            if image_id is not None:
                self.cache.put(key, image_id)
        if image_id is None:
            return None
        image = self.engine.images.get(image_id)
        await asyncio.to_thread(self.engine.images.resolve_rootfs, image)  # --cache-from's
        self.emit(" ---> Using cache\n")
        return _State(stage=state.stage, image_id=image.id, config=image.config,
                      layers=list(image.layers), args=state.args, cmd_set=state.cmd_set)

    def _from_cache_sources(self, state: _State, created_by: str, empty: bool,
                            cfg: dict) -> str | None:
        """--cache-from: an image whose history starts as this stage's does, with this step
        next, supplies the step (docker's classic rule: its layers, our config). The image
        itself when the step is its last; else an image of its first layers is made."""
        history = list(state.config.get("history") or [])
        diff_ids = [l["diffID"] for l in state.layers]
        for source_id in sorted(self.cache_from):
            try:
                source = self.engine.images.get(source_id)
            except NotFound:
                continue
            s_history = list((source.config or {}).get("history") or [])
            s_layers = list(source.layers)
            n = len(history)
            if len(s_history) <= n or len(s_layers) < len(diff_ids) or \
                    [l["diffID"] for l in s_layers[:len(diff_ids)]] != diff_ids:
                continue
            if any(a.get("created_by") != b.get("created_by") or
                   bool(a.get("empty_layer")) != bool(b.get("empty_layer"))
                   for a, b in zip(history, s_history[:n])):
                continue
            entry = s_history[n]
            if entry.get("created_by") != created_by or bool(entry.get("empty_layer")) != empty:
                continue
            layers = s_layers[:len(diff_ids) + (0 if empty else 1)]
            if len(layers) != len(diff_ids) + (0 if empty else 1):
                continue
            if len(s_history) == n + 1 and len(layers) == len(s_layers):
                return source.id
            config = dict(state.config)
            config["config"] = _full_config(dict(cfg, Image=state.image_id or ""))
            config["created"] = entry.get("created") or _now()
            config["history"] = history + [entry]
            new = self._record(state, config, None if empty else layers[-1])
            return new.image_id
        return None

    def _key(self, state: _State, kind: str, args, content: str = "") -> str:
        return BuildCache.key(state.image_id or "scratch:" + json.dumps(state.config,
                                                                       sort_keys=True),
                              kind, args, content)

    async def _metadata(self, state: _State, cfg: dict, text: str, author: str = "") -> _State:
        created_by = "/bin/sh -c #(nop)  " + text
        key = self._key(state, "meta", [created_by, _full_config(cfg), author])
        hit = await self._cached(state, key, created_by, True, cfg)
        if hit is not None:
            return hit
        created = _now()
        config = dict(state.config)
        config["config"] = _full_config(dict(cfg, Image=state.image_id or ""))
        config["created"] = created
        config["history"] = self._history(state, created_by, True, created, author)
        if author:
            config["author"] = author
        new = await asyncio.to_thread(self._record, state, config, None)
        self.cache.put(key, new.image_id)
        return new

    def _record(self, state: _State, config: dict, layer: dict | None,
                made_chain: str | None = None) -> _State:
        """Store the config and record the image (with its new layer, already stored)."""
        images = self.engine.images
        config = {k: config[k] for k in ("architecture", "author", "config", "created",
                                         "history", "os", "rootfs", "variant", "os.version")
                  if k in config}
        layers = list(state.layers) + ([layer] if layer else [])
        config["rootfs"] = {"type": "layers", "diff_ids": [l["diffID"] for l in layers]}
        data = json.dumps(config, separators=(",", ":")).encode()
        with images._lock:
            try:
                digest, _ = self.engine.content.ingest_bytes(data)
                images._record_image(digest, data, layers, [], parent_id=state.image_id)
            except BaseException:
                images._discard([made_chain] if made_chain else [],
                                {layer["digest"]} if layer else set())
                raise
        return _State(stage=state.stage, image_id=digest, config=config, layers=layers,
                      args=state.args, cmd_set=state.cmd_set)

    async def _ensure_image(self, state: _State) -> _State:
        """An image row for a stage that has none yet (FROM scratch), for RUN's container."""
        if state.image_id:
            return state
        return await asyncio.to_thread(self._record, state, dict(state.config,
                                                                 created=_now()), None)

    # -- layers -------------------------------------------------------------------------------

    def _commit_dir(self, state: _State, upper: str, lowers: list[str]):
        """Make `upper` the next layer: its tar is written once, into a blob (the diff id is
        its digest), and the directory itself becomes the committed snapshot (renamed, not
        unpacked again: creating files is what costs most here). (layer, new chain id)."""
        parent = state.chains[-1] if state.chains else None
        images = self.engine.images
        with images._lock:
            diff_id = None
            try:
                with self.engine.content.writer() as blob:
                    snapdiff.write_layer(upper, blob, lowers=lowers)
                    diff_id, size = blob.commit()
                chain, created = self.engine.snapshots.adopt(parent, diff_id, upper,
                                                             tar_size=size)
            except BaseException:
                if diff_id:
                    images._discard([], {diff_id})
                raise
        layer = {"digest": diff_id, "size": size, "mediaType": oci_image.DOCKER_LAYER,
                 "diffID": diff_id, "chainID": chain}
        return layer, (chain if created else None)

    def _commit_container(self, state: _State, cid: str, keep: bool):
        """A RUN container's changes as the next layer. Its upper dir is adopted as the
        snapshot unless the container is kept (rm=false): then the layer is unpacked anew."""
        from skiff.engine.commit import _id_maps, _mount_points

        snaps = self.engine.snapshots
        exclude = _mount_points(self.engine, cid)
        upper = snaps.upper(cid)
        lowers = [snaps.path(c) for c in reversed(state.chains)]
        ids = _id_maps(self.engine, cid)   # a user-namespaced RUN wrote shifted owners
        if not keep:
            build_files.drop_mount_points(upper, lowers, exclude)
            build_files.strip_overlay_xattrs(upper)
            if ids:
                build_files.unshift_owners(upper, ids)
            return self._commit_dir(state, upper, lowers)
        # The container stays (rm=false): its upper dir is left alone, the layer is written
        # to a blob and unpacked from it as a snapshot of its own.
        parent = state.chains[-1] if state.chains else None
        images = self.engine.images
        with images._lock:
            diff_id = made = None
            try:
                with self.engine.content.writer() as blob:
                    snapdiff.write_layer(upper, blob, lowers=lowers, exclude=exclude,
                                         ids=ids)
                    diff_id, size = blob.commit()
                chain = chain_id(parent, diff_id)
                if not snaps.exists(chain):
                    snaps.unpack(chain, parent, self.engine.content.path(diff_id),
                                 oci_image.DOCKER_LAYER, expected_diff_id=diff_id)
                    made = chain
            except BaseException:
                images._discard([made] if made else [], {diff_id} if diff_id else set())
                raise
        layer = {"digest": diff_id, "size": size, "mediaType": oci_image.DOCKER_LAYER,
                 "diffID": diff_id, "chainID": chain}
        return layer, made

    def _layer_step(self, state: _State, fill, created_by: str, cfg: dict | None = None):
        """A layer made by `fill(upper, lowers)` in a fresh snapshot dir, then recorded."""
        snaps = self.engine.snapshots
        key = SNAPSHOT_PREFIX + secrets.token_hex(16)
        snaps.prepare(key, state.chains)
        try:
            upper = snaps.upper(key)
            lowers = [snaps.path(c) for c in reversed(state.chains)]
            fill(upper, lowers)
            layer, made = self._commit_dir(state, upper, lowers)
        finally:
            snaps.remove(key)
        created = _now()
        config = dict(state.config)
        config["config"] = _full_config(dict(cfg if cfg is not None else state.cfg,
                                             Image=state.image_id or ""))
        config["created"] = created
        config["history"] = self._history(state, created_by, False, created)
        return self._record(state, config, layer, made)

    async def _workdir(self, state: _State, inst: Instruction) -> _State:
        cfg, text = steps.apply_metadata(inst, state.cfg, self._vars(state), self.escape)
        path = cfg["WorkingDir"]
        created_by = "/bin/sh -c #(nop) " + text   # one space: docker's WORKDIR, COPY, ADD
        key = self._key(state, "workdir", [created_by])
        hit = await self._cached(state, key, created_by, False, cfg)
        if hit is not None:
            return hit
        owner = None   # docker's classic WORKDIR makes the directory as root, whatever USER

        def fill(upper: str, lowers: list[str]) -> None:
            rel = resolve_in_image(lowers, upper, path)
            existing = snapdiff.lower_stat(lowers, rel) if rel else None
            if rel and existing is None:
                make_dirs(lowers, upper, rel, owner)

        new = await asyncio.to_thread(self._layer_step, state, fill, created_by, cfg)
        self.cache.put(key, new.image_id)
        return new

    # -- RUN ----------------------------------------------------------------------------------

    def _run_env(self, state: _State) -> tuple[list[str], list[str]]:
        """(build args to add to RUN's environment, those of them shown in the history)."""
        env_keys = {e.partition("=")[0] for e in state.cfg.get("Env") or []}
        pairs = []
        for key in sorted(state.args):
            value = state.args[key]
            if value is None or key in env_keys:
                continue
            pairs.append(f"{key}={value}")
        for key in PROXY_ARGS:
            value = self.options.build_args.get(key)
            if value is not None and key not in state.args and key not in env_keys:
                pairs.append(f"{key}={value}")
                self.used_args.add(key)
        shown = [p for p in pairs if p.partition("=")[0] not in PROXY_ARGS]
        return pairs, shown

    def _run_command(self, state: _State, inst: Instruction) -> list[str]:
        if inst.json_form:
            return list(inst.args)
        text = inst.args[0] if inst.args else ""
        if inst.heredocs:
            stripped = text.strip()
            if len(inst.heredocs) == 1 and stripped.startswith("<<") and \
                    stripped.lstrip("<-").strip("\"'") == inst.heredocs[0].name:
                return state.shell + [inst.heredocs[0].content]
            body = "".join(h.content + h.name + "\n" for h in inst.heredocs)
            return state.shell + [text + "\n" + body]
        return state.shell + [text]

    async def _run(self, state: _State, inst: Instruction) -> _State:
        command = self._run_command(state, inst)
        # `RUN <<EOF` whose body starts with `#!` runs as a script through its interpreter,
        # as BuildKit runs it: a file put in the container for the step, never in the layer.
        script = command[-1] if not inst.json_form and len(inst.heredocs) == 1 and \
            command[:-1] == state.shell and command[-1] == inst.heredocs[0].content and \
            command[-1].startswith("#!") else None
        script_name = ".skiff-heredoc-" + secrets.token_hex(8) if script else ""
        args_env, shown = self._run_env(state)
        created_by = " ".join(command)
        if shown:
            created_by = f"|{len(shown)} {' '.join(shown)} {created_by}"
        network = str(inst.flags.get("network") or self.options.network_mode or "")
        if inst.flags.get("mount"):
            raise DockerfileError("the --mount option requires BuildKit. Refer to "
                                  "https://docs.docker.com/go/buildkit/ to learn how to build "
                                  "images with BuildKit enabled", inst.line)
        key = self._key(state, "run", [command, shown])
        hit = await self._cached(state, key, created_by)
        if hit is not None:
            return hit
        state = await self._ensure_image(state)
        containers = self.engine.containers
        cfg = state.cfg
        removed = self.options.remove or self.options.force_remove
        body = {"Image": state.image_id, "Cmd": command, "Entrypoint": [""],
                "Env": list(cfg.get("Env") or []) + args_env, "User": cfg.get("User") or "",
                "WorkingDir": cfg.get("WorkingDir") or "",
                "Labels": {STEP_LABEL: "RUN"} if removed else {},  # rm=false: kept, always
                "AttachStdout": True, "AttachStderr": True,
                "HostConfig": {"NetworkMode": network} if network else {}}
        # Stages side by side start their RUN containers one at a time (the containers then
        # run together): the engine's first use of a network is not safe to race.
        async with self.start_lock:
            if script:
                body["Cmd"] = ["/" + script_name]
            record = containers.create(body)
            cid = record.id
            self.containers.append(cid)
            if script:
                path = os.path.join(self.engine.snapshots.upper(cid), script_name)
                with open(path, "w") as f:
                    f.write(script)
                os.chmod(path, 0o755)
            self.emit(f" ---> Running in {cid[:12]}\n")
            exited = asyncio.ensure_future(containers.wait(cid, "next-exit"))
            await asyncio.sleep(0)
            try:
                await containers.start(cid)
            except SkiffError as exc:
                exited.cancel()
                raise BuildFailed(f"The command '{' '.join(command)}' returned a non-zero "
                                  f"code: {getattr(exc, 'exit_code', 1) or 1}: "
                                  f"{exc.message}") from None
        reader = asyncio.ensure_future(self._relay_output(cid, exited))
        try:
            result = await exited
        except BaseException:
            exited.cancel()
            reader.cancel()  # cancelled (the client went away): the caller removes it
            raise
        await reader
        code = int(result.get("StatusCode") or 0)
        if code != 0:
            raise BuildFailed(f"The command '{' '.join(command)}' returned a non-zero code: "
                              f"{code}", code)
        keep = not (self.options.remove or self.options.force_remove)
        if script:
            try:
                os.unlink(os.path.join(self.engine.snapshots.upper(cid), script_name))
            except FileNotFoundError:
                pass

        def commit() -> _State:
            layer, made = self._commit_container(state, cid, keep)
            created = _now()
            config = dict(state.config)
            config["config"] = _full_config(dict(state.cfg, Image=state.image_id))
            config["created"] = created
            config["history"] = self._history(state, created_by, False, created)
            return self._record(state, config, layer, made)

        new = await asyncio.to_thread(commit)
        if self.options.remove or self.options.force_remove:
            self.emit(f"Removing intermediate container {cid[:12]}\n")
            # removed while the next steps run; the build waits for it before it ends
            self.removals.append(asyncio.ensure_future(self._remove_container(cid)))
        self.cache.put(key, new.image_id)
        return new

    async def _relay_output(self, cid: str, exited: asyncio.Future) -> None:
        """The RUN container's output, from its json-file log as it grows; read to the end
        as soon as the container has exited (no polling delay after the exit)."""
        from skiff.engine.logs import decode_line

        path = self.engine.containers.log_path(cid)
        offset, pending = 0, b""
        while True:
            finished = exited.done()
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            offset += len(data)
            if data:
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                text = []
                for line in lines:
                    record = decode_line(line) if line.strip() else None
                    if record is not None:
                        text.append(record[1])
                if text:
                    self.emit("".join(text))
                    if self.wait_room is not None:
                        await self.wait_room()
            if finished:
                return
            await asyncio.wait({exited}, timeout=LOG_POLL)

    async def _remove_container(self, cid: str) -> None:
        try:
            await self.engine.containers.remove(cid, force=True)
        except NotFound:
            pass
        if cid in self.containers:
            self.containers.remove(cid)

    async def _remove_containers(self) -> None:
        """Every RUN container of this build gone (after a failure, or at its end)."""
        if self.removals:
            await asyncio.shield(asyncio.gather(*self.removals, return_exceptions=True))
            self.removals = []
        for cid in list(self.containers):
            try:
                await asyncio.shield(self._remove_container(cid))
            except Exception:
                pass

    # -- COPY and ADD -------------------------------------------------------------------------

    async def _copy(self, state: _State, inst: Instruction, done) -> _State:
        keyword = inst.keyword
        words = [self._word(a, state, inst.line) for a in inst.args]
        srcs, dest = words[:-1], words[-1]
        if not srcs and not inst.heredocs:
            raise DockerfileError(f"{keyword} requires at least two arguments", inst.line)
        workdir = state.cfg.get("WorkingDir") or "/"
        dest_is_dir = dest.endswith("/") or dest.endswith("/.") or dest == "."
        dest_path = posixpath.normpath(posixpath.join(workdir, dest))
        if dest_path.startswith("//"):
            dest_path = "/" + dest_path.lstrip("/")
        chown = self._word(str(inst.flags.get("chown") or ""), state, inst.line)
        chmod_text = self._word(str(inst.flags.get("chmod") or ""), state, inst.line)
        mode = None
        if chmod_text:
            try:
                mode = int(chmod_text, 8)
                if mode > 0o7777:
                    raise ValueError
            except ValueError:
                raise DockerfileError(f"invalid chmod parameter: {chmod_text}",
                                      inst.line) from None
        source_from = str(inst.flags.get("from") or "")
        mount = None
        ctx = self.ctx
        try:
            if source_from:
                ctx, mount, source_id = await self._from_source(source_from, done, inst.line)
            heredoc_files = {}
            for h in inst.heredocs:
                content = h.content
                if h.expand and "$" in content:
                    try:
                        content = expand_heredoc(content, self._vars(state), self.escape)
                    except ExpansionError as e:
                        raise DockerfileError(str(e), inst.line) from None
                heredoc_files[h.name] = content.encode()
            urls = [s for s in srcs if keyword == "ADD" and
                    (s.startswith("http://") or s.startswith("https://"))]
            local = [s for s in srcs if s not in urls and
                     not (s.startswith("<<") and s.lstrip("<-").strip("\"'") in heredoc_files)]
            try:
                found = await asyncio.to_thread(ctx.sources, local) if local else []
                content = await asyncio.to_thread(ctx.digest, found) if found else ""
            except ContextError as e:
                raise BuildFailed(f"{keyword} failed: {e}") from None
            url_files = {}
            for url in urls:
                url_files[url] = await asyncio.to_thread(build_files.download, url, self.workdir)
            digest_parts = [content] + [f"heredoc:{k}:{v.hex()}" for k, v in
                                        heredoc_files.items()] + \
                [f"url:{u}:{d}" for u, (_, d) in url_files.items()]
            if source_from:
                digest_parts.append("from:" + source_id)
            what = build_files.describe(ctx, found, heredoc_files, urls, content)
            if chown:
                what = f"--chown={chown}{what}"   # docker's own text, without a space
            created_by = f"/bin/sh -c #(nop) {keyword} {what} in {dest} "
            key = self._key(state, keyword.lower(), [dest_path, dest_is_dir, chown, mode],
                            "|".join(digest_parts))
            hit = await self._cached(state, key, created_by)
            if hit is not None:
                return hit
            owner = await asyncio.to_thread(build_files.owner_in_image, self.engine.snapshots,
                                            state.chains, chown) \
                if chown else None
            scratch = os.path.join(self.workdir, "add-" + secrets.token_hex(8))
            unpack = keyword == "ADD"

            def fill(upper: str, lowers: list[str]) -> None:
                many = len(found) + len(heredoc_files) + len(url_files) > 1
                hint = dest_is_dir or many
                plain = []
                for src in found:
                    full = ctx.path(src)
                    if unpack and not os.path.isdir(full) and not os.path.islink(full) and \
                            is_archive(full):
                        rel = resolve_in_image(lowers, upper, dest_path)
                        unpack_archive(full, upper, lowers, rel, scratch)
                    else:
                        plain.append(src)
                if plain:
                    copy_sources(ctx, plain, upper, lowers, dest_path, hint, owner, mode)
                for name, data in list(heredoc_files.items()):
                    build_files.write_file(upper, lowers, dest_path, hint, name, data, owner,
                                     mode if mode is not None else 0o644)
                for url, (path, _) in url_files.items():
                    name = posixpath.basename(url.split("?")[0].rstrip("/")) or "index.html"
                    with open(path, "rb") as f:
                        data = f.read()
                    build_files.write_file(upper, lowers, dest_path, hint, name, data, owner,
                                     mode if mode is not None else 0o600)

            try:
                new = await asyncio.to_thread(self._layer_step, state, fill, created_by)
            except ContextError as e:
                raise BuildFailed(f"{keyword} failed: {e}") from None
            self.cache.put(key, new.image_id)
            return new
        finally:
            if mount:
                await asyncio.to_thread(build_files.unmount, mount)

    async def _from_source(self, name: str, done: dict[int, _State], line: int):
        """COPY --from: a stage's or an image's files, through a read-only overlay mount."""
        stage_index = None
        for index, state in done.items():
            if state.stage.name == name.lower() or str(index) == name:
                stage_index = index
        if stage_index is not None:
            source = done[stage_index]
            chains, source_id = source.chains, source.image_id or "scratch"
        else:
            image = await self._base_image(name, line)
            chains, source_id = image.chain_ids, image.id
        target = os.path.join(self.workdir, "from-" + secrets.token_hex(8))
        os.makedirs(target)
        if not chains:
            return ContextDir(target), None, source_id
        await asyncio.to_thread(build_files.mount_layers, self.engine.snapshots, chains, target)
        return ContextDir(target), target, source_id

async def build(engine, ctx: ContextDir, options: BuildOptions, emit, workdir: str,
                wait_room=None) -> str:
    """`wait_room()`: awaited after each piece of RUN output, so that a reader slower than the
    step's output makes the relay pause (the output waits in the container's log file)."""
    b = Build(engine, ctx, options, emit, workdir=workdir)
    b.wait_room = wait_room
    try:
        return await b.run()
    except BaseException as exc:
        if options.quiet:
            b.flush_quiet()
        if isinstance(exc, (DockerfileError, ContextError)):
            raise InvalidArgument(str(exc)) from None
        raise
