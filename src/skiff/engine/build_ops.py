"""The builder's services around a build: the kept contexts of incremental transfers, the
cache's pruning, registry credentials for FROM's pulls, scratch dirs, and the start-up
clean-up of builds the daemon's death interrupted. api/build.py calls these and
builder.build; builder.py holds the build itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil

from skiff.build.context import ContextDir
from skiff.engine import build_files
from skiff.engine.build_cache import BuildCache
from skiff.engine.builder import SNAPSHOT_PREFIX, STEP_LABEL
from skiff.errors import InvalidArgument, NotFound, SkiffError


def prune(engine, everything: bool = False) -> dict:
    """`docker builder prune`: forget the cache, and remove the images only the cache kept
    (untagged, used by no container); layers that tagged images share stay."""
    cache = BuildCache(engine.config.root)
    deleted, reclaimed = [], 0
    _contexts(engine).remove_all()  # the contexts kept for incremental transfers
    used = {row["image_id"] for row in engine.db.query("SELECT image_id FROM containers")}
    for key, image_id in sorted(cache.entries().items()):
        cache.forget(key)
        deleted.append(key)
        try:
            image = engine.images.get(image_id)
        except NotFound:
            continue
        if image.repo_tags or image.id in used:
            continue
        before = sum(engine.snapshots.usage(c).size for c in image.chain_ids
                     if engine.snapshots.exists(c))
        try:
            engine.images.remove(image.id)
        except SkiffError:
            continue
        after = sum(engine.snapshots.usage(c).size for c in image.chain_ids
                    if engine.snapshots.exists(c))
        reclaimed += max(0, before - after)
    return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def registry_auth(header: str | None) -> dict:
    """X-Registry-Config (base64url JSON: registry -> auth config) as domain -> credentials,
    for the pulls of FROM."""
    import base64

    from skiff.engine import pull
    from skiff.registry import auth

    if not header:
        return {}
    try:
        text = header + "=" * (-len(header) % 4)
        doc = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (ValueError, TypeError):
        return {}
    out = {}
    for server, config in (doc.items() if isinstance(doc, dict) else []):
        if isinstance(config, dict):
            out[pull.login_domain(str(server))] = auth.credentials_from_json(config)
    return out


def receive_context(fileobj, dest: str) -> ContextDir:
    """The context tar of a request body, unpacked into `dest` (see build/context.py)."""
    try:
        return ContextDir.from_tar(fileobj, dest)
    except ValueError as e:
        raise InvalidArgument(str(e)) from None


def _contexts(engine):
    from skiff.build.context_store import ContextStore

    return ContextStore(os.path.join(engine.config.root, "build", "contexts"))


def context_need(engine, key: str, manifest) -> list[str]:
    """skiff's incremental context transfer, step 1: the paths the client must send."""
    try:
        return _contexts(engine).need(key, manifest)
    except ValueError as e:
        raise InvalidArgument(str(e)) from None


def context_apply(engine, key: str, fileobj) -> ContextDir:
    """Step 2: the stored context brought up to date from the request's tar."""
    from skiff.build.context_store import ContextOutOfDate
    from skiff.errors import Conflict

    try:
        return _contexts(engine).apply(key, fileobj)
    except ContextOutOfDate as e:
        raise Conflict(str(e)) from None
    except ValueError as e:
        raise InvalidArgument(str(e)) from None


def context_save(engine, key: str, ctx: ContextDir) -> None:
    _contexts(engine).save(key, ctx)


def build_dir(engine) -> str:
    path = os.path.join(engine.config.root, "build", "tmp")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def cleanup(engine) -> None:
    """Start-up: what builds that the daemon's death interrupted left: scratch dirs (and the
    read-only mounts of COPY --from in them), COPY steps' active snapshots, and RUN steps'
    containers (removed, running or not, once the event loop runs)."""
    path = build_dir(engine)
    for name in os.listdir(path):
        full = os.path.join(path, name)
        for sub in (os.listdir(full) if os.path.isdir(full) else []):
            if sub.startswith("from-"):
                build_files.unmount(os.path.join(full, sub))
        shutil.rmtree(full, ignore_errors=True)
    for key in engine.snapshots.active():
        if key.startswith(SNAPSHOT_PREFIX):
            engine.snapshots.remove(key)
    leftovers = [r.id for r in engine.containers.records.list()
                 if STEP_LABEL in ((r.config.get("Config") or {}).get("Labels") or {})]
    if leftovers:
        async def remove() -> None:
            for cid in leftovers:
                try:
                    await engine.containers.remove(cid, force=True)
                except SkiffError:
                    pass

        try:
            asyncio.get_running_loop().create_task(remove())
        except RuntimeError:
            asyncio.run(remove())
