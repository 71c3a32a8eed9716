""".dockerignore: which files of a build context are left out, by docker's rules.

    m = IgnoreMatcher.parse("**/*.log\\n!keep.log\\nbuild/\\n")
    m.excluded("a/b/x.log")  -> True
    m.excluded("keep.log")   -> False      # the exception comes later, so it wins
    m.excluded("build/out")  -> True       # a matching parent excludes everything beneath

Rules (moby/patternmatcher): one pattern a line; `#` lines are comments; surrounding spaces
are trimmed; a leading `!` makes an exception; patterns are cleaned (`./a//b/` is `a/b`, a
leading `/` is dropped); `*` matches any run of non-`/` characters, `?` one of them, `[...]`
a class, `**` any number of directories (also none); `\\` escapes. A path is excluded when
the LAST pattern that matches it (or one of its parent directories) is not an exception.
Pure: text in, decisions out.
"""

from __future__ import annotations

import posixpath
import re


class Pattern:
    """One line of the file (no dataclass: the CLI imports this on a rebuild's hot path)."""

    __slots__ = ("text", "exclusion", "regex")

    def __init__(self, text: str, exclusion: bool, regex: re.Pattern):
        self.text = text
        self.exclusion = exclusion      # a `!` exception
        self.regex = regex

    def matches(self, path: str) -> bool:
        """The path or one of its parent directories matches."""
        if self.regex.match(path):
            return True
        parts = path.split("/")
        for n in range(len(parts) - 1, 0, -1):
            if self.regex.match("/".join(parts[:n])):
                return True
        return False


def _clean(pattern: str) -> str:
    cleaned = posixpath.normpath(pattern)
    while cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return "." if cleaned in ("", ".") else cleaned


def compile_pattern(pattern: str) -> re.Pattern:
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                while i + 1 < n and pattern[i + 1] == "*":
                    i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                    out.append("(?:.*/)?")   # `**/`: zero or more directories
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"syntax error in pattern: {pattern}")
            body = pattern[i + 1:end]
            if body.startswith("^") or body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.S)


class IgnoreMatcher:
    def __init__(self, patterns: list[Pattern]):
        self.patterns = patterns
        self.has_exclusions = any(p.exclusion for p in patterns)

    @classmethod
    def parse(cls, text: str | bytes) -> "IgnoreMatcher":
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return cls.from_lines(text.splitlines())

    @classmethod
    def from_lines(cls, lines: list[str]) -> "IgnoreMatcher":
        patterns = []
        for line in lines:
            line = line.lstrip("\ufeff")
            if line.startswith("#"):
                continue
            line = line.strip()
            if not line:
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
                if not line:
                    raise ValueError("illegal exclusion pattern: \"!\"")
            cleaned = _clean(line)
            patterns.append(Pattern(cleaned, exclusion, compile_pattern(cleaned)))
        return cls(patterns)

    def excluded(self, path: str) -> bool:
        """Is this context path (relative, `/`-separated) left out?"""
        path = _clean(path)
        result = False
        for p in self.patterns:
            if p.exclusion == result:
                # only patterns that could change the answer need testing
                if p.matches(path):
                    result = not p.exclusion
        return result

    def may_include_below(self, directory: str) -> bool:
        """Can anything beneath an excluded directory be brought back by an exception? (If
        not, a walk need not enter it.)"""
        if not self.has_exclusions:
            return False
        directory = _clean(directory)
        for p in self.patterns:
            if not p.exclusion:
                continue
            if p.text.startswith(directory + "/") or "*" in p.text or "?" in p.text or \
                    "[" in p.text:
                return True
        return False
