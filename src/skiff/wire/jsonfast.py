"""JSON through CPython's C accelerator (`_json`) without importing the `json` package (pure:
text in, values out).

Why: `import json` pulls in `re`, `enum`, `collections` and `functools`, several milliseconds
of every CLI command's start-up, for a codec whose work is done in C anyway. The output and
the accepted input are json.dumps' and json.loads' (default options); a malformed document
raises json.JSONDecodeError (a ValueError), importing the json package only then.

    dumps(obj, compact=False, ascii=True) -> str     loads(text | bytes) -> object

`_json` itself is loaded at the first use that needs it: loading the extension costs ~0.35
ms, and a small document of strings, integers, booleans, None, lists and dicts (a CLI
command's request body) is encoded in pure Python without it, to the same text.
"""

from __future__ import annotations

_json = None   # the C module, once loaded (_c())

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """What _json.make_scanner reads from a JSONDecoder."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = None


def load_accelerator() -> None:
    """Load _json now (a caller with time to spare before it decodes)."""
    _c()


def _c():
    global _json, _scan
    if _json is None:
        import _json as module

        _scan = module.make_scanner(_Context())
        _json = module
    return _json


def _error(message: str, doc: str, pos: int):
    from json import JSONDecodeError
    return JSONDecodeError(message, doc, pos)


def loads(text: str | bytes | bytearray):
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8-sig" if text[:3] == b"\xef\xbb\xbf" else "utf-8")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    if _scan is None:
        _c()
    try:
        value, end = _scan(text, start)
    except StopIteration as err:
        raise _error("Expecting value", text, err.value) from None
    if text[end:].strip(_WHITESPACE):
        raise _error("Extra data", text, end + len(text[end:]) - len(text[end:].lstrip(
            _WHITESPACE)))
    return value


def _default(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_ENCODERS = {}


def dumps(obj, compact: bool = False, ascii: bool = True) -> str:
    """json.dumps(obj) (`compact`: separators (",", ":"); `ascii=False`: ensure_ascii=False)."""
    if _json is None:
        parts = []
        if _encode_small(obj, parts, (",", ":") if compact else (", ", ": "), ascii,
                         [SMALL_NODES]):
            return "".join(parts)
        _c()
    key = (compact, ascii)
    encode = _ENCODERS.get(key)
    if encode is None:
        string = _json.encode_basestring_ascii if ascii else _json.encode_basestring
        item, colon = (",", ":") if compact else (", ", ": ")
        encode = _ENCODERS[key] = _json.make_encoder({}, _default, string, None, colon, item,
                                                     False, False, True)
    if isinstance(obj, str):
        return (_json.encode_basestring_ascii if ascii else _json.encode_basestring)(obj)
    return "".join(encode(obj, 0))


# -- the pure-Python encoder of small documents ----------------------------------------------

SMALL_NODES = 256   # values a document may hold to be encoded without _json
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t"}


def _string(text: str, ascii: bool) -> str:
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or (ascii and code > 0x7e):
            if code < 0x10000:
                out.append("\\u%04x" % code)
            else:
                code -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 | (code >> 10), 0xDC00 | (code & 0x3FF)))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _encode_small(obj, out: list, seps: tuple, ascii: bool, budget: list) -> bool:
    """Append obj's JSON to `out`; False (out unusable) for a value this encoder leaves to
    _json (floats, other types, non-string keys) or past the node budget."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif type(obj) is str:
        out.append(_string(obj, ascii))
    elif type(obj) is int:
        out.append(str(obj))
    elif type(obj) in (list, tuple):
        out.append("[")
        for i, item in enumerate(obj):
            if i:
                out.append(seps[0])
            if not _encode_small(item, out, seps, ascii, budget):
                return False
        out.append("]")
    elif type(obj) is dict:
        out.append("{")
        for i, (key, value) in enumerate(obj.items()):
            if type(key) is not str:
                return False
            if i:
                out.append(seps[0])
            out.append(_string(key, ascii))
            out.append(seps[1])
            if not _encode_small(value, out, seps, ascii, budget):
                return False
        out.append("}")
    else:
        return False
    return True
