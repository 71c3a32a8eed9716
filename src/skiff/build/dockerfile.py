"""The Dockerfile language: text in, a list of instructions out (no I/O, no expansion).

    df = parse("# escape=`\\nFROM busybox AS base\\nRUN echo `\\n  hi\\n")
    df.escape                      -> "`"
    df.instructions[1]             -> Instruction(cmd="run", args=["echo   hi"], line=3, ...)

What it handles, as docker's parser does (moby/buildkit frontend/dockerfile/parser):
  - parser directives at the very top (`# syntax=...`, `# escape=\\|``, `# check=...`), only
    before the first comment, blank line or instruction;
  - comments (`#` as a line's first non-blank character, also between continued lines) and
    blank lines;
  - line continuations with the escape character at the end of a line;
  - heredocs (`RUN <<EOF`, `<<-EOF` stripping leading tabs, `<<"EOF"` not expanded) for RUN,
    COPY and ADD;
  - per instruction: flags (`--from=stage`), the exec (JSON array) or shell form, `KEY=VALUE`
    pairs (quotes kept for the expander), `FROM image AS name`, `HEALTHCHECK` and `ONBUILD`
    (whose argument is parsed as an instruction of its own).
Errors are DockerfileError, worded as docker's ("dockerfile parse error line 3: unknown
instruction: FOO"), with the line they are about.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

INSTRUCTIONS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from",
                "healthcheck", "label", "maintainer", "onbuild", "run", "shell", "stopsignal",
                "user", "volume", "workdir")
FLAGS = {  # the flags each instruction accepts, and whether each is a boolean
    "from": {"platform": False},
    "run": {"network": False, "mount": False, "security": False},
    "copy": {"from": False, "chown": False, "chmod": False, "link": True, "parents": True,
             "exclude": False},
    "add": {"chown": False, "chmod": False, "link": True, "checksum": False,
            "keep-git-dir": True, "exclude": False},
    "healthcheck": {"interval": False, "timeout": False, "start-period": False,
                    "start-interval": False, "retries": False},
}
HEREDOC_INSTRUCTIONS = ("run", "copy", "add")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)\s*(?:\"([^\"]+)\"|'([^']+)'|([A-Za-z_][A-Za-z0-9_]*))")


class DockerfileError(ValueError):
    """A Dockerfile that cannot be parsed; `line` is 1-based (0 when not about one line)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(f"dockerfile parse error line {line}: {message}" if line else message)
        self.line = line
        self.detail = message


@dataclass
class Heredoc:
    name: str
    content: str
    expand: bool = True      # unquoted delimiter: variables are expanded in the content
    chomp: bool = False      # `<<-`: leading tabs were stripped


@dataclass
class Instruction:
    cmd: str                             # lower case: "run"
    args: list[str]                      # raw (unexpanded) arguments, see `parse_args`
    original: str                        # the instruction as written, continuations joined
    line: int                            # its first line
    flags: dict[str, str | bool] = field(default_factory=dict)
    json_form: bool = False              # exec form (a JSON array)
    heredocs: list[Heredoc] = field(default_factory=list)
    onbuild: Instruction | None = None   # ONBUILD's instruction

    @property
    def keyword(self) -> str:
        return self.cmd.upper()


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    directives: dict[str, str]
    escape: str = "\\"


# -- lines -------------------------------------------------------------------------------------


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """Parser directives at the top; returns them and the index of the first other line."""
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _DIRECTIVE.match(line.strip()) if line.strip().startswith("#") else None
        if not m:
            return found, i
        key = m.group(1).lower()
        if key not in ("syntax", "escape", "check"):
            return found, i  # an unknown directive is a comment, and ends the directives
        if key in found:
            raise DockerfileError(f"only one {key} parser directive can be used", i + 1)
        found[key] = m.group(2)
    return found, len(lines)


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def parse(text: str | bytes) -> Dockerfile:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DockerfileError("the Dockerfile is not UTF-8 text") from None
    text = text.lstrip("\ufeff")
    lines = text.replace("\r\n", "\n").split("\n")
    directives, start = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"invalid escape token '{escape}' does not match ` or \\")
    out: list[Instruction] = []
    i = start
    while i < len(lines):
        line = lines[i]
        first = i + 1
        if not line.strip() or _is_comment(line):
            i += 1
            continue
        # gather continuation lines
        parts = []
        current = line
        while True:
            stripped = current.rstrip()
            if stripped.endswith(escape):
                parts.append(stripped[:-1])
                i += 1
                while i < len(lines) and (_is_comment(lines[i]) or not lines[i].strip()):
                    i += 1  # comments and blank lines inside a continuation are dropped
                if i >= len(lines):
                    break
                current = lines[i]
            else:
                parts.append(current)
                break
        i += 1
        joined = "".join(parts).strip()
        instruction, i = _instruction(joined, first, lines, i)
        out.append(instruction)
    return Dockerfile(instructions=out, directives=directives, escape=escape)


