"""Crash safety of commit, load and prune, and of the unpack of a committed layer's snapshot when
it is first needed: the process is killed at named failpoints and at random moments (SIGKILL);
the store must then hold the image whole or not list it, and the start-up clean-up must leave
no partial file, no orphan blob or snapshot, and lose no blob a listed image needs. The engine
runs in-process here (no daemon), in child processes that we kill."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from skiff.engine import Engine, EngineConfig
from skiff.store.failpoint import EXIT_STATUS

pytestmark = [pytest.mark.root]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = r"""
import sys
from skiff.engine import Engine, EngineConfig
from skiff.engine import commit
root, exec_root, action, arg = sys.argv[1:5]
engine = Engine(EngineConfig(root=root, exec_root=exec_root))
if action == "commit":
    commit.commit(engine, arg, repo="crash", tag="1", pause=False)
elif action == "unpack":   # what a container create does first: the image's snapshots
    engine.images.resolve_rootfs(arg)
elif action == "prune":
    from skiff.engine import image_ops
    image_ops.prune(engine.images, dangling_only=False)
else:
    with open(arg, "rb") as f:
        engine.images.load(f)
print("done")
"""


@pytest.fixture(scope="module")
def world(test_images):
    if os.geteuid() != 0:
        pytest.skip("needs root (ownership in snapshots)")
    tmp = tempfile.mkdtemp(prefix="skiff-crash-", dir="/var/tmp")
    try:
        root, exec_root = os.path.join(tmp, "root"), os.path.join(tmp, "run")
        engine = Engine(EngineConfig(root=root, exec_root=exec_root))
        with open(os.path.join(test_images, "busybox.tar"), "rb") as f:
            engine.images.load(f)
        record = engine.containers.create({"Image": "busybox", "Cmd": ["true"]})
        upper = engine.snapshots.upper(record.id)
        data = os.urandom(64 * 1024)
        for i in range(200):  # ~13 MB in 200 files, a deletion, a new directory tree
            d = os.path.join(upper, "data", f"d{i % 10}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i}"), "wb") as f:
                f.write(data)
        os.makedirs(os.path.join(upper, "etc"), exist_ok=True)
        os.mknod(os.path.join(upper, "etc", "group"), 0o020000, os.makedev(0, 0))
        engine.close()
        yield {"tmp": tmp, "root": root, "exec_root": exec_root, "cid": record.id}
    finally:
        subprocess.run(["umount", "-R", "-l", tmp], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


def _child(world, action: str, arg: str, failpoint: str | None = None):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    env.pop("SKIFF_FAILPOINTS", None)
    if failpoint:
        env["SKIFF_FAILPOINTS"] = failpoint
    return subprocess.Popen([sys.executable, "-c", CHILD, world["root"], world["exec_root"],
                             action, arg], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _state(world) -> dict:
    """Check the store's invariants after the start-up clean-up; returns what it holds."""
    engine = Engine(EngineConfig(root=world["root"], exec_root=world["exec_root"]))
    try:
        engine.images.cleanup()
        images = engine.images.list()
        needed, chains, lazy = set(), set(), set()
        for image in images:
            needed.add(image.id)
            assert engine.content.has(image.id), image.id
            for layer in image.layers:
                assert engine.content.has(layer["digest"]), layer
                if "unpackedSize" in layer:   # a commit's: unpacked from its blob when needed
                    lazy.add(layer["chainID"])
                else:
                    assert engine.snapshots.exists(layer["chainID"]), layer
                needed.add(layer["digest"])
                chains.add(layer["chainID"])
            if image.manifest_digest:
                needed.add(image.manifest_digest)
        blobs = {d for d, _ in engine.content.walk()}
        assert blobs == needed, "orphan or missing blobs"
        made = set(engine.snapshots.list())
        assert made <= chains, "orphan snapshots"
        assert chains - made <= lazy, "missing snapshots"
        for chain in made & lazy:   # made whole from its blob, or not at all
            assert engine.snapshots.diff_id(chain)
            assert engine.snapshots.usage(chain).size == next(
                l["unpackedSize"] for i in images for l in i.layers if l["chainID"] == chain)
        for dirpath, dirnames, filenames in os.walk(os.path.join(world["root"], "content")):
            assert not [n for n in filenames if n.startswith(".")], filenames
        assert not [n for n in os.listdir(engine.snapshots.dir) if n.startswith(".tmp-")]
        return {"tags": sorted(t for i in images for t in i.repo_tags),
                "ids": sorted(i.id for i in images)}
    finally:
        engine.close()


def _remove_tag(world, tag: str) -> None:
    engine = Engine(EngineConfig(root=world["root"], exec_root=world["exec_root"]))
    try:
        engine.images.remove(tag)
    finally:
        engine.close()


COMMIT_POINTS = ["content.writer.before_rename", "commit.layer_written",
                 "content.ingest.before_rename", "commit.config_written"]


@pytest.mark.parametrize("failpoint", COMMIT_POINTS)
def test_commit_killed_at_a_failpoint_leaves_no_image(world, failpoint):
    before = _state(world)
    proc = _child(world, "commit", world["cid"], failpoint)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_STATUS, err.decode()
    assert _state(world) == before


