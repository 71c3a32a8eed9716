"""The daemon's side of a context: COPY sources (globs, .dockerignore), content digests that
ignore timestamps, and image paths resolved through the image's own symlinks."""

import os

import pytest

from skiff.build.context import ContextDir, ContextError, resolve_in_image
from skiff.dockerignore import IgnoreMatcher


def make(root, files):
    for name, data in files.items():
        full = os.path.join(root, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(data)


def test_sources_globs_and_ignore(tmp_path):
    make(tmp_path, {"a.txt": "a", "b.txt": "b", "c.md": "c", "d/e.txt": "e", "x.log": "x"})
    ctx = ContextDir(str(tmp_path), IgnoreMatcher.parse("*.log\nb.txt\n"))
    assert ctx.sources(["*.txt"]) == ["a.txt"]
    assert ctx.sources(["d/*.txt", "c.md", "a.txt", "a.txt"]) == ["d/e.txt", "c.md", "a.txt"]
    assert ctx.sources(["."]) == [""]
    with pytest.raises(ContextError, match="stat x.log: file does not exist"):
        ctx.sources(["x.log"])
    with pytest.raises(ContextError):
        ctx.sources(["*.none"])
    walked = [rel for rel, _ in ctx.walk("")]
    assert "x.log" not in walked and "b.txt" not in walked and "d/e.txt" in walked


def test_digest_is_content_not_time(tmp_path):
    make(tmp_path, {"d/a": "1", "d/b": "2"})
    ctx = ContextDir(str(tmp_path))
    first = ctx.digest(["d"])
    os.utime(tmp_path / "d" / "a", (1, 1))
    assert ContextDir(str(tmp_path)).digest(["d"]) == first
    make(tmp_path, {"d/a": "changed"})
    assert ContextDir(str(tmp_path)).digest(["d"]) != first
    os.chmod(tmp_path / "d" / "b", 0o600)
    assert ContextDir(str(tmp_path)).digest(["d"]) != ContextDir(str(tmp_path)).digest(["d/a"])


def test_resolve_in_image_follows_image_symlinks(tmp_path):
    lower = tmp_path / "lower"
    upper = tmp_path / "upper"
    os.makedirs(lower / "usr" / "bin")
    os.makedirs(upper)
    os.symlink("usr/bin", lower / "bin")
    os.symlink("/etc/../../../outside", lower / "escape")
    assert resolve_in_image([str(lower)], str(upper), "/bin/tool") == "usr/bin/tool"
    assert resolve_in_image([str(lower)], str(upper), "/escape/x") == "outside/x"
    assert resolve_in_image([str(lower)], str(upper), "/a/../b/./c") == "b/c"
