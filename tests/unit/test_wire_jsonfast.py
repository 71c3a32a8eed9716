"""wire.jsonfast: byte-for-byte json.dumps / json.loads (default options) through _json."""

import json

import pytest

from skiff.wire import jsonfast

SAMPLES = [{"a": 1, "b": [1.5, None, True, False, "x\u00e9\n\"\\", {"c": {}}], "d": -3e100},
           [], {}, "str\u2028", 5, 1.25, {"Warnings": []}, {"k": float("inf")},
           {"nested": [[[]]], "uni": "\U0001f600", "big": 2 ** 70}]


@pytest.mark.parametrize("value", SAMPLES)
def test_same_text_as_json(value):
    for compact in (False, True):
        for ascii in (True, False):
            seps = (",", ":") if compact else (", ", ": ")
            assert jsonfast.dumps(value, compact, ascii) == \
                json.dumps(value, separators=seps, ensure_ascii=ascii)


@pytest.mark.parametrize("value", SAMPLES)
def test_same_values_as_json(value):
    text = json.dumps(value)
    assert repr(jsonfast.loads(text)) == repr(json.loads(text))
    assert repr(jsonfast.loads((" \n" + text + "\r\n").encode())) == repr(json.loads(text))
    assert repr(jsonfast.loads(b"\xef\xbb\xbf" + text.encode())) == repr(json.loads(text))


@pytest.mark.parametrize("bad", ["", "  ", "{", "[1,]", "1 2", "nul", "{'a': 1}", "[1] x"])
def test_malformed_documents_raise_jsons_error(bad):
    with pytest.raises(json.JSONDecodeError):
        jsonfast.loads(bad)


def test_what_json_cannot_encode():
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonfast.dumps({"x": object()})
