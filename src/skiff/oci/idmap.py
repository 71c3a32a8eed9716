"""A user namespace's id maps, as config.json's `linux.uidMappings` / `gidMappings` give them
(`[{"containerID", "hostID", "size"}]`): a container's ids seen from the host and back.

    uids = IdMap(spec["linux"].get("uidMappings"))
    uids.to_container(100000)   # 0 with {"containerID": 0, "hostID": 100000, "size": 65536}
    uids.to_host(0)             # 100000

No maps means no user namespace: both directions keep the id.
"""

from __future__ import annotations

OVERFLOW_ID = 65534   # what the kernel shows for an id with no mapping


class UnmappedId(ValueError):
    pass


class IdMap:
    def __init__(self, maps: list[dict] | None):
        self.maps = [(int(m["containerID"]), int(m["hostID"]), int(m["size"]))
                     for m in maps or ()]

    def __bool__(self) -> bool:
        return bool(self.maps)

    def to_container(self, host_id: int) -> int:
        if not self.maps:
            return host_id
        for inside, outside, size in self.maps:
            if outside <= host_id < outside + size:
                return inside + host_id - outside
        return OVERFLOW_ID

    def to_host(self, container_id: int) -> int:
        if not self.maps:
            return container_id
        for inside, outside, size in self.maps:
            if inside <= container_id < inside + size:
                return outside + container_id - inside
        raise UnmappedId(f"id {container_id} is not mapped in the container's user namespace")


def of_spec(spec: dict) -> tuple[IdMap, IdMap]:
    """(uids, gids) of a runtime config.json."""
    linux = spec.get("linux") or {}
    return IdMap(linux.get("uidMappings")), IdMap(linux.get("gidMappings"))
