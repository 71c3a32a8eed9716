"""skiffd's TCP listeners: TLS with client verification, or nothing.

A client that reaches the API can start a privileged container, so anyone on the network
who reaches an unauthenticated TCP socket is root on this host. dockerd (from v27) refuses
such a listener unless told otherwise; skiffd always refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass


class ListenerError(Exception):
    pass


@dataclass(frozen=True)
class ServerTLS:
    cacert: str
    cert: str
    key: str


def require_for_tcp(host: str, tlsverify: bool, cacert: str | None, cert: str | None,
                    key: str | None) -> ServerTLS:
    missing = [flag for flag, value in (("--tlscacert", cacert), ("--tlscert", cert),
                                        ("--tlskey", key)) if not value]
    if not tlsverify or missing:
        raise ListenerError(
            f"refusing to listen on {host} without TLS client verification: anyone who "
            "reaches the socket would be root on this host; give --tlsverify with "
            "--tlscacert, --tlscert and --tlskey (or tlsverify, tlscacert, tlscert and "
            "tlskey in daemon.json)")
    return ServerTLS(cacert, cert, key)


def server_context(tls: ServerTLS):
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key)
        context.load_verify_locations(tls.cacert)
    except (OSError, ssl.SSLError) as exc:
        raise ListenerError(f"could not load the TLS certificates: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def parse_tcp(host: str) -> tuple[str, int]:
    """`tcp://ADDR:PORT` -> (ADDR, PORT), as dockerd reads it: no address before the colon
    means every interface, no address at all means 127.0.0.1, no port means 2376 (docker's
    TLS port)."""
    rest = host[len("tcp://"):].rstrip("/")
    if rest.startswith("["):
        addr, _, port = rest[1:].partition("]")
        port = port.lstrip(":")
    else:
        addr, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    try:
        number = int(port) if port else 2376
    except ValueError:
        raise ListenerError(f"invalid port in {host}") from None
    if not 0 < number < 65536:
        raise ListenerError(f"invalid port in {host}")
    if not addr:
        addr = "0.0.0.0" if rest.startswith(":") else "127.0.0.1"
    return addr, number


# -- the TLS side of a connection, in a thread ---------------------------------------------------
#
# asyncio's TLS transport closes the whole connection when the client sends close_notify, but
# the docker CLI half-closes (CloseWrite) every attach and exec stream as soon as its stdin is
# done, and then waits for the output. So TLS is terminated in a thread per connection, which
# hands the plain bytes to the HTTP server over a socketpair: a Unix socket, which keeps the
# half-close as the server already understands it.

HANDSHAKE_TIMEOUT = 10.0
PUMP_CHUNK = 256 * 1024


def pump(raw, context, inner) -> None:
    """Move bytes between the client's TLS socket `raw` and the server's end `inner` until
    both directions are done; close both."""
    import select
    import socket
    import ssl

    try:
        raw.settimeout(HANDSHAKE_TIMEOUT)
        tls = context.wrap_socket(raw, server_side=True)
    except (OSError, ValueError):
        raw.close()
        inner.close()
        return
    tls.setblocking(False)
    client_open, server_open = True, True
    try:
        while client_open or server_open:
            waiting = ([tls] if client_open else []) + ([inner] if server_open else [])
            if not (client_open and tls.pending()):
                readable, _, _ = select.select(waiting, [], [])
            else:
                readable = [tls]
            if tls in readable and client_open:
                try:
                    data = tls.recv(PUMP_CHUNK)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLError, OSError):
                    data = b""
                if data:
                    inner.sendall(data)
                elif data == b"":  # close_notify or TCP EOF: the client is done writing
                    client_open = False
                    inner.shutdown(socket.SHUT_WR)
            if inner in readable and server_open:
                data = inner.recv(PUMP_CHUNK)
                if data:
                    _send_all(tls, data)
                else:
                    server_open = False
                    if client_open:  # the server answered in full: end the connection
                        client_open = False
        try:
            tls.setblocking(True)
            tls.settimeout(1.0)
            tls.unwrap()  # close_notify, so the client reads a clean end of stream
        except (OSError, ValueError):
            pass
    except OSError:
        pass
    finally:
        tls.close()
        inner.close()


def _send_all(tls, data: bytes) -> None:
    import select
    import ssl

    view = memoryview(data)
    while view:
        try:
            sent = tls.send(view)
            view = view[sent:]
        except ssl.SSLWantWriteError:
            select.select([], [tls], [])
        except ssl.SSLWantReadError:
            select.select([tls], [], [])


async def serve_tls(addr: str, port: int, context, on_connection, limit: int):
    """Listen on addr:port; each accepted client gets a pump thread and `on_connection`
    (reader, writer) over the plain side. Returns the listening asyncio server."""
    import asyncio
    import socket
    import threading

    loop = asyncio.get_running_loop()

    def accepted(raw_reader, raw_writer):
        raw = raw_writer.get_extra_info("socket").dup()
        raw_writer.transport.abort()  # the duplicate is the connection now
        raw.setblocking(True)
        inner, outer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        threading.Thread(target=pump, args=(raw, context, inner), name="tls",
                         daemon=True).start()

        async def run():
            reader, writer = await asyncio.open_unix_connection(sock=outer, limit=limit)
            await on_connection(reader, writer)
        loop.create_task(run())

    return await asyncio.start_server(accepted, addr, port, limit=limit, reuse_address=True)
