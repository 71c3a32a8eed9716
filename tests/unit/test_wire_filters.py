import json

import pytest

from skiff.errors import InvalidArgument
from skiff.wire.filters import encode_filters, parse_filters, validate_filters


@pytest.mark.parametrize("text, expected", [
    (None, {}), ("", {}), (b"", {}), ("{}", {}), ("null", {}),
    ('{"label":["a=b","c"]}', {"label": ["a=b", "c"]}),
    ('{"label":{"a=b":true,"c":true}}', {"label": ["a=b", "c"]}),
    ('{"label":{"a=b":false}}', {"label": ["a=b"]}),  # dockerd ignores the boolean
    ('{"dangling":["true"],"reference":{"busybox":true}}',
     {"dangling": ["true"], "reference": ["busybox"]}),
    (b'{"name":["web"]}', {"name": ["web"]}),
    ('{"name":[]}', {"name": []}),
])
def test_parse_filters(text, expected):
    assert parse_filters(text) == expected


@pytest.mark.parametrize("text", [
    "{", "label=a", "[]", '"x"', "1", '{"label":"a=b"}', '{"label":[1]}',
    '{"label":[["a"]]}', '{"label":null}', b"\xff", '{"label":{"a":true}', "{'a':['b']}",
])
def test_parse_filters_rejects(text):
    with pytest.raises(InvalidArgument) as info:
        parse_filters(text)
    assert str(info.value) == "invalid filter"


def test_encode_filters_round_trip():
    filters = {"label": ["com.docker.compose.project=demo", "x"], "status": ["running"]}
    text = encode_filters(filters)
    assert json.loads(text) == {"label": {"com.docker.compose.project=demo": True, "x": True},
                                "status": {"running": True}}
    assert parse_filters(text) == filters
    assert encode_filters({}) == "{}"


def test_validate_filters():
    validate_filters({"label": ["a"], "name": ["b"]}, {"label", "name", "status"})
    with pytest.raises(InvalidArgument) as info:
        validate_filters({"bogus": ["x"]}, {"label"})
    assert str(info.value) == "invalid filter 'bogus'"
