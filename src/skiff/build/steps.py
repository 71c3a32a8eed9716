"""What each metadata instruction does to an image's `config`, and the history text docker's
classic builder records for it. Pure: (instruction, config, variables) in, a new config out.

    cfg, text = apply_metadata(inst("ENV A=1 B=\\"x y\\""), {}, {}, "\\\\")
    cfg  -> {"Env": ["A=1", "B=x y"]}
    text -> 'ENV A=1 B=x y'            # history: "/bin/sh -c #(nop)  ENV A=1 B=x y"

Variables for expansion come from `variables(config, args)`: the stage's ARGs, overridden by
its ENV (docker's precedence).
"""

from __future__ import annotations

import json
import posixpath
import re

from skiff.build.dockerfile import DockerfileError, Instruction
from skiff.build.expand import ExpansionError, expand_word, expand_words

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
METADATA = ("env", "label", "expose", "volume", "user", "workdir", "cmd", "entrypoint",
            "shell", "stopsignal", "healthcheck", "onbuild", "maintainer", "arg")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}


def variables(config: dict, args: dict[str, str | None]) -> dict[str, str]:
    out = {k: v for k, v in args.items() if v is not None}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def go_quote_list(items: list[str]) -> str:
    """A string list as Go's %q prints it (`["sh" "-c" "x"]`), as docker's history has it."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String: 0s, 500ms, 1.5s, 1m30s, 1h0m0s."""
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return _trim(ns / size) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = _trim(rest / 10**9) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{minutes}m{seconds}"
    return seconds


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def go_quote_rune(value: int) -> str:
    """Go's %q of an integer: a quoted character ('\\x02', 'A')."""
    if 0x20 <= value < 0x7f:
        ch = chr(value)
        return "'\\" + ch + "'" if ch in "'\\" else "'" + ch + "'"
    if value < 0x80:
        named = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r"}
        return "'\\" + named[value] + "'" if value in named else f"'\\x{value:02x}'"
    return "'" + chr(value) + "'" if chr(value).isprintable() else f"'\\u{value:04x}'"


def _word(text: str, env: dict, escape: str, line: int) -> str:
    try:
        return expand_word(text, env, escape)
    except ExpansionError as e:
        raise DockerfileError(str(e), line) from None


def _words(text: str, env: dict, escape: str, line: int) -> list[str]:
    try:
        return expand_words(text, env, escape)
    except ExpansionError as e:
        raise DockerfileError(str(e), line) from None


def parse_duration(text: str, flag: str, line: int) -> int:
    """Go's time.ParseDuration, in nanoseconds."""
    if text in ("0", ""):
        return 0
    if not _DURATION.match(text):
        raise DockerfileError(f"time: invalid duration \"{text}\"", line)
    total = 0.0
    for number, unit in _DURATION_PART.findall(text):
        total += float(number) * _UNITS[unit]
    return int(total)


def command(inst: Instruction, shell: list[str]) -> list[str]:
    """CMD, ENTRYPOINT, RUN: the exec form as it is, the shell form through the shell."""
    if inst.json_form:
        return list(inst.args)
    return list(shell) + [inst.args[0]] if inst.args else []


def _pairs(inst: Instruction, env: dict, escape: str) -> list[tuple[str, str]]:
    out = []
    for word in inst.args:
        key, _, value = word.partition("=")
        out.append((_word(key, env, escape, inst.line), _word(value, env, escape, inst.line)))
    return out


def _port(text: str, line: int) -> str:
    port, _, proto = text.partition("/")
    proto = proto.lower() or "tcp"
    lo, _, hi = port.partition("-")
    if proto not in ("tcp", "udp", "sctp"):
        raise DockerfileError(f"invalid proto: {proto}", line)
    if not lo.isdigit() or (hi and not hi.isdigit()):
        raise DockerfileError(f"invalid containerPort: {port}", line)
    if hi:
        return [f"{p}/{proto}" for p in range(int(lo), int(hi) + 1)]
    return [f"{port}/{proto}"]


