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
