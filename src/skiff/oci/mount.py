"""`Mount`: the hand-off between snapshot/ (which emits mounts) and runtime/ (which performs
them). Neither side knows the other; this value and its runtime-spec JSON form are all they
share (`{"destination", "type", "source", "options"}`, as in config.json's `mounts`)."""

import dataclasses

from skiff.errors import InvalidArgument


@dataclasses.dataclass
class Mount:
    type: str
    source: str
    target: str
    options: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "destination": self.target,
            "type": self.type,
            "source": self.source,
            "options": list(self.options),
        }

    @classmethod
    def from_dict(cls, doc: dict) -> "Mount":
        if not isinstance(doc, dict):
            raise InvalidArgument("invalid mount: not a JSON object")
        target = doc.get("destination")
        if not isinstance(target, str) or not target:
            raise InvalidArgument("invalid mount: destination is required")
        options = doc.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise InvalidArgument(f"invalid mount {target}: options must be a list of strings")
        mount_type, source = doc.get("type") or "", doc.get("source") or ""
        if not isinstance(mount_type, str) or not isinstance(source, str):
            raise InvalidArgument(f"invalid mount {target}: type and source must be strings")
        return cls(type=mount_type, source=source, target=target, options=list(options))

    @classmethod
    def bind(cls, source: str, target: str, readonly: bool = False) -> "Mount":
        """A recursive bind mount, as `docker run -v SRC:DST[:ro]` makes."""
        return cls("bind", source, target, ["rbind", "ro" if readonly else "rw"])

    @property
    def readonly(self) -> bool:
        return "ro" in self.options


def mounts_to_list(mounts: list[Mount]) -> list[dict]:
    return [m.to_dict() for m in mounts]


def mounts_from_list(docs: list[dict]) -> list[Mount]:
    if not isinstance(docs, list):
        raise InvalidArgument("invalid mounts: not a JSON list")
    return [Mount.from_dict(d) for d in docs]
