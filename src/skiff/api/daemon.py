"""skiffd: serves the Docker Engine API on a Unix socket, on top of `skiff.engine.Engine`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys

DEFAULT_HOST = "unix:///run/skiff/skiff.sock"


def socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise SystemExit(f"skiffd: unsupported host {host}: unix://PATH, tcp://ADDR:PORT "
                         "(with TLS) or fd://")
    return host[len("unix://"):]


def tcp_listeners(args) -> list[tuple[str, int, object]]:
    """(address, port, TLS context) of each tcp:// host; refused without client
    verification (api/tls.py says why)."""
    from skiff.api import tls

    found = []
    for host in args.host:
        if not host.startswith("tcp://"):
            continue
        try:
            settings = tls.require_for_tcp(host, args.tlsverify, args.tlscacert,
                                           args.tlscert, args.tlskey)
            addr, port = tls.parse_tcp(host)
            found.append((addr, port, tls.server_context(settings)))
        except tls.ListenerError as exc:
            raise SystemExit(f"skiffd: {exc}") from None
    return found


def already_serving(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


SOCKET_GROUP = "skiff"


def set_socket_access(path: str) -> None:
    """Mode 0660, group `skiff` when that group exists: its members may use skiff."""
    import grp

    os.chmod(path, 0o660)
    try:
        os.chown(path, -1, grp.getgrnam(SOCKET_GROUP).gr_gid)
    except KeyError:
        pass


def systemd_socket():
    """The listening socket systemd passed us (fd 3), if it passed one to this process."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    if int(os.environ.get("LISTEN_FDS", "0") or 0) < 1:
        return None
    return socket.socket(fileno=3)


def reload(args, engine) -> None:
    """SIGHUP: read daemon.json again and apply what can change while running: the default
    log driver and options of new containers, debug logging and live-restore."""
    from skiff.api import config as daemon_config

    log = logging.getLogger("skiffd")
    try:
        settings = daemon_config.load(args.config_file)
    except daemon_config.ConfigError as exc:
        log.error("reload refused: %s", exc)
        return
    engine.containers.log_driver = settings.get("log-driver", args.log_driver)
    engine.containers.log_opts = {str(k): str(v) for k, v in
                                  (settings.get("log-opts") or {}).items()}
    engine.containers.log_opts.update(   # the command line's --log-opt still wins
        text.split("=", 1) for text in args.log_opt if "=" in text)
    logging.getLogger().setLevel(logging.DEBUG if settings.get("debug") or args.debug
                                 else logging.INFO)
    args.live_restore = bool(settings.get("live-restore", args.live_restore))
    log.info("configuration reloaded")


async def serve(args) -> None:
    from skiff.api.app import App
    from skiff.api.http import Server
    from skiff.engine import Engine, EngineConfig

    activated = systemd_socket() if "fd://" in args.host else None
    if "fd://" in args.host and activated is None:
        raise SystemExit("skiffd: -H fd:// but systemd passed no socket (LISTEN_FDS)")
    tcp = tcp_listeners(args)
    unix_hosts = [h for h in args.host if h != "fd://" and not h.startswith("tcp://")]
    if len(unix_hosts) > 1:
        raise SystemExit("skiffd: one unix:// socket at most")
    path = socket_path(unix_hosts[0]) if unix_hosts else None
    if path:
        os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
        if already_serving(path):
            raise SystemExit(f"skiffd: another daemon already serves {path}")
    engine = Engine(EngineConfig(runtimes=args.runtimes, default_runtime=args.default_runtime,
                                 userns_remap=args.userns_remap,
                                 root=args.root, exec_root=args.exec_root,
                                 cgroup_parent=args.cgroup_parent, log_driver=args.log_driver,
                                 log_opts=args.log_opts, network=network_config(args)))
    from skiff.api import registry_config
    engine.registry_options = registry_config.options(args, os.environ)
    engine.images.cleanup()  # what a killed load or prune left behind
    engine.volume_use.restore([r for r in engine.containers.records.list()
                               if r.state.get("Running")])  # host mounts, half removals
    engine.monitor.ensure_running()
    await engine.networks.restore()  # bridges, rules, DNS; what dead containers left
    app = App(engine)
    server = Server(app.dispatch, app.common_headers)
    if activated is not None:
        await server.listen_socket(activated)
    for addr, port, context in tcp:
        try:
            await server.listen_tcp(addr, port, context)
        except OSError as exc:
            raise SystemExit(f"skiffd: cannot listen on tcp://{addr}:{port}: "
                             f"{exc.strerror or exc}") from None
    if path:
        tmp = path + f".{os.getpid()}"
        await server.listen_unix(tmp)
        set_socket_access(tmp)
        os.replace(tmp, path)  # clients see either no socket or a listening one
    watcher = asyncio.ensure_future(engine.containers.watch_exits())
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.add_signal_handler(signal.SIGHUP, lambda: reload(args, engine))
    logging.getLogger("skiffd").info("skiffd serving %s (root %s)", ", ".join(args.host),
                                     args.root)
    try:
        await stop
        if not args.live_restore:
            await engine.containers.stop_for_shutdown(args.shutdown_timeout)
    finally:
        watcher.cancel()
        await server.close()
        engine.networks.shutdown()
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        engine.close()


