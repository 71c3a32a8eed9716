"""The embedded DNS server of user-defined networks.

Each container on such a network gets a UDP socket bound to 127.0.0.11:53 *inside its own
network namespace* (made there by a thread that joined it, then handed to skiffd's asyncio
loop): a socket stays in the namespace it was made in, so the container's resolv.conf
points at 127.0.0.11 and no address translation is needed. The socket knows which container
asks, so each container sees only the names of the networks it is on.

Names of the container's networks (container names, aliases, short IDs) are answered here;
other names with a dot go to the host's resolvers, from skiffd's own namespace (so loopback
resolvers such as 127.0.0.53 work too); unknown single-label names are NXDOMAIN.

`parse_query` and `answer` are pure (bytes in, bytes out) and unit-tested.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct

from skiff.network import netns

log = logging.getLogger("skiffd.dns")

ADDRESS = "127.0.0.11"
PORT = 53
FORWARD_PORT = 53      # of the upstream resolvers (a test points it elsewhere)
TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
TTL = 600
MAX_QUERY = 512
FORWARD_TIMEOUT = 2.0


class BadQuery(ValueError):
    pass


def parse_query(data: bytes) -> tuple[int, int, str, int, int, int]:
    """(id, flags, name, qtype, qclass, end of question) of a standard query."""
    if len(data) < 12:
        raise BadQuery("short header")
    qid, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qdcount != 1:
        raise BadQuery("not a single-question query")
    labels, pos = [], 12
    while True:
        if pos >= len(data):
            raise BadQuery("truncated name")
        length = data[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0 or pos + length > len(data):
            raise BadQuery("bad label")
        labels.append(data[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(data):
        raise BadQuery("truncated question")
    qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, qclass, pos + 4


def answer(data: bytes, addresses: list[str] | None) -> bytes:
    """The reply to query `data`: A records for `addresses`, NOERROR with no records for
    other types of a known name, NXDOMAIN for None."""
    qid, flags, _name, qtype, qclass, end = parse_query(data)
    question = data[12:end]
    rcode = 3 if addresses is None else 0
    records = b""
    count = 0
    if addresses and qtype == TYPE_A and qclass == CLASS_IN:
        for ip in addresses:
            records += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + \
                ipaddress.IPv4Address(ip).packed
            count += 1
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 0x0400 | rcode  # QR, opcode, RD, RA, AA
    return struct.pack("!HHHHHH", qid, reply_flags, 1, count, 0, 0) + question + records


def servfail(data: bytes) -> bytes:
    qid, flags, _name, _t, _c, end = parse_query(data)
    return struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x7900) | 0x0080 | 2, 1, 0, 0, 0) + \
        data[12:end]


def upstream_servers(resolv_text: str) -> list[str]:
    servers = []
    for line in resolv_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                if ipaddress.ip_address(fields[1]).version == 4:
                    servers.append(fields[1])
            except ValueError:
                continue
    return servers


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: "DNSServer", container_id: str):
        self.server = server
        self.container_id = container_id
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.server.handle(self, data, addr)


class DNSServer:
    """`lookup(container_id, name)` -> addresses, or None when the name is unknown to that
    container's networks; `upstreams(container_id)` -> the resolvers to forward other names
    to (its --dns, or the host's)."""

    def __init__(self, lookup, upstreams):
        self.lookup = lookup
        self.upstreams = upstreams
        self._transports: dict[str, asyncio.BaseTransport] = {}

    async def serve(self, container_id: str, netns_path: str) -> None:
        """Listen on 127.0.0.11:53 in the namespace at `netns_path` for this container."""
        if container_id in self._transports:
            return

        def make():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((ADDRESS, PORT))
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = await asyncio.to_thread(netns.run_in, netns_path, make)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self, container_id), sock=sock)
        self._transports[container_id] = transport

    def stop(self, container_id: str) -> None:
        transport = self._transports.pop(container_id, None)
        if transport is not None:
            transport.close()

    def close(self) -> None:
        for cid in list(self._transports):
            self.stop(cid)

    def handle(self, protocol: _Protocol, data: bytes, addr) -> None:
        try:
            _qid, _flags, name, qtype, _qclass, _end = parse_query(data[:MAX_QUERY])
        except BadQuery:
            return
        key = name.rstrip(".").lower()
        found = self.lookup(protocol.container_id, key)
        if found is not None or "." not in key:
            protocol.transport.sendto(answer(data, found), addr)
            return
        asyncio.ensure_future(self._forward(protocol, data, addr))

    async def _forward(self, protocol: _Protocol, data: bytes, addr) -> None:
        loop = asyncio.get_running_loop()
        for server in self.upstreams(protocol.container_id):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (server, FORWARD_PORT))
                await loop.sock_sendall(sock, data)
                reply = await asyncio.wait_for(loop.sock_recv(sock, 4096), FORWARD_TIMEOUT)
                if protocol.transport is not None and not protocol.transport.is_closing():
                    protocol.transport.sendto(reply, addr)
                return
            except (OSError, asyncio.TimeoutError):
                continue
            finally:
                sock.close()
        if protocol.transport is not None and not protocol.transport.is_closing():
            protocol.transport.sendto(servfail(data), addr)
