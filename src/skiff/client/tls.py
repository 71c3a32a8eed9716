"""TLS to a daemon on tcp://, as the docker CLI does it: `--tls` encrypts, `--tlsverify` also
checks the daemon's certificate against a CA; a client certificate is presented when one is
there (a daemon with `--tlsverify` refuses clients without one).

Default files are ca.pem, cert.pem and key.pem in $SKIFF_CERT_PATH (else ~/.skiff), as the
docker CLI reads them from $DOCKER_CERT_PATH (else ~/.docker). `ssl` is imported only here,
so Unix-socket commands never pay for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class TLSConfig:
    verify: bool = True
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None


def cert_dir(environ=os.environ) -> str:
    return environ.get("SKIFF_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".skiff")


def from_options(tls: bool, tlsverify: bool, cacert: str | None, cert: str | None,
                 key: str | None, environ=os.environ) -> TLSConfig | None:
    """The TLS settings the flags and environment ask for, or None for plain connections."""
    verify = tlsverify or bool(environ.get("SKIFF_TLS_VERIFY"))
    if not (tls or verify or cacert or cert or key):
        return None
    base = cert_dir(environ)

    def default(given: str | None, name: str) -> str | None:
        if given:
            return given
        path = os.path.join(base, name)
        return path if os.path.exists(path) else None

    return TLSConfig(verify=verify, cacert=default(cacert, "ca.pem"),
                     cert=default(cert, "cert.pem"), key=default(key, "key.pem"))


def wrap(sock, config: TLSConfig, server_name: str) -> "TLSSocket":
    """`sock` (connected) wrapped in TLS per `config`; the handshake happens here."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.verify:
        if config.cacert:
            context.load_verify_locations(config.cacert)
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.cert and config.key:
        context.load_cert_chain(config.cert, config.key)
    return TLSSocket(sock, context, server_name)


RECV_SIZE = 256 * 1024


class TLSSocket:
    """A TLS client connection with the few socket methods the client uses, and the
    half-close that ssl.SSLSocket lacks: attach and exec end the container's stdin by
    closing our write direction (close_notify) while its output keeps coming.

    SSLSocket.shutdown() drops TLS altogether, and unwrap() runs SSL_shutdown until the
    daemon's close_notify arrives, throwing away the output read on the way. Here TLS runs
    over memory buffers that we fill from the socket ourselves, so SSL_shutdown only ever
    sees what we hand it: nothing, when we half-close.
    """

    def __init__(self, sock, context, server_name: str):
        import ssl

        self._ssl = ssl
        self.sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=server_name)
        self._plain = b""           # decrypted before a half-close, not yet returned
        self._write_closed = False
        while True:
            try:
                self._tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise ConnectionResetError("the daemon closed the connection during "
                                               "the TLS handshake") from None

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(RECV_SIZE)
        if not data:
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    def recv(self, size: int) -> bytes:
        if self._plain:
            data, self._plain = self._plain[:size], self._plain[size:]
            return data
        while True:
            try:
                return self._tls.read(size)
            except self._ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    return b""
            except (self._ssl.SSLZeroReturnError, self._ssl.SSLEOFError):
                return b""

    def sendall(self, data) -> None:
        self._tls.write(data)
        self._flush()

    def pending(self) -> int:
        """Bytes select() on the socket cannot announce: decrypted or still encrypted in
        our buffers."""
        return len(self._plain) + self._tls.pending() + self._in.pending

    def shutdown(self, how) -> None:
        """Close our write direction (close_notify); reading goes on."""
        import socket

        if how == socket.SHUT_RD or self._write_closed:
            return
        self._write_closed = True
        while self._in.pending:  # what has arrived is the daemon's output: keep it
            try:
                self._plain += self._tls.read(RECV_SIZE)
            except (self._ssl.SSLWantReadError, self._ssl.SSLZeroReturnError):
                break
        try:
            self._tls.unwrap()
        except self._ssl.SSLWantReadError:
            pass  # the daemon's close_notify comes later, through recv()
        self._flush()

    def fileno(self) -> int:
        return self.sock.fileno()

    def settimeout(self, timeout) -> None:
        self.sock.settimeout(timeout)

    def gettimeout(self):
        return self.sock.gettimeout()

    def close(self) -> None:
        self.sock.close()
