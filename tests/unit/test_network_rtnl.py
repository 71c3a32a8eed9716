"""Hand-built rtnetlink requests as bytes (sent for real by the integration tests)."""

import struct

from skiff.network import rtnl


def attrs(data: bytes) -> dict[int, bytes]:
    out, offset = {}, 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        out[kind] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def test_veth_message_layout():
    msg = rtnl.veth_message(7, "skabc", 5, "eth0", "02:42:0a:58:00:02", 9, mtu=1400)
    length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", msg)
    assert length == len(msg) and kind == rtnl.RTM_NEWLINK and seq == 7
    assert flags & rtnl.NLM_F_CREATE and flags & rtnl.NLM_F_EXCL and flags & rtnl.NLM_F_ACK
    family, _type, index, ifflags, change = struct.unpack_from("=BxHiII", msg, 16)
    assert index == 0 and ifflags == change == rtnl.IFF_UP   # the host end comes up
    top = attrs(msg[32:])
    assert top[rtnl.IFLA_IFNAME] == b"skabc\0"
    assert struct.unpack("=I", top[rtnl.IFLA_MASTER])[0] == 5
    assert struct.unpack("=I", top[rtnl.IFLA_MTU])[0] == 1400
    info = attrs(top[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth\0"
    peer = attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER]
    assert struct.unpack_from("=BxHiII", peer)[3] == 0      # the peer is brought up inside
    peer_attrs = attrs(peer[16:])
    assert peer_attrs[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert peer_attrs[rtnl.IFLA_ADDRESS] == bytes.fromhex("02420a580002")
    assert struct.unpack("=I", peer_attrs[rtnl.IFLA_NET_NS_FD])[0] == 9


def test_address_and_route_messages():
    msg = rtnl.address_message(3, 2, "10.88.0.5", 16)
    family, prefixlen, _f, scope, index = struct.unpack_from("=BBBBI", msg, 16)
    assert (family, prefixlen, index) == (2, 16, 2)
    assert attrs(msg[24:])[rtnl.IFA_LOCAL] == bytes([10, 88, 0, 5])
    msg = rtnl.default_route_message(4, "10.88.0.1")
    assert struct.unpack_from("=BBBBBBBBI", msg, 16)[4] == rtnl.RT_TABLE_MAIN
    assert attrs(msg[28:])[rtnl.RTA_GATEWAY] == bytes([10, 88, 0, 1])


def test_acks_and_errors():
    ack = struct.pack("=IHHII", 36, rtnl.NLMSG_ERROR, 0, 7, 0) + struct.pack("=i", 0) + \
        b"\0" * 16
    assert rtnl.parse_ack(ack, 7) == 0
    assert rtnl.parse_ack(ack, 8) is None
    err = struct.pack("=IHHII", 36, rtnl.NLMSG_ERROR, 0, 9, 0) + struct.pack("=i", -17) + \
        b"\0" * 16
    assert rtnl.parse_ack(ack + err, 9) == 17


def test_delete_link_message():
    msg = rtnl.delete_link_message(5, 12)
    assert struct.unpack_from("=IHHII", msg)[1] == rtnl.RTM_DELLINK
    assert struct.unpack_from("=BxHiII", msg, 16)[2] == 12
