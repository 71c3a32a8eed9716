"""The kept build contexts: what a client must send, and the stored tree brought up to date."""

import io
import json
import os
import tarfile

import pytest

from skiff.build.context_store import MANIFEST_NAME, ContextOutOfDate, ContextStore

KEY = "a" * 64


def tar_of(manifest, files: dict) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def entry(path, data=b"", kind="f", mtime=1_000_000_000, mode=0o644):
    return [path, kind, mode, len(data) if kind == "f" else 0, mtime, ""]


def test_only_changed_files_are_needed_and_applied(tmp_path):
    store = ContextStore(str(tmp_path))
    m1 = [entry("d", kind="d", mode=0o755), entry("d/a", b"one"), entry("b", b"two")]
    assert sorted(store.need(KEY, m1)) == ["b", "d/a"]
    ctx = store.apply(KEY, tar_of(m1, {"d/a": b"one", "b": b"two"}))
    assert open(ctx.path("d/a"), "rb").read() == b"one"
    assert store.need(KEY, m1) == []
    inode = os.stat(ctx.path("b")).st_ino
    ctx.file_hash("b")
    store.save(KEY, ctx)
    # b changes (new mtime and size), d/a goes away, c arrives
    m2 = [entry("d", kind="d", mode=0o755), entry("b", b"three", mtime=2_000_000_000),
          entry("c", b"new")]
    assert sorted(store.need(KEY, m2)) == ["b", "c"]
    ctx = store.apply(KEY, tar_of(m2, {"b": b"three", "c": b"new"}))
    assert not os.path.exists(ctx.path("d/a"))
    assert open(ctx.path("b"), "rb").read() == b"three"
    assert os.stat(ctx.path("b")).st_ino != inode      # replaced, never written in place
    assert os.stat(ctx.path("b")).st_mtime_ns == 2_000_000_000


def test_hashes_reused_while_unchanged(tmp_path):
    store = ContextStore(str(tmp_path))
    m = [entry("x", b"data")]
    ctx = store.apply(KEY, tar_of(m, {"x": b"data"}))
    digest = ctx.file_hash("x")
    store.save(KEY, ctx)
    ctx2 = store.apply(KEY, tar_of(m, {}))
    assert ctx2._hashes == {"x": digest}


def test_missing_file_is_out_of_date_and_bad_input_refused(tmp_path):
    store = ContextStore(str(tmp_path))
    with pytest.raises(ContextOutOfDate):
        store.apply(KEY, tar_of([entry("x", b"data")], {}))
    for bad in ([["../x", "f", 0, 0, 0, ""]], [["/abs", "f", 0, 0, 0, ""]], [["x", "q", 0, 0, 0, ""]],
                "nope"):
        with pytest.raises(ValueError):
            store.need(KEY, bad)
    with pytest.raises(ValueError):
        store.need("not-a-key", [])


def test_source_digests_reused_until_something_beneath_changes(tmp_path):
    store = ContextStore(str(tmp_path))
    m1 = [entry("d", kind="d", mode=0o755), entry("d/a", b"one"), entry("b", b"two")]
    ctx = store.apply(KEY, tar_of(m1, {"d/a": b"one", "b": b"two"}))
    first = ctx.digest(["d"])
    store.save(KEY, ctx)
    ctx = store.apply(KEY, tar_of(m1, {}))
    assert ctx.digests["d"][1] == first
    os.unlink(ctx.path("d/a"))      # not re-read: the stored digest answers
    assert ctx.digest(["d"]) == first
    m2 = [entry("d", kind="d", mode=0o755), entry("d/a", b"ONE", mtime=5), entry("b", b"xx")]
    ctx = store.apply(KEY, tar_of(m2, {"d/a": b"ONE", "b": b"xx"}))
    assert ctx.digest(["d"]) != first