def test_commit_and_load_killed_at_random_moments(world):
    base = _state(world)
    # one commit to completion: how long it takes, and an archive of it for the loads
    start = time.monotonic()
    proc = _child(world, "commit", world["cid"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    full = time.monotonic() - start
    state = _state(world)
    assert "crash:1" in state["tags"]
    engine = Engine(EngineConfig(root=world["root"], exec_root=world["exec_root"]))
    archive = os.path.join(world["tmp"], "crash.tar")
    try:
        from skiff.engine import archive as image_archive

        with open(archive, "wb") as f:
            image_archive.write_archive(engine.images, image_archive.resolve_names(
                engine.images, ["crash:1"]), f)
    finally:
        engine.close()
    _remove_tag(world, "crash:1")
    assert _state(world) == base
    rng = random.Random(1234)
    outcomes = {"commit": set(), "load": set()}
    for action, arg in (("commit", world["cid"]), ("load", archive)):
        for _ in range(6):
            proc = _child(world, action, arg)
            time.sleep(rng.uniform(0.0, full * 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            after = _state(world)  # invariants checked inside
            whole = "crash:1" in after["tags"]
            outcomes[action].add(whole)
            if whole:
                _remove_tag(world, "crash:1")
            assert _state(world) == base
    # after all that, a commit and a load still work
    for action, arg in (("commit", world["cid"]), ("load", archive)):
        proc = _child(world, action, arg)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert "crash:1" in _state(world)["tags"]
        _remove_tag(world, "crash:1")
    assert _state(world) == base


def _commit_whole(world) -> dict:
    proc = _child(world, "commit", world["cid"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    state = _state(world)
    assert "crash:1" in state["tags"]
    return state


def _top_chain(world) -> tuple[str, bool]:
    engine = Engine(EngineConfig(root=world["root"], exec_root=world["exec_root"]))
    try:
        chain = engine.images.get("crash:1").chain_ids[-1]
        return chain, engine.snapshots.exists(chain)
    finally:
        engine.close()


def test_commit_leaves_the_snapshot_to_its_first_use(world):
    """A commit writes the blob only; the first use unpacks the snapshot, killed there it
    leaves the image whole and the snapshot not made (its temp dir removed at start-up)."""
    base = _state(world)
    committed = _commit_whole(world)
    chain, made = _top_chain(world)
    assert not made
    proc = _child(world, "unpack", "crash:1", "snapshot.unpack.before_rename")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_STATUS, err.decode()
    assert _state(world) == committed
    assert _top_chain(world) == (chain, False)
    proc = _child(world, "unpack", "crash:1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert _state(world) == committed    # sizes checked against the commit's record inside
    assert _top_chain(world) == (chain, True)
    _remove_tag(world, "crash:1")
    assert _state(world) == base


def test_first_unpack_killed_at_random_moments(world):
    base = _state(world)
    committed = _commit_whole(world)
    start = time.monotonic()
    proc = _child(world, "unpack", "crash:1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    full = time.monotonic() - start
    _remove_tag(world, "crash:1")
    rng = random.Random(2468)
    for _ in range(6):
        committed = _commit_whole(world)
        proc = _child(world, "unpack", "crash:1")
        time.sleep(rng.uniform(0.0, full * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _state(world) == committed   # the snapshot made whole or not at all
        _remove_tag(world, "crash:1")
        assert _state(world) == base


def test_first_use_by_two_creates_at_once_unpacks_once(world, monkeypatch):
    import threading

    from skiff.snapshot import snapshotter

    base = _state(world)
    _commit_whole(world)
    calls = []
    real = snapshotter.apply_layer

    def slow_apply(*args, **kwargs):
        calls.append(args[1])
        time.sleep(0.3)      # both creates arrive while the first unpack runs
        return real(*args, **kwargs)

    monkeypatch.setattr(snapshotter, "apply_layer", slow_apply)
    engine = Engine(EngineConfig(root=world["root"], exec_root=world["exec_root"]))
    made, errors = [], []

    def create():
        try:
            made.append(engine.containers.create({"Image": "crash:1", "Cmd": ["true"]}).id)
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(e)

    try:
        threads = [threading.Thread(target=create) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and len(made) == 2
        assert len(calls) == 1
        chain = engine.images.get("crash:1").chain_ids[-1]
        assert engine.snapshots.exists(chain)
        for cid in made:
            asyncio.run(engine.containers.remove(cid))
    finally:
        engine.close()
    _remove_tag(world, "crash:1")
    assert _state(world) == base


PRUNE_POINTS = ["image.remove.row_deleted", "image.collect.snapshot_deleted"]


def _prunable(world) -> None:
    """Three unused images sharing a commit layer on busybox's (which a container uses, so
    busybox stays), one of them untagged."""
    from skiff.engine import commit

    engine = Engine(EngineConfig(root=world["root"], exec_root=world["exec_root"]))
    try:
        for tag in ("a", "b", ""):
            commit.commit(engine, world["cid"], repo="prunable" if tag else "", tag=tag,
                          pause=False)
            time.sleep(0.01)   # distinct `created`, so distinct image ids
    finally:
        engine.close()


@pytest.mark.parametrize("failpoint", PRUNE_POINTS)
def test_prune_killed_at_a_failpoint_keeps_what_images_need(world, failpoint):
    base = _state(world)
    _prunable(world)
    assert len(_state(world)["ids"]) == len(base["ids"]) + 3
    proc = _child(world, "prune", "-", failpoint)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_STATUS, err.decode()
    _state(world)   # every listed image whole, no orphan, after the start-up clean-up
    proc = _child(world, "prune", "-")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert _state(world) == base


def test_prune_killed_at_random_moments(world):
    base = _state(world)
    rng = random.Random(4321)
    _prunable(world)
    start = time.monotonic()
    proc = _child(world, "prune", "-")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    full = time.monotonic() - start
    assert _state(world) == base
    for _ in range(6):
        _prunable(world)
        proc = _child(world, "prune", "-")
        time.sleep(rng.uniform(0.0, full * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _state(world)
        proc = _child(world, "prune", "-")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert _state(world) == base
