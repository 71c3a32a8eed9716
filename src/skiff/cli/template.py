"""A small subset of Go's text/template for `--format`: `{{.Field.Sub}}`, `{{json .X}}`,
`{{index .Labels "k"}}`, `{{join .Args ","}}`, `{{upper .X}}`, `{{lower .X}}`, `{{len .X}}`,
`{{.Label "k"}}` (ps), `{{println .X}}`. Values print the way Go's `%v` prints decoded JSON.
"""

from __future__ import annotations

import json
import re
import shlex

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)


class TemplateError(ValueError):
    pass


def go_value(value) -> str:
    """Go's `%v` of a decoded JSON value."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value)) if abs(value) < 1e21 else repr(value)
        return repr(value)
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_value(v)}" for k, v in sorted(value.items()))
        return f"map[{inner}]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)


def unescape(fmt: str) -> str:
    """docker turns a literal `\\t` and `\\n` in a format into tab and newline."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def _lookup(data, path: str):
    if path == ".":
        return data
    value = data
    for part in path.strip(".").split("."):
        if isinstance(value, dict):
            if part in value:
                value = value[part]
                continue
            # docker's Go structs are matched case-sensitively, but the raw-JSON fallback
            # would miss; accept a case-insensitive match too.
            lowered = {k.lower(): k for k in value}
            if part.lower() in lowered:
                value = value[lowered[part.lower()]]
                continue
            return None
        return None
    return value


def _tokens(action: str) -> list[str]:
    try:
        return shlex.split(action, posix=True)
    except ValueError as exc:
        raise TemplateError(f"template parsing error: {exc}") from None


def _arg(data, token: str):
    if token.startswith("."):
        return _lookup(data, token)
    if token.lstrip("-").isdigit():
        return int(token)
    return token


def _evaluate(data, action: str) -> str:
    tokens = _tokens(action)
    if not tokens:
        raise TemplateError("template parsing error: missing value for command")
    head, args = tokens[0], tokens[1:]
    if head.startswith("."):
        if args:  # a method call such as {{.Label "com.example"}}
            method = data.get("__methods__", {}).get(head[1:]) if isinstance(data, dict) else None
            if method is None:
                raise TemplateError(f"template: can't call non-function {head}")
            return go_value(method(*[_arg(data, a) for a in args]))
        return go_value(_lookup(data, head))
    values = [_arg(data, a) for a in args]
    if head == "json":
        value = values[0] if values else data
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "__methods__"}
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if head == "index":
        value = values[0]
        for key in values[1:]:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                value = None
                break
        return go_value(value) if value is not None else ""
    if head == "join":
        return str(values[1] if len(values) > 1 else "").join(go_value(v) for v in values[0] or [])
    if head == "upper":
        return go_value(values[0]).upper()
    if head == "lower":
        return go_value(values[0]).lower()
    if head == "title":
        return go_value(values[0]).title()
    if head == "len":
        return str(len(values[0] or []))
    if head == "println":
        return " ".join(go_value(v) for v in values) + "\n"
    if head == "print":
        return "".join(go_value(v) for v in values)
    raise TemplateError(f'template: function "{head}" not defined')


def render(fmt: str, data) -> str:
    out = []
    pos = 0
    for match in _ACTION.finditer(fmt):
        out.append(fmt[pos:match.start()])
        out.append(_evaluate(data, match.group(1)))
        pos = match.end()
    out.append(fmt[pos:])
    return "".join(out)


def fields_used(fmt: str) -> list[str]:
    """The top-level fields a template names (for table headers)."""
    names = []
    for match in _ACTION.finditer(fmt):
        for token in _tokens(match.group(1)):
            if token.startswith(".") and token != ".":
                names.append(token[1:].split(".")[0])
                break
    return names