def add_runtime_flags(parser) -> None:
    parser.add_argument("--add-runtime", action="append", default=[], metavar="NAME=PATH",
                        help="register an OCI runtime with runc's command line (repeatable)")
    parser.add_argument("--default-runtime", default="skiff",
                        help="runtime of containers that name none: skiff (skiff-runtime), "
                        "runc, crun (when installed) or one added (default skiff)")
    parser.add_argument("--userns-remap", default="", metavar="USER[:GROUP]",
                        help="map containers' root to the subordinate ids of USER (\"default\": "
                        "the user dockremap, created if missing) in a user namespace")


def check_runtimes(args) -> None:
    from skiff.engine.runtimes import ConfigError, RuntimeTable

    try:
        RuntimeTable(args.runtimes, args.default_runtime, args.exec_root)
    except ConfigError as exc:
        raise SystemExit(f"skiffd: {exc}")
    from skiff.engine.userns import RemapError, UsernsRemap

    try:
        remap = UsernsRemap.from_setting(args.userns_remap)
        if remap is not None:
            remap.check_path(os.path.join(args.root, "containers"))
    except RemapError as exc:
        raise SystemExit(f"skiffd: {exc}")


def network_config(args):
    from skiff.engine.networks import DEFAULT_POOLS, NetworkConfig

    return NetworkConfig(bridge=args.bridge, bip=args.bip,
                         pools=args.default_address_pool or list(DEFAULT_POOLS),
                         nft_table=args.nft_table, nft=args.iptables)


def add_network_flags(parser) -> None:
    from skiff.engine.networks import DEFAULT_BRIDGE_CIDR, DEFAULT_POOLS

    parser.add_argument("--bridge", default="skiff0",
                        help="name of the default bridge network's Linux bridge (default "
                        "skiff0)")
    parser.add_argument("--bip", default=DEFAULT_BRIDGE_CIDR,
                        help="the default bridge's address and subnet (default "
                        f"{DEFAULT_BRIDGE_CIDR}; docker's is 172.17.0.1/16)")
    parser.add_argument("--default-address-pool", action="append", default=None,
                        metavar="base=CIDR,size=N",
                        help="where user-defined networks' subnets come from (repeatable; "
                        f"default {DEFAULT_POOLS[0]})")
    parser.add_argument("--nft-table", default="skiff",
                        help="name of skiff's nftables table (family ip; default skiff)")
    parser.add_argument("--iptables", default=True,
                        type=lambda v: v.lower() in ("1", "true", "yes", "on"),
                        help="manage the nftables table (masquerading, isolation, published "
                        "ports); false leaves the firewall alone (default true)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="skiffd", description="skiff's daemon: serves the "
                                     "Docker Engine API on a Unix socket.")
    parser.add_argument("-H", "--host", action="append", default=None,
                        help=f"address to listen on, repeatable (default {DEFAULT_HOST}): "
                        "unix://PATH; tcp://ADDR:PORT, only with --tlsverify; fd:// takes "
                        "the socket systemd passes (socket activation)")
    parser.add_argument("--tls", action="store_true", default=False,
                        help="use TLS (implied by --tlsverify)")
    parser.add_argument("--tlsverify", action="store_true", default=False,
                        help="use TLS and verify the client's certificate against "
                        "--tlscacert (required for tcp:// hosts)")
    parser.add_argument("--tlscacert", help="trust client certificates signed by this CA")
    parser.add_argument("--tlscert", help="path to the daemon's TLS certificate file")
    parser.add_argument("--tlskey", help="path to the daemon's TLS key file")
    parser.add_argument("--root", "--data-root", dest="root", default="/var/lib/skiff",
                        help="persistent state directory (default /var/lib/skiff)")
    parser.add_argument("--exec-root", default="/run/skiff", help="runtime state directory")
    parser.add_argument("--cgroup-parent", default="skiff",
                        help="parent cgroup of containers, relative to skiffd's own "
                        "(default skiff)")
    parser.add_argument("-p", "--pidfile", help="write the daemon's pid here")
    parser.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="default log driver options of containers (repeatable; "
                        "max-size, max-file, labels, env, ...)")
    parser.add_argument("--log-driver", default="json-file",
                        help="containers' default log driver: json-file or none")
    parser.add_argument("--config-file", default=None,
                        help="daemon configuration in docker's daemon.json format "
                        "(default /etc/skiff/daemon.json when it exists)")
    parser.add_argument("-D", "--debug", action="store_true", help="debug logging")
    parser.add_argument("--live-restore", nargs="?", const=True, default=True,
                        type=lambda v: v.lower() in ("1", "true", "yes", "on"),
                        help="keep containers running while skiffd stops (default true; "
                        "--live-restore=false stops them at shutdown, as dockerd's default "
                        "does, and restart policies bring them back at the next start)")
    parser.add_argument("--shutdown-timeout", type=int, default=15,
                        help="seconds a container gets to stop at shutdown before it is "
                        "killed, with --live-restore=false (default 15)")
    add_network_flags(parser)
    add_runtime_flags(parser)
    from skiff.api import registry_config
    registry_config.add_flags(parser)
    args = parser.parse_args(argv)
    from skiff.api import config as daemon_config

    try:
        daemon_config.merge(args, daemon_config.load(args.config_file),
                            {a.dest: a.default for a in parser._actions})
    except daemon_config.ConfigError as exc:
        raise SystemExit(f"skiffd: {exc}")
    args.host = args.host or [DEFAULT_HOST]
    check_runtimes(args)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    if os.geteuid() != 0:
        raise SystemExit("skiffd: must run as root (rootless mode is not there yet)")
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        asyncio.run(serve(args))
    finally:
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except FileNotFoundError:
                pass


if __name__ == "__main__":
    main()
