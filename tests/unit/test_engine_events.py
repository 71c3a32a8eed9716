import asyncio

from skiff.engine.events import EventBus, make_event, matches


def test_event_shape_as_docker_writes_it():
    e = make_event("container", "die", "abc", {"image": "busybox", "exitCode": 3}, now_ns=5_000_000_001)
    assert e["status"] == "die" and e["id"] == "abc" and e["from"] == "busybox"
    assert e["Actor"] == {"ID": "abc", "Attributes": {"image": "busybox", "exitCode": "3"}}
    assert (e["time"], e["timeNano"], e["scope"]) == (5, 5_000_000_001, "local")


def test_filters():
    e = make_event("container", "start", "abc123", {"name": "web", "image": "busybox",
                                                   "tier": "front"})
    assert matches(e, {"event": ["start", "die"], "container": ["web"]})
    assert matches(e, {"container": ["abc"]}) and matches(e, {"label": ["tier=front"]})
    assert not matches(e, {"type": ["image"]})
    assert not matches(e, {"label": ["tier=back"]})


def test_since_replays_and_until_ends():
    async def main():
        bus = EventBus()
        first = bus.emit("container", "create", "a")
        got = []
        import time

        until = time.time_ns() + 200_000_000
        async def consume():
            async for event in bus.subscribe(since_ns=first["timeNano"], until_ns=until):
                got.append(event["Action"])
        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.05)
        bus.emit("container", "start", "a")
        await asyncio.wait_for(task, 2)
        return got
    assert asyncio.run(main()) == ["create", "start"]
