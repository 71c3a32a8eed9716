"""The `filters` query parameter: JSON mapping a filter name to its values.

Current clients send `{"label": ["a=b"]}`; older ones (and the docker CLI, for reach
across daemon versions) send `{"label": {"a=b": true}}`. Both decode to lists of strings.
"""

import json

from skiff.errors import InvalidArgument

ERR_INVALID = "invalid filter"


def parse_filters(text: str | bytes | None) -> dict[str, list[str]]:
    if text is None or text in ("", b""):
        return {}
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        raise InvalidArgument(ERR_INVALID) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidArgument(ERR_INVALID)
    filters: dict[str, list[str]] = {}
    for name, values in doc.items():
        if isinstance(values, dict):
            # dockerd keeps every key of the map form, whatever its boolean says.
            values = list(values)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidArgument(ERR_INVALID)
        filters[name] = values
    return filters


def encode_filters(filters: dict[str, list[str]]) -> str:
    """The map form, which every daemon version accepts."""
    return json.dumps({name: {value: True for value in values}
                       for name, values in filters.items()}, separators=(",", ":"))


def validate_filters(filters: dict[str, list[str]], accepted: set[str] | frozenset[str]) -> None:
    """Reject filter names an endpoint does not support, with dockerd's text."""
    for name in filters:
        if name not in accepted:
            raise InvalidArgument(f"{ERR_INVALID} '{name}'")
