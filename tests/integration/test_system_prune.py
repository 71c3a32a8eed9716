"""`skiff system prune`: stopped containers, dangling (or, with -a, unused) images, in one
command that calls each kind's prune endpoint; kinds the daemon cannot prune are skipped."""

import os

import pytest


@pytest.fixture
def sdk(daemon, test_images):
    daemon.load_busybox(test_images)
    return daemon.client()


def _dangling(sdk, label: str):
    """An untagged image (a commit without a name) with a label."""
    c = sdk.containers.create("busybox", ["true"])
    try:
        return sdk.images.get(sdk.api.commit(c.id, changes=[f"LABEL {label}"])["Id"])
    finally:
        c.remove()


def test_answer_no_removes_nothing(daemon, sdk):
    c = sdk.containers.create("busybox", ["true"], name=f"prune-keep-{os.getpid()}")
    try:
        result = daemon.cli("system", "prune", input=b"n\n")
        assert result.returncode == 0, result.stderr
        out = result.stdout.decode()
        assert out.startswith("WARNING! This will remove:\n  - all stopped containers\n")
        assert "  - all dangling images\n" in out
        assert out.endswith("Are you sure you want to continue? [y/N] ")
        assert sdk.containers.get(c.id)
    finally:
        c.remove(force=True)


def test_prune_containers_and_dangling_images(daemon, sdk):
    stopped = sdk.containers.create("busybox", ["true"], name=f"prune-gone-{os.getpid()}")
    running = sdk.containers.run("busybox", ["sleep", "60"], detach=True)
    dangling = _dangling(sdk, "prune=test")
    sdk.images.get("busybox").tag("prune-unused", "v1")
    try:
        result = daemon.cli("system", "prune", "-f")
        assert result.returncode == 0, result.stderr.decode() + daemon.log()
        out = result.stdout.decode()
        assert f"Deleted Containers:\n{stopped.id}\n\n" in out, out
        assert f"deleted: {dangling.id}\n" in out
        assert out.splitlines()[-1].startswith("Total reclaimed space: ")
        ids = {c.id for c in sdk.containers.list(all=True)}
        assert stopped.id not in ids and running.id in ids
        assert dangling.id not in {i.id for i in sdk.images.list(all=True)}
        assert sdk.images.get("prune-unused:v1")  # tagged: kept without -a
        # a kind the daemon has no prune endpoint for is skipped, not an error
        err = result.stderr.decode()
        for path, kind in (("/networks/prune", "networks"), ("/build/prune", "build cache")):
            assert (f"skipping {kind}" in err) == (status_of(sdk, path) == 404), err
    finally:
        running.remove(force=True)


def test_all_removes_unused_tagged_images_with_filters(daemon, sdk):
    keep = _dangling(sdk, "keep=yes")
    sdk.images.get(keep.id).tag("prune-kept", "v1")
    gone = _dangling(sdk, "keep=no")
    sdk.images.get(gone.id).tag("prune-gone", "v1")
    user = sdk.containers.create("busybox", ["true"])   # busybox itself is in use
    try:
        result = daemon.cli("system", "prune", "-a", "--filter", "label=keep=no",
                            input=b"y\n")
        assert result.returncode == 0, result.stderr.decode() + daemon.log()
        out = result.stdout.decode()
        assert "  - all images without at least one container associated to them\n" in out
        assert "Items to be pruned will be filtered with:\n  - label=keep=no\n" in out
        names = {t for i in sdk.images.list() for t in i.tags}
        assert "prune-kept:v1" in names and "busybox:latest" in names
        assert "prune-gone:v1" not in names
        # the label filter reached the container prune too: the unlabelled one stays
        assert user.id in {c.id for c in sdk.containers.list(all=True)}
    finally:
        user.remove(force=True)
        sdk.images.remove(keep.id, force=True)


def status_of(sdk, path: str) -> int:
    """The daemon's status for a prune that matches nothing (404: no such endpoint)."""
    response = sdk.api._post(sdk.api._url(path),
                             params={"filters": '{"label":["nothing=here"]}'})
    return response.status_code
