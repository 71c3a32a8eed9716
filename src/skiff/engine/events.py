"""The events stream (`docker events`): what happened to containers, images, volumes and
networks, as docker names it, kept for late subscribers in a bounded ring."""

from __future__ import annotations

import asyncio
import collections
import time

KEEP = 1024            # past events a subscriber with `since` can still see
QUEUE_LIMIT = 4096     # a subscriber that falls this far behind is cut off, not buffered


def make_event(type_: str, action: str, actor_id: str, attributes: dict | None = None,
               now_ns: int | None = None) -> dict:
    now_ns = time.time_ns() if now_ns is None else now_ns
    attributes = {k: str(v) for k, v in (attributes or {}).items()}
    event = {"Type": type_, "Action": action,
             "Actor": {"ID": actor_id, "Attributes": attributes}, "scope": "local",
             "time": now_ns // 1_000_000_000, "timeNano": now_ns}
    if type_ == "container":  # the fields of the old format, which the docker CLI still reads
        event.update({"status": action, "id": actor_id, "from": attributes.get("image", "")})
    return event


def matches(event: dict, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: values of one key are alternatives, keys all must hold."""
    attributes = event["Actor"]["Attributes"]
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = event["Type"] in values
        elif key == "event":
            ok = event["Action"].split(":")[0] in values or event["Action"] in values
        elif key == "container":
            ok = event["Type"] == "container" and any(
                event["Actor"]["ID"].startswith(v) or attributes.get("name") == v
                for v in values)
        elif key == "image":
            ok = attributes.get("image") in values or (
                event["Type"] == "image" and event["Actor"]["ID"] in values)
        elif key == "label":
            ok = any(attributes.get(v.partition("=")[0]) == v.partition("=")[2]
                     if "=" in v else v in attributes for v in values)
        elif key in ("volume", "network"):
            ok = event["Type"] == key and (event["Actor"]["ID"] in values or
                                           attributes.get("name") in values)
        elif key == "scope":
            ok = "local" in values
        else:
            ok = True  # filters docker has and we have no objects for yet
        if not ok:
            return False
    return True


class EventBus:
    def __init__(self):
        self._past: collections.deque[dict] = collections.deque(maxlen=KEEP)
        self._subscribers: set[asyncio.Queue] = set()

    def emit(self, type_: str, action: str, actor_id: str, attributes: dict | None = None):
        event = make_event(type_, action, actor_id, attributes)
        self._past.append(event)
        for queue in list(self._subscribers):
            if queue.qsize() >= QUEUE_LIMIT:
                self._subscribers.discard(queue)
                queue.put_nowait(None)  # tell the slow reader it was dropped
            else:
                queue.put_nowait(event)
        return event

    def listeners(self) -> int:
        return len(self._subscribers)

    async def subscribe(self, since_ns: int | None = None, until_ns: int | None = None,
                        filters: dict | None = None):
        """Yields past events from `since`, then new ones, until `until` (if given)."""
        filters = filters or {}
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            if since_ns is not None:
                for event in list(self._past):
                    if event["timeNano"] >= since_ns and (until_ns is None or
                                                          event["timeNano"] <= until_ns) \
                            and matches(event, filters):
                        yield event
            while True:
                timeout = None
                if until_ns is not None:
                    timeout = (until_ns - time.time_ns()) / 1e9
                    if timeout <= 0:
                        return
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except asyncio.TimeoutError:
                    return
                if event is None:
                    return
                if until_ns is not None and event["timeNano"] > until_ns:
                    return
                if matches(event, filters):
                    yield event
        finally:
            self._subscribers.discard(queue)
