"""Docker's filters of `network ls` and `network prune`, over network documents (pure)."""

from __future__ import annotations

from skiff.errors import InvalidArgument
from skiff.timefmt import parse_rfc3339

PREDEFINED = ("bridge", "host", "none")


def list_matches(doc: dict, filters: dict[str, list[str]], in_use: bool) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "name":
            ok = any(v in doc["Name"] for v in values)
        elif key == "id":
            ok = any(doc["Id"].startswith(v) for v in values)
        elif key == "driver":
            ok = doc["Driver"] in values
        elif key == "type":
            for v in values:
                if v not in ("custom", "builtin"):
                    raise InvalidArgument(f"invalid filter: 'type'='{v}'")
            builtin = doc["Name"] in PREDEFINED
            ok = ("builtin" in values and builtin) or ("custom" in values and not builtin)
        elif key == "label":
            ok = all((doc["Labels"].get(v.partition("=")[0]) == v.partition("=")[2])
                     if "=" in v else v in doc["Labels"] for v in values)
        elif key == "scope":
            ok = "local" in values
        elif key == "dangling":
            want = values[0] in ("true", "1")
            ok = (doc["Name"] not in PREDEFINED and not in_use) == want
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
        if not ok:
            return False
    return True


def prune_matches(doc: dict, filters: dict[str, list[str]]) -> bool:
    labels = doc.get("Labels") or {}
    for value in filters.get("until", []):
        try:
            limit = float(value) if value.replace(".", "").isdigit() else parse_rfc3339(value)
        except ValueError:
            raise InvalidArgument(f"invalid filter 'until={value}'") from None
        if parse_rfc3339(doc["Created"]) >= limit:
            return False
    for key, negate in (("label", False), ("label!", True)):
        for value in filters.get(key, []):
            k, eq, v = value.partition("=")
            present = k in labels and (not eq or labels[k] == v)
            if present == negate:
                return False
    return True