def _heredocs(rest: str, lines: list[str], i: int, line_no: int) -> tuple[list[Heredoc], int]:
    """Read the bodies of the heredocs that `rest` opens from lines[i:]."""
    docs = []
    for m in _HEREDOC.finditer(rest):
        chomp = m.group(1) == "-"
        name = m.group(2) or m.group(3) or m.group(4)
        quoted = m.group(4) is None
        body = []
        while True:
            if i >= len(lines):
                raise DockerfileError(f"unterminated heredoc {name}", line_no)
            line = lines[i]
            i += 1
            check = line.lstrip("\t") if chomp else line
            if check == name:
                break
            body.append(check)
        content = "\n".join(body) + ("\n" if body else "")
        docs.append(Heredoc(name=name, content=content, expand=not quoted, chomp=chomp))
    return docs, i


def _instruction(text: str, line: int, lines: list[str], i: int) -> tuple[Instruction, int]:
    m = re.match(r"^(\S+)\s*(.*)$", text, re.S)
    word, rest = m.group(1), m.group(2)
    cmd = word.lower()
    if cmd not in INSTRUCTIONS:
        raise DockerfileError(f"unknown instruction: {word.upper()}", line)
    heredocs: list[Heredoc] = []
    if cmd in HEREDOC_INSTRUCTIONS and "<<" in rest and not rest.lstrip().startswith("["):
        heredocs, i = _heredocs(rest, lines, i, line)
    inst = parse_instruction(cmd, rest, text, line)
    inst.heredocs = heredocs
    return inst, i


# -- arguments ---------------------------------------------------------------------------------


