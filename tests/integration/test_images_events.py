"""Image events as docker emits them: pull and push (actor: the familiar reference, name: the
repository), import and save (actor and name: the image id), commit (a container event with
the new image's id and reference)."""

import io
import os
import tarfile
import time

import pytest

from tests.integration.test_registry import _registry, load_as


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = _registry(tmp_path_factory)
    try:
        yield r
    finally:
        r.stop()


def _events(sdk, since, **filters):
    until = time.time() + 0.3
    return list(sdk.events(since=since, until=until, decode=True, filters=filters))


def test_push_and_pull_events(daemon, test_images, registry):
    sdk = daemon.client()
    repo = f"{registry.host}/events/busybox"
    load_as(daemon, test_images, f"{repo}:v1")
    since = time.time()
    lines = list(sdk.api.push(repo, "v1", stream=True, decode=True))
    assert not [l for l in lines if "error" in l], lines
    sdk.images.remove(f"{repo}:v1")
    lines = list(sdk.api.pull(repo, "v1", stream=True, decode=True))
    assert not [l for l in lines if "error" in l], lines
    seen = {e["Action"]: e for e in _events(sdk, since, type="image")}
    assert seen["push"]["Actor"]["ID"] == f"{repo}:v1"
    assert seen["push"]["Actor"]["Attributes"]["name"] == repo
    assert seen["pull"]["Actor"]["ID"] == f"{repo}:v1"
    assert seen["pull"]["Actor"]["Attributes"]["name"] == repo
    # a failed pull logs nothing
    since = time.time()
    with pytest.raises(Exception):
        sdk.images.pull(repo, "nosuch")
    assert not _events(sdk, since, type="image", event="pull")


def test_import_and_save_events(daemon, test_images):
    sdk = daemon.client()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    since = time.time()
    result = daemon.cli("import", "--change", "LABEL team=events", "-", "evimport:1",
                        input=layer.getvalue())
    assert result.returncode == 0, result.stderr
    image = sdk.images.get("evimport:1")
    b"".join(image.save())
    seen = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"])
            for e in _events(sdk, since, type="image")]
    assert ("import", image.id, {"name": image.id, "team": "events"}) in seen, seen
    assert ("save", image.id, {"name": image.id, "team": "events"}) in seen, seen
    sdk.images.remove(image.id, force=True)


def test_commit_event(daemon, test_images):
    daemon.load_busybox(test_images)
    sdk = daemon.client()
    c = sdk.containers.create("busybox", ["true"], name=f"evcommit-{os.getpid()}")
    try:
        since = time.time()
        image = c.commit("evcommitted", "v2", message="why not")
        seen = _events(sdk, since, type="container", event="commit")
        assert len(seen) == 1, seen
        attrs = seen[0]["Actor"]["Attributes"]
        assert seen[0]["Actor"]["ID"] == c.id
        assert attrs["imageID"] == image.id
        assert attrs["imageRef"] == "evcommitted:v2"
        assert attrs["comment"] == "why not"
        assert attrs["name"] == c.name
        sdk.images.remove(image.id, force=True)
    finally:
        c.remove(force=True)
