"""JSON through CPython's C accelerator (`_json`) without importing the `json` package (pure:
text in, values out).

Why: `import json` pulls in `re`, `enum`, `collections` and `functools`, several milliseconds
of every CLI command's start-up, for a codec whose work is done in C anyway. The output and
the accepted input are json.dumps' and json.loads' (default options); a malformed document
raises json.JSONDecodeError (a ValueError), importing the json package only then.

    dumps(obj, compact=False, ascii=True) -> str     loads(text | bytes) -> object
"""

from __future__ import annotations

import _json

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


_scan = _json.make_scanner(_Context())


def _error(message: str, doc: str, pos: int):
    from json import JSONDecodeError
    return JSONDecodeError(message, doc, pos)


def loads(text: str | bytes | bytearray):
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8-sig" if text[:3] == b"\xef\xbb\xbf" else "utf-8")
    start = len(text) - len(text.lstrip(_WHITESPACE))
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
