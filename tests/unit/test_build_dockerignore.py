""".dockerignore matching with docker's rules."""

import pytest

from skiff.dockerignore import IgnoreMatcher


def ex(patterns, path):
    return IgnoreMatcher.parse(patterns).excluded(path)


@pytest.mark.parametrize("patterns,path,expected", [
    ("*.log", "a.log", True), ("*.log", "d/a.log", False), ("**/*.log", "d/e/a.log", True),
    ("**/*.log", "a.log", True), ("d", "d/x/y", True), ("d/", "d/x", True),
    ("/d", "d/x", True), ("./d//e/", "d/e/f", True), ("d*", "dx/y", True),
    ("a?c", "abc", True), ("a?c", "a/c", False), ("[ab].txt", "b.txt", True),
    ("[^ab].txt", "c.txt", True), ("[^ab].txt", "a.txt", False),
    ("d/**", "d/x/y", True), ("d/**/z", "d/z", True), ("d/**/z", "d/a/b/z", True),
    ("# comment\n", "# comment", False), ("  spaced  ", "spaced", True),
    ("*\n!keep", "keep", False), ("*\n!keep", "other", True),
    ("!keep\n*", "keep", True),                     # order: the last match wins
    ("d\n!d/keep", "d/keep", False), ("d\n!d/keep", "d/other", True),
    ("**\n!src/**/*.py", "src/a/b.py", False), ("**\n!src/**/*.py", "src/a/b.txt", True),
    ("x\\*y", "x*y", True), ("x\\*y", "xay", False),
])
def test_patterns(patterns, path, expected):
    assert ex(patterns, path) is expected


def test_exclusion_needs_a_pattern():
    with pytest.raises(ValueError):
        IgnoreMatcher.parse("!\n")


def test_may_include_below():
    m = IgnoreMatcher.parse("d\n!d/keep\n")
    assert m.may_include_below("d")
    assert not IgnoreMatcher.parse("d\n").may_include_below("d")
