import json

import pytest

from skiff.wire.errors import ProtocolError
from skiff.wire.progress import (
    JSONStreamDecoder, aux_message, encode, error_message, human_size, progress_message,
    render_progress, render_progress_bar, stream_message,
)


def test_messages():
    assert progress_message("Pulling fs layer", id="abc") == {
        "status": "Pulling fs layer", "id": "abc"}
    assert progress_message("Digest: sha256:x") == {"status": "Digest: sha256:x"}
    msg = progress_message("Downloading", "abc", 1049000, 4194000)
    assert msg["progressDetail"] == {"current": 1049000, "total": 4194000}
    assert msg["progress"] == "[" + "=" * 12 + ">" + " " * 38 + "]  1.049MB/4.194MB"
    assert list(msg) == ["status", "progressDetail", "progress", "id"]  # dockerd's order
    assert progress_message("Extracting", current=5)["progressDetail"] == {"current": 5}
    assert stream_message("Step 1/2 : FROM busybox\n") == {
        "stream": "Step 1/2 : FROM busybox\n"}
    assert error_message("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}
    assert aux_message({"ID": "sha256:x"}) == {"aux": {"ID": "sha256:x"}}


def test_encode_is_one_compact_line():
    line = encode({"status": "é", "id": "a\nb"})
    assert line == '{"status":"é","id":"a\\nb"}\r\n'.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"status": "é", "id": "a\nb"}


@pytest.mark.parametrize("size, text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1536, "1.536kB"), (2155000, "2.155MB"),
    (999_950, "1000kB"), (10**9, "1GB"), (3 * 10**24, "3YB"), (5 * 10**27, "5000YB"),
])
def test_human_size(size, text):
    assert human_size(size) == text


def test_progress_bar():
    assert render_progress_bar(0, 100) == "[>" + " " * 50 + "]"
    assert render_progress_bar(50, 100) == "[" + "=" * 25 + ">" + " " * 25 + "]"
    assert render_progress_bar(100, 100) == "[" + "=" * 50 + ">]"
    assert render_progress_bar(500, 100) == "[" + "=" * 50 + ">]"   # capped
    assert render_progress_bar(-5, 100) == "[>" + " " * 50 + "]"
    assert render_progress_bar(3, 10, width=10) == "[===>       ]"
    assert render_progress_bar(5, 0) == ""


def test_render_progress():
    assert render_progress(None, None) == ""
    assert render_progress(0, 0) == ""
    assert render_progress(1500, None) == " 1.5kB".rjust(8)
    assert render_progress(200, 100).endswith("]     200B")  # wonky total hidden
    assert render_progress(100, 100).endswith(">]     100B/100B")


def _feed_bytewise(decoder, data):
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i:i + 1])
    return out


def test_decoder_newline_delimited_and_concatenated():
    messages = [{"status": "a"}, {"stream": "b\n"}, {"aux": {"ID": "x"}},
                error_message("e"), {"nested": {"deep": [1, {"x": "}{"}]}}]
    lines = b"".join(encode(m) for m in messages)
    concatenated = b"".join(json.dumps(m).encode() for m in messages)
    spaced = b"\n\n  ".join(json.dumps(m, indent=2).encode() for m in messages) + b"\n \t"
    for data in (lines, concatenated, spaced):
        assert JSONStreamDecoder().feed(data) == messages
        decoder = JSONStreamDecoder()
        assert _feed_bytewise(decoder, data) == messages
        assert decoder.at_eof()
        decoder.close()


def test_decoder_strings_with_braces_escapes_and_unicode():
    messages = [{"s": 'a "quoted" } { [ ] \\ back\\slash'}, {"u": "café ☃ \U0001f40b"},
                {"e": "\\"}, {"t": "\\\"}"}]
    data = b"".join(encode(m) for m in messages)
    assert _feed_bytewise(JSONStreamDecoder(), data) == messages


def test_decoder_holds_partial_objects():
    decoder = JSONStreamDecoder()
    assert decoder.feed(b'{"status": "Down') == []
    assert not decoder.at_eof() and decoder.buffered == 16
    assert decoder.feed(b'loading"}\r\n{"id"') == [{"status": "Downloading"}]
    assert decoder.feed(b':"x"}') == [{"id": "x"}]
    assert decoder.at_eof()


@pytest.mark.parametrize("data", [
    b'{"status": "trunc', b'{"a": {"b": 1}', b'{', b'{"a": "\\',
])
def test_truncated_stream_is_reported_at_close(data):
    decoder = JSONStreamDecoder()
    assert decoder.feed(data) == []
    with pytest.raises(ProtocolError, match="ended inside") as info:
        decoder.close()
    assert info.value.remote is True


@pytest.mark.parametrize("data", [
    b"[1, 2]\n", b'"text"\n', b"42\n", b"null\n", b"not json\n", b"}\n",
    b'{"a": 1,}\n', b'{"a": nope}\n', b"{]\n", b'{"a": [}\n', b"\xff{}\n",
    b'{"a": "\xff"}\n', b'{"a": 1} x',
])
def test_decoder_rejects_garbage(data):
    with pytest.raises(ProtocolError):
        JSONStreamDecoder().feed(data)


def test_decoder_limits_what_it_buffers():
    decoder = JSONStreamDecoder(max_line=100)
    assert decoder.feed(b'{"a": "' + b"x" * 50) == []
    with pytest.raises(ProtocolError, match="longer than the limit"):
        decoder.feed(b"x" * 100)
    with pytest.raises(ProtocolError, match="longer than the limit"):
        JSONStreamDecoder(max_line=100).feed(encode({"a": "x" * 200}))
    # Unbalanced opening brackets never finish an object: still bounded.
    decoder = JSONStreamDecoder(max_line=1000)
    with pytest.raises(ProtocolError):
        for _ in range(100):
            decoder.feed(b"[" * 100)


def test_decoder_large_stream_is_fast():
    data = encode({"status": "Downloading", "progressDetail": {"current": 1, "total": 2},
                   "id": "0123456789ab"}) * 5_000
    assert len(JSONStreamDecoder().feed(data)) == 5_000
    big = {"stream": "y" * 2_000_000}
    decoder, got = JSONStreamDecoder(), []
    raw = encode(big)
    for i in range(0, len(raw), 1000):
        got += decoder.feed(raw[i:i + 1000])
    assert got == [big]
