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


SMALL = [None, True, False, 0, -7, 2 ** 70, "", "plain", "x\u00e9\n\"\\\t\b\f\r\x00\x1f\x7f",
         "".join(chr(c) for c in range(0x300)), "\U0001f600\u2028\ud800", [], {}, (1, "a"),
         {"Cmd": ["sh", "-c", "echo $A"], "Env": ["A=\u00e9"], "Tty": False, "User": "",
          "ConsoleSize": [24, 80], "nested": {"a": [[], {}, [None]]}}]


@pytest.mark.parametrize("value", SMALL)
def test_small_documents_encode_without_the_c_module_to_the_same_text(value):
    for compact in (False, True):
        for ascii in (True, False):
            seps = (",", ":") if compact else (", ", ": ")
            out = []
            assert jsonfast._encode_small(value, out, seps, ascii, [jsonfast.SMALL_NODES])
            assert "".join(out) == json.dumps(value, separators=seps, ensure_ascii=ascii)


@pytest.mark.parametrize("value", [1.5, {1: "int key"}, [float("nan")], {"a": {1, 2}},
                                   list(range(jsonfast.SMALL_NODES + 1))])
def test_what_the_small_encoder_leaves_to_the_c_module(value):
    assert not jsonfast._encode_small(value, [], (", ", ": "), True, [jsonfast.SMALL_NODES])


def test_the_c_module_is_loaded_only_when_needed():
    import subprocess
    import sys

    code = ("import sys; from skiff.wire import jsonfast; "
            "jsonfast.dumps({'Cmd': ['true'], 'Tty': False}); "
            "assert '_json' not in sys.modules, 'loaded for a small document'; "
            "assert jsonfast.loads('{\"a\": [1.5]}') == {'a': [1.5]}; "
            "assert jsonfast.dumps([1.5]) == '[1.5]'")
    subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; "
                    + code], check=True)