def _flags(cmd: str, rest: str, line: int) -> tuple[dict[str, str | bool], str]:
    flags: dict[str, str | bool] = {}
    allowed = FLAGS.get(cmd, {})
    while rest.startswith("--"):
        m = re.match(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=((?:\"[^\"]*\"|[^\s])*))?(\s+|$)", rest)
        if not m:
            break
        name, value = m.group(1), m.group(2)
        if name not in allowed:
            raise DockerfileError(f"unknown flag: {name}", line)
        if allowed[name]:  # boolean
            flags[name] = value is None or value.lower() in ("true", "1", "")
        else:
            if value is None:
                raise DockerfileError(f"missing a value on flag: {name}", line)
            if value.startswith('"') and value.endswith('"') and len(value) >= 2:
                value = value[1:-1]
            if name in flags and name not in ("mount", "exclude"):
                raise DockerfileError(f"duplicate flag specified: {name}", line)
            flags[name] = value if name not in flags else f"{flags[name]}\n{value}"
        rest = rest[m.end():]
    return flags, rest


def _json_array(rest: str) -> list[str] | None:
    text = rest.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def split_words(rest: str, escape: str = "\\") -> list[str]:
    """Whitespace-separated words, quotes and escapes kept (moby's parseWords): the expander
    removes them later."""
    words, word = [], []
    quote = ""
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch == escape and i + 1 < len(rest):
            word.append(ch + rest[i + 1])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            word.append(ch)
        elif ch in "\"'":
            quote = ch
            word.append(ch)
        elif ch.isspace():
            if word:
                words.append("".join(word))
                word = []
        else:
            word.append(ch)
        i += 1
    if word:
        words.append("".join(word))
    return words


def _name_values(cmd: str, rest: str, line: int) -> list[str]:
    """ENV and LABEL: `K=V ...` (each as "K=V", quotes kept) or the legacy `K V V`."""
    words = split_words(rest)
    if not words:
        raise DockerfileError(f"{cmd.upper()} requires at least one argument", line)
    if "=" not in words[0]:
        if cmd == "label":
            raise DockerfileError("LABEL requires at least one argument"
                                  if not words else
                                  f"Syntax error - can't find = in \"{words[0]}\". Must be of "
                                  f"the form: name=value", line)
        key, _, value = rest.strip().partition(" ")
        if not value.strip():
            raise DockerfileError("ENV must have two arguments", line)
        return [f"{key}={value.strip()}"]
    for w in words:
        if "=" not in w:
            raise DockerfileError(f"Syntax error - can't find = in \"{w}\". Must be of the "
                                  f"form: name=value", line)
        if w.startswith("="):
            raise DockerfileError(f"{cmd.upper()} names can not be blank", line)
    return words


def parse_instruction(cmd: str, rest: str, original: str, line: int) -> Instruction:
    """One instruction's arguments. `args` per kind:
    FROM [image, name?]; RUN/CMD/ENTRYPOINT/SHELL the JSON array, or [shell text];
    ENV/LABEL ["K=V", ...]; ARG ["NAME[=default]", ...]; COPY/ADD [src..., dest];
    HEALTHCHECK ["NONE"] or ["CMD", ...command]; others the words of the rest."""
    flags, rest = _flags(cmd, rest.strip(), line)
    inst = Instruction(cmd=cmd, args=[], original=original, line=line, flags=flags)
    keyword = cmd.upper()
    if cmd == "from":
        words = rest.split()
        if len(words) == 3 and words[1].lower() == "as":
            if not re.match(r"^[a-zA-Z][a-zA-Z0-9_.-]*$", words[2]):
                raise DockerfileError(f"invalid name for build stage: \"{words[2]}\", name "
                                      f"can't start with a number or contain symbols", line)
            inst.args = [words[0], words[2].lower()]
        elif len(words) == 1:
            inst.args = [words[0]]
        else:
            raise DockerfileError("FROM requires either one or three arguments", line)
    elif cmd in ("run", "cmd", "entrypoint", "shell"):
        array = _json_array(rest)
        if array is not None:
            inst.args, inst.json_form = array, True
        elif cmd == "shell":
            raise DockerfileError("SHELL requires the arguments to be in JSON form", line)
        else:
            if cmd == "run" and not rest.strip():
                raise DockerfileError("RUN requires at least one argument", line)
            inst.args = [rest] if rest.strip() or cmd != "run" else []
        if cmd == "shell" and not inst.args:
            raise DockerfileError("SHELL requires at least one argument", line)
    elif cmd in ("env", "label"):
        inst.args = _name_values(cmd, rest, line)
    elif cmd == "arg":
        words = split_words(rest)
        if not words:
            raise DockerfileError("ARG requires at least one argument", line)
        for w in words:
            if w.startswith("="):
                raise DockerfileError("ARG names can not be blank", line)
        inst.args = words
    elif cmd in ("copy", "add"):
        array = _json_array(rest)
        if array is not None:
            inst.args, inst.json_form = array, True
        else:
            inst.args = split_words(rest)
        if len(inst.args) < 2 and not ("<<" in rest and len(inst.args) >= 1):
            raise DockerfileError(f"{keyword} requires at least two arguments, but only one "
                                  f"was provided. Destination could not be determined", line)
    elif cmd in ("expose", "volume"):
        array = _json_array(rest) if cmd == "volume" else None
        if array is not None:
            inst.args, inst.json_form = array, True
        else:
            inst.args = split_words(rest)
        if not inst.args:
            raise DockerfileError(f"{keyword} requires at least one argument", line)
        for a in inst.args:
            if cmd == "volume" and not a.strip():
                raise DockerfileError("VOLUME specified can not be an empty string", line)
    elif cmd in ("user", "workdir", "stopsignal", "maintainer"):
        text = rest.strip()
        if not text:
            raise DockerfileError(f"{keyword} requires exactly one argument", line)
        if cmd in ("stopsignal",) and len(text.split()) != 1:
            raise DockerfileError(f"{keyword} requires exactly one argument", line)
        inst.args = [text]
    elif cmd == "healthcheck":
        words = rest.split(None, 1)
        if not words:
            raise DockerfileError("HEALTHCHECK requires at least one argument", line)
        kind = words[0].upper()
        if kind == "NONE":
            if len(words) > 1:
                raise DockerfileError("HEALTHCHECK NONE takes no arguments", line)
            if flags:
                raise DockerfileError("HEALTHCHECK NONE does not accept options", line)
            inst.args = ["NONE"]
        elif kind == "CMD":
            body = words[1] if len(words) > 1 else ""
            if not body.strip():
                raise DockerfileError("Missing command after HEALTHCHECK CMD", line)
            array = _json_array(body)
            if array is not None:
                inst.args, inst.json_form = ["CMD"] + array, True
            else:
                inst.args = ["CMD", body]
        else:
            raise DockerfileError(f"Unknown type \"{kind}\" in HEALTHCHECK (try CMD)", line)
    elif cmd == "onbuild":
        text = rest.strip()
        if not text:
            raise DockerfileError("ONBUILD requires at least one argument", line)
        m = re.match(r"^(\S+)\s*(.*)$", text, re.S)
        inner = m.group(1).lower()
        if inner == "onbuild":
            raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", line)
        if inner in ("maintainer", "from"):
            raise DockerfileError(f"{inner.upper()} isn't allowed as an ONBUILD trigger", line)
        if inner not in INSTRUCTIONS:
            raise DockerfileError(f"unknown instruction: {m.group(1).upper()}", line)
        inst.onbuild = parse_instruction(inner, m.group(2), text, line)
        inst.args = [text]
    return inst
