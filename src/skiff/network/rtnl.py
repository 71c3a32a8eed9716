"""The few rtnetlink requests of a container's start, built by hand: a veth pair (host end
on a bridge, peer in the container's namespace, both up), an address, a default route, `lo` up.

Why not pyroute2 here: each of its requests costs 0.6-1 ms of Python (its asyncio core), and a
container's start makes about ten; these messages cost tens of microseconds each. pyroute2
keeps everything else (bridges, lookups, deletions, route dumps: rare paths).

The `*_message` functions are pure (bytes out, unit-tested); `Rtnl` sends them on a
NETLINK_ROUTE socket of the namespace it was opened in and waits for each acknowledgement.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_NET_NS_FD = 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_GATEWAY = 1, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
LOOPBACK_INDEX = 1   # lo is always ifindex 1 of a namespace


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    flags = IFF_UP if up else 0
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, flags)


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK,
                       seq, 0) + body


def veth_message(seq: int, host_name: str, master: int, peer_name: str, peer_mac: str,
                 peer_netns_fd: int, mtu: int | None = None) -> bytes:
    """RTM_NEWLINK: a veth `host_name` enslaved to `master` and up, its peer `peer_name`
    (with MAC `peer_mac`) created in the namespace of `peer_netns_fd`, down: the kernel
    configures the peer before the pair is joined, when bringing it up fails (ENOTCONN)."""
    mtu_attr = _attr(IFLA_MTU, struct.pack("=I", mtu)) if mtu else b""
    peer = (_ifinfo() + _attr(IFLA_IFNAME, peer_name.encode() + b"\0") +
            _attr(IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", ""))) +
            _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)) + mtu_attr)
    linkinfo = _attr(IFLA_INFO_KIND, b"veth\0") + \
        _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
    body = (_ifinfo(up=True) + _attr(IFLA_IFNAME, host_name.encode() + b"\0") +
            _attr(IFLA_MASTER, struct.pack("=I", master)) + mtu_attr +
            _attr(IFLA_LINKINFO, linkinfo))
    return _message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, seq, body)


def link_up_message(seq: int, index: int) -> bytes:
    return _message(RTM_NEWLINK, 0, seq, _ifinfo(index, up=True))


def delete_link_message(seq: int, index: int) -> bytes:
    return _message(RTM_DELLINK, 0, seq, _ifinfo(index))


def address_message(seq: int, index: int, ip: str, prefixlen: int) -> bytes:
    packed = ipaddress.IPv4Address(ip).packed
    body = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index) + \
        _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
    return _message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, seq, body)


def default_route_message(seq: int, gateway: str) -> bytes:
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                       RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) + \
        _attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
    return _message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, seq, body)


def parse_ack(data: bytes, seq: int) -> int | None:
    """0 for an acknowledgement of request `seq`, the errno of its error, None when `data`
    holds no answer to it."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _flags, got_seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            break
        if kind == NLMSG_ERROR and got_seq == seq:
            (code,) = struct.unpack_from("=i", data, offset + 16)
            return -code
        offset += (length + 3) & ~3
    return None


class Rtnl:
    """A NETLINK_ROUTE socket of the calling thread's network namespace."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def request(self, message: bytes, seq: int) -> None:
        self.sock.send(message)
        while True:
            code = parse_ack(self.sock.recv(65536), seq)
            if code is None:
                continue
            if code:
                raise OSError(code, f"rtnetlink: {os.strerror(code)}")
            return

    def veth(self, host_name: str, master: int, peer_name: str, peer_mac: str,
             peer_netns_fd: int, mtu: int | None = None) -> None:
        seq = self.next_seq()
        self.request(veth_message(seq, host_name, master, peer_name, peer_mac, peer_netns_fd,
                                  mtu), seq)

    def link_up(self, index: int) -> None:
        seq = self.next_seq()
        self.request(link_up_message(seq, index), seq)

    def delete_link(self, index: int) -> None:
        seq = self.next_seq()
        self.request(delete_link_message(seq, index), seq)

    def add_address(self, index: int, ip: str, prefixlen: int) -> None:
        seq = self.next_seq()
        try:
            self.request(address_message(seq, index, ip, prefixlen), seq)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def default_route(self, gateway: str) -> None:
        seq = self.next_seq()
        self.request(default_route_message(seq, gateway), seq)
