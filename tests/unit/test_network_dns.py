"""The embedded DNS server's wire format: queries in, answers out."""

import struct

import pytest

from skiff.network import dns


def query(name: str, qtype: int = dns.TYPE_A, qid: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + \
        struct.pack("!HH", qtype, dns.CLASS_IN)


def test_parse_query():
    qid, flags, name, qtype, qclass, end = dns.parse_query(query("web.example"))
    assert (qid, name, qtype, qclass) == (0x1234, "web.example", dns.TYPE_A, dns.CLASS_IN)
    assert end == len(query("web.example"))


@pytest.mark.parametrize("data", [b"", b"\0" * 11, query("a")[:-3],
                                  struct.pack("!HHHHHH", 1, 0x8000, 1, 0, 0, 0) + b"\0\0\1\0\1",
                                  struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1"])
def test_bad_queries_are_refused(data):
    with pytest.raises(dns.BadQuery):
        dns.parse_query(data)


def test_answer_a_records():
    reply = dns.answer(query("web"), ["10.1.0.2", "10.2.0.3"])
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", reply[:12])
    assert qid == 0x1234 and flags & 0x8000 and flags & 0xF == 0 and (qd, an) == (1, 2)
    assert reply.endswith(bytes([10, 2, 0, 3]))
    assert bytes([10, 1, 0, 2]) in reply


def test_unknown_name_is_nxdomain_and_aaaa_of_a_known_name_is_empty():
    reply = dns.answer(query("nope"), None)
    assert struct.unpack("!H", reply[2:4])[0] & 0xF == 3
    reply = dns.answer(query("web", dns.TYPE_AAAA), ["10.1.0.2"])
    flags, _qd, an = struct.unpack("!HHH", reply[2:8])
    assert flags & 0xF == 0 and an == 0


def test_upstream_servers_from_resolv_conf():
    text = "nameserver 10.0.0.2\nnameserver ::1\nsearch x\nnameserver 127.0.0.53\n"
    assert dns.upstream_servers(text) == ["10.0.0.2", "127.0.0.53"]


class _Recorder:
    def __init__(self):
        self.sent = []

    def sendto(self, data, addr):
        self.sent.append((data, addr))

    def is_closing(self):
        return False


def test_names_answered_here_and_others_forwarded_to_the_upstream(monkeypatch):
    import asyncio
    import socket

    async def scenario():
        loop = asyncio.get_running_loop()
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.bind(("127.0.0.1", 0))
        upstream.setblocking(False)
        monkeypatch.setattr(dns, "FORWARD_PORT", upstream.getsockname()[1])
        names = {("c1", "web"): ["10.1.0.2"]}
        server = dns.DNSServer(lambda cid, name: names.get((cid, name)),
                               lambda cid: ["127.0.0.1"])
        protocol = dns._Protocol(server, "c1")
        protocol.transport = _Recorder()
        server.handle(protocol, query("web"), ("127.0.0.1", 1111))
        assert protocol.transport.sent[0][0].endswith(bytes([10, 1, 0, 2]))
        server.handle(protocol, query("nope"), ("127.0.0.1", 1111))
        assert struct.unpack("!H", protocol.transport.sent[1][0][2:4])[0] & 0xF == 3
        server.handle(protocol, query("example.org"), ("127.0.0.1", 1111))
        data, peer = await asyncio.wait_for(loop.sock_recvfrom(upstream, 512), 5)
        assert data == query("example.org")
        await loop.sock_sendto(upstream, dns.answer(data, ["192.0.2.7"]), peer)
        for _ in range(100):
            if len(protocol.transport.sent) == 3:
                break
            await asyncio.sleep(0.01)
        assert protocol.transport.sent[2][0].endswith(bytes([192, 0, 2, 7]))
        upstream.close()
    asyncio.run(scenario())