def apply_metadata(inst: Instruction, config: dict, env: dict[str, str],
                   escape: str = "\\", cmd_set: bool = False) -> tuple[dict, str]:
    """The config after a metadata instruction, and its history text. `cmd_set`: a CMD came
    earlier in this stage (then ENTRYPOINT keeps it, as docker's builder does)."""
    cfg = json.loads(json.dumps(config or {}))
    cmd, line = inst.cmd, inst.line
    if cmd == "env":
        pairs = _pairs(inst, env, escape)
        items = list(cfg.get("Env") or [])
        for key, value in pairs:  # replaced in place, or appended (docker's order)
            for i, item in enumerate(items):
                if item.partition("=")[0] == key:
                    items[i] = f"{key}={value}"
                    break
            else:
                items.append(f"{key}={value}")
        cfg["Env"] = items
        return cfg, "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
    if cmd == "label":
        pairs = _pairs(inst, env, escape)
        labels = dict(cfg.get("Labels") or {})
        for key, value in pairs:
            labels[key] = value
        cfg["Labels"] = labels
        return cfg, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
    if cmd == "maintainer":
        return cfg, "MAINTAINER " + inst.args[0]
    if cmd == "expose":
        ports = dict(cfg.get("ExposedPorts") or {})
        words = []
        for w in inst.args:
            words += _words(w, env, escape, line)
        for w in words:
            for p in _port(w, line):
                ports[p] = {}
        cfg["ExposedPorts"] = ports
        return cfg, "EXPOSE " + " ".join(sorted(words))
    if cmd == "volume":
        volumes = dict(cfg.get("Volumes") or {})
        paths = []
        for w in inst.args:
            paths += [_word(w, env, escape, line)] if inst.json_form else \
                _words(w, env, escape, line)
        for p in paths:
            if not p.strip():
                raise DockerfileError("VOLUME specified can not be an empty string", line)
            volumes[p] = {}
        cfg["Volumes"] = volumes
        return cfg, "VOLUME [" + " ".join(paths) + "]"   # Go's %v of a string list
    if cmd == "user":
        cfg["User"] = _word(inst.args[0], env, escape, line)
        return cfg, "USER " + cfg["User"]
    if cmd == "workdir":
        path = _word(inst.args[0], env, escape, line)
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/",
                                                              path))
        if cfg["WorkingDir"].startswith("//"):
            cfg["WorkingDir"] = "/" + cfg["WorkingDir"].lstrip("/")
        return cfg, "WORKDIR " + cfg["WorkingDir"]
    if cmd == "stopsignal":
        sig = _word(inst.args[0], env, escape, line)
        if not (sig.isdigit() or re.match(r"^(SIG)?[A-Z0-9+-]+$", sig.upper())):
            raise DockerfileError(f"Invalid signal: {sig}", line)
        cfg["StopSignal"] = sig
        return cfg, "STOPSIGNAL " + sig
    if cmd == "shell":
        cfg["Shell"] = list(inst.args)
        return cfg, "SHELL " + go_quote_list(inst.args)
    if cmd in ("cmd", "entrypoint"):
        value = command(inst, cfg.get("Shell") or DEFAULT_SHELL)
        if cmd == "cmd":
            cfg["Cmd"] = value
            if not inst.json_form:
                cfg["ArgsEscaped"] = True
            return cfg, "CMD " + go_quote_list(value)
        cfg["Entrypoint"] = value if inst.args else None
        if not inst.json_form and inst.args:
            cfg["ArgsEscaped"] = True
        if not cmd_set:
            cfg["Cmd"] = None  # ENTRYPOINT resets a CMD inherited from the base image
        return cfg, "ENTRYPOINT " + go_quote_list(value)
    if cmd == "healthcheck":
        if inst.args == ["NONE"]:
            cfg["Healthcheck"] = {"Test": ["NONE"]}
            return cfg, 'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}'
        test = ["CMD"] + inst.args[1:] if inst.json_form else \
            ["CMD-SHELL", inst.args[1]]
        check = {"Test": test}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                          ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
            if flag in inst.flags:
                value = parse_duration(str(inst.flags[flag]), flag, line)
                if value and value < 10**6:
                    raise DockerfileError(f"Interval \"{flag}\" cannot be less than 1ms", line)
                if value:
                    check[key] = value
        if "retries" in inst.flags:
            try:
                retries = int(str(inst.flags["retries"]))
            except ValueError:
                raise DockerfileError(f"invalid retries value: {inst.flags['retries']}",
                                      line) from None
            if retries < 0:
                raise DockerfileError("--retries cannot be negative", line)
            if retries:
                check["Retries"] = retries
        cfg["Healthcheck"] = check
        # Go's %v of docker's HealthConfig: durations as Go prints them, retries as %q does
        return cfg, ("HEALTHCHECK &{" + go_quote_list(test) + " " + " ".join(
            '"' + go_duration(check.get(k, 0)) + '"' for k in ("Interval", "Timeout",
                                                               "StartPeriod")) +
            " " + go_quote_rune(check.get("Retries", 0)) + "}")
    if cmd == "onbuild":
        trigger = inst.args[0]
        inner = trigger.split(None, 1)
        trigger = inner[0].upper() + (" " + inner[1] if len(inner) > 1 else "")
        cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [trigger]
        return cfg, "ONBUILD " + trigger
    raise DockerfileError(f"{inst.keyword} is not a metadata instruction", line)
