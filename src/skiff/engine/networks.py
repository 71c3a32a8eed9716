"""Networks: the default `bridge` and user-defined bridge networks, containers' endpoints on
them, published ports and name resolution, as docker has them.

State lives in two tables of skiff.db (one transaction per change):

- `networks`: one row per network (its inspect document, less `Containers`);
- `endpoints`: one row per (network, container) attachment, from `create`/`connect` until
  `disconnect`/removal; `ip` is set while the container runs (or always, for `--ip`), so an
  address is taken and released in the same transaction that decides it.

Kernel state (a container's namespace file `<exec_root>/netns/<id>`, its veth pairs, the
bridges, skiff's nftables table) is derived from those rows: `restore()` at daemon start makes
it so again after a crash or a reboot, and removes what belongs to no running container.

Network modes (HostConfig.NetworkMode): `bridge` (also "" and "default"), a user-defined
network's name or id, `host`, `none`, `container:NAME`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

from skiff.errors import Conflict, Forbidden, InvalidArgument, NotFound
from skiff.network import filters as network_filters
from skiff.network import ipam
from skiff.network import ports as port_values
from skiff.network.resolv import custom_resolv
from skiff.timefmt import rfc3339_nano

log = logging.getLogger("skiffd")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS networks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        doc TEXT NOT NULL                 -- the inspect document without Containers (JSON)
    )""",
    """CREATE TABLE IF NOT EXISTS endpoints (
        network_id TEXT NOT NULL REFERENCES networks(id),
        container_id TEXT NOT NULL,
        ip TEXT,                          -- set while running, or for a static --ip
        doc TEXT NOT NULL,                -- aliases, static ip, mac, interface name (JSON)
        PRIMARY KEY (network_id, container_id)
    )""",
    "CREATE INDEX IF NOT EXISTS endpoints_container ON endpoints(container_id)",
    """CREATE TABLE IF NOT EXISTS sandboxes (
        container_id TEXT PRIMARY KEY,    -- a running container's network namespace
        doc TEXT NOT NULL                 -- its published ports (JSON)
    )""",
]

PREDEFINED = ("bridge", "host", "none")
DEFAULT_BRIDGE_CIDR = ipam.DEFAULT_BRIDGE_CIDR   # for skiffd's flags
DEFAULT_POOLS = ipam.DEFAULT_POOLS
BRIDGE_OPTION_NAME = "com.docker.network.bridge.name"
MASQUERADE_OPTION = "com.docker.network.bridge.enable_ip_masquerade"
MTU_OPTION = "com.docker.network.driver.mtu"
KNOWN_DRIVERS = ("bridge",)


@dataclass
class NetworkConfig:
    """The daemon's networking settings (skiffd's --bridge, --bip, --default-address-pool,
    --nft-table, --iptables)."""
    bridge: str = "skiff0"
    bip: str = ipam.DEFAULT_BRIDGE_CIDR
    pools: list = field(default_factory=lambda: list(ipam.DEFAULT_POOLS))
    nft_table: str = "skiff"
    nft: bool = True


def network_mode(host_config: dict) -> str:
    mode = host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def is_user_defined(doc: dict) -> bool:
    """A bridge network other than the default one: it has DNS, aliases and static IPs."""
    return doc["Driver"] == "bridge" and doc["Name"] != "bridge"


_is_user_defined = is_user_defined


class NetworkService:
    def __init__(self, db, exec_root: str, events, config: NetworkConfig | None = None,
                 host_resolv: str = "/etc/resolv.conf"):
        self.db = db
        self.events = events
        self.config = config or NetworkConfig()
        self.netns_dir = os.path.join(exec_root, "netns")
        self.host_resolv = host_resolv
        self.containers = None        # the ContainerService, set by the Engine
        self._dns = None
        self._nft_lock = threading.Lock()
        self._bridges_seen: set[str] = set()
        self._held: dict[str, list] = {}   # container id -> sockets holding its host ports
        self._bridge_lock = threading.Lock()
        with db.transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement)
        self._ensure_predefined()

    # ------------------------------------------------------------------ records
    def _ensure_predefined(self) -> None:
        bip = ipaddress.ip_interface(self.config.bip)
        for name, driver in (("bridge", "bridge"), ("host", "host"), ("none", "null")):
            row = self.db.query_one("SELECT id, doc FROM networks WHERE name = ?", (name,))
            if row is not None and name != "bridge":
                continue
            if row is not None:
                doc = json.loads(row["doc"])
                wanted = {"Subnet": str(bip.network), "Gateway": str(bip.ip)}
                if doc["IPAM"]["Config"] == [wanted] and \
                        doc["Options"][BRIDGE_OPTION_NAME] == self.config.bridge:
                    continue
                # --bip or --bridge changed: the default network follows the daemon's flags
                doc["IPAM"]["Config"] = [wanted]
                doc["Options"][BRIDGE_OPTION_NAME] = self.config.bridge
                with self.db.transaction() as cur:
                    cur.execute("UPDATE networks SET doc = ? WHERE id = ?",
                                (json.dumps(doc), row["id"]))
                continue
            nid = secrets.token_hex(32)
            doc = _network_doc(name, nid, rfc3339_nano(), driver)
            if name == "bridge":
                doc["IPAM"]["Config"] = [{"Subnet": str(bip.network), "Gateway": str(bip.ip)}]
                doc["Options"] = {
                    "com.docker.network.bridge.default_bridge": "true",
                    "com.docker.network.bridge.enable_icc": "true",
                    MASQUERADE_OPTION: "true",
                    "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                    BRIDGE_OPTION_NAME: self.config.bridge,
                    MTU_OPTION: "1500"}
            with self.db.transaction() as cur:
                cur.execute("INSERT INTO networks (id, name, created, doc) VALUES (?,?,?,?)",
                            (nid, name, doc["Created"], json.dumps(doc)))

    def _all(self) -> list[dict]:
        return [json.loads(r["doc"]) for r in
                self.db.query("SELECT doc FROM networks ORDER BY created")]

    def find(self, ref: str) -> dict:
        """By full id, exact name, then unique id prefix (docker's order)."""
        if not ref:
            raise NotFound("network  not found")
        row = self.db.query_one("SELECT doc FROM networks WHERE id = ?", (ref,)) or \
            self.db.query_one("SELECT doc FROM networks WHERE name = ?", (ref,))
        if row is None:
            rows = self.db.query("SELECT doc FROM networks WHERE substr(id, 1, ?) = ?",
                                 (len(ref), ref))
            if len(rows) > 1:
                raise NotFound(f"network {ref} is ambiguous ({len(rows)} matches found on "
                               "name)")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"network {ref} not found")
        return json.loads(row["doc"])

    def _endpoints(self, *, network_id: str | None = None,
                   container_id: str | None = None) -> list[dict]:
        sql, args = "SELECT network_id, container_id, ip, doc FROM endpoints", []
        where = []
        if network_id:
            where.append("network_id = ?")
            args.append(network_id)
        if container_id:
            where.append("container_id = ?")
            args.append(container_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        out = []
        for r in self.db.query(sql + " ORDER BY rowid", tuple(args)):
            doc = json.loads(r["doc"])
            doc.update(network_id=r["network_id"], container_id=r["container_id"], ip=r["ip"])
            out.append(doc)
        return out

    def bridge_name(self, doc: dict) -> str:
        return doc["Options"].get(BRIDGE_OPTION_NAME) or "br-" + doc["Id"][:12]

    def _ipam(self, doc: dict) -> ipam.IPAMConfig:
        return ipam.ipam_config(doc["IPAM"]["Config"][0])

    def inspect(self, ref: str) -> dict:
        doc = self.find(ref)
        containers = {}
        for ep in self._endpoints(network_id=doc["Id"]):
            if not ep["ip"] or not self._running(ep["container_id"]):
                continue
            prefix = self._ipam(doc).subnet.prefixlen
            containers[ep["container_id"]] = {
                "Name": self._container_name(ep["container_id"]),
                "EndpointID": ep["endpoint_id"], "MacAddress": ep["mac"],
                "IPv4Address": f"{ep['ip']}/{prefix}", "IPv6Address": ""}
        return dict(doc, Containers=containers)

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict]:
        filters = filters or {}
        out = []
        for doc in self._all():
            if network_filters.list_matches(doc, filters, self._in_use(doc["Id"])):
                out.append(dict(doc, Containers={}))
        return out

    def _in_use(self, nid: str) -> bool:
        return self.db.query_one("SELECT 1 FROM endpoints WHERE network_id = ?",
                                 (nid,)) is not None

    def _running(self, cid: str) -> bool:
        if self.containers is None:
            return False
        try:
            return bool(self.containers.records.get(cid).state.get("Running"))
        except NotFound:
            return False

    def _container_name(self, cid: str) -> str:
        try:
            return self.containers.records.get(cid).name
        except (NotFound, AttributeError):
            return ""

    def _emit(self, doc: dict, action: str, **extra) -> None:
        self.events.emit("network", action, doc["Id"],
                         {"name": doc["Name"], "type": doc["Driver"], **extra})

    # ------------------------------------------------------------------ networks
    async def create(self, body: dict) -> dict:
        doc = await asyncio.to_thread(self._create, body)
        self._emit(doc, "create")
        return {"Id": doc["Id"], "Warning": ""}

    def _create(self, body: dict) -> dict:
        name = body.get("Name") or ""
        if not name:
            raise InvalidArgument("network name cannot be empty")
        driver = body.get("Driver") or "bridge"
        if driver not in KNOWN_DRIVERS:
            if driver in ("host", "null"):
                raise Forbidden(f"only one instance of \"{driver}\" network is allowed")
            raise NotFound(f"plugin \"{driver}\" not found")
        if name in PREDEFINED:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        if body.get("EnableIPv6"):
            raise InvalidArgument("IPv6 networks are not supported by skiff yet")
        ipam_body = body.get("IPAM") or {}
        if (ipam_body.get("Driver") or "default") != "default":
            raise NotFound(f"plugin \"{ipam_body['Driver']}\" not found")
        entries = [e for e in ipam_body.get("Config") or [] if e]
        if len(entries) > 1:
            raise InvalidArgument("skiff supports one IPv4 IPAM config per network")
        options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
        nid = secrets.token_hex(32)
        with self.db.transaction():
            if self.db.query_one("SELECT 1 FROM networks WHERE name = ?", (name,)):
                raise Conflict(f"network with name {name} already exists")
            taken = [self._ipam(d).subnet for d in self._all() if d["Driver"] == "bridge"]
            if entries and entries[0].get("Subnet"):
                config = ipam.ipam_config(entries[0])
                if ipam.overlaps(config.subnet, taken):
                    raise Forbidden("invalid pool request: Pool overlaps with other one on "
                                    "this address space")
            else:
                if entries and (entries[0].get("Gateway") or entries[0].get("IPRange")):
                    raise InvalidArgument("invalid pool request: ip-range or gateway given "
                                          "without a subnet")
                from skiff.network import links

                subnet = ipam.next_subnet(ipam.parse_pools(self.config.pools),
                                          taken + links.host_routes())
                config = ipam.ipam_config(entries[0] if entries else {}, subnet)
            bridge = options.get(BRIDGE_OPTION_NAME) or "br-" + nid[:12]
            if len(bridge) > 15:
                raise InvalidArgument(f"bridge name {bridge} is too long (15 characters "
                                      "at most)")
            for other in self._all():
                if other["Driver"] == "bridge" and self.bridge_name(other) == bridge:
                    raise Forbidden(f"bridge name {bridge} is already used by network "
                                    f"{other['Name']}")
            doc = _network_doc(name, nid, rfc3339_nano(), "bridge")
            doc.update(Internal=bool(body.get("Internal")),
                       Attachable=bool(body.get("Attachable")),
                       Labels={str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
                       Options=options)
            doc["IPAM"]["Config"] = [config.to_wire()]
            doc["IPAM"]["Options"] = dict(ipam_body.get("Options") or {})
            self.db.query("INSERT INTO networks (id, name, created, doc) VALUES (?,?,?,?)",
                          (nid, name, doc["Created"], json.dumps(doc)))
        try:
            self._make_bridge(doc)
            self._refresh_rules()
        except BaseException:
            self._drop_bridge(doc)
            with self.db.transaction() as cur:
                cur.execute("DELETE FROM networks WHERE id = ?", (nid,))
            self._refresh_rules()
            raise
        return doc

    async def remove(self, ref: str) -> None:
        doc = await asyncio.to_thread(self._remove, ref)
        self._emit(doc, "destroy")

    def _remove(self, ref: str) -> dict:
        doc = self.find(ref)
        if doc["Name"] in PREDEFINED:
            raise Forbidden(f"{doc['Name']} is a pre-defined network and cannot be removed")
        active = [ep for ep in self._endpoints(network_id=doc["Id"])
                  if self._running(ep["container_id"])]
        if active:
            raise Forbidden(f"error while removing network: network {doc['Name']} id "
                            f"{doc['Id']} has active endpoints")
        # the bridge first: a crash before the rows go leaves a record that restore() makes
        # a bridge for again, never a bridge that no record names
        self._drop_bridge(doc)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM endpoints WHERE network_id = ?", (doc["Id"],))
            cur.execute("DELETE FROM networks WHERE id = ?", (doc["Id"],))
        self._refresh_rules()
        return doc

    async def prune(self, filters: dict[str, list[str]]) -> dict:
        removed = []
        for doc in self._all():
            if doc["Name"] in PREDEFINED or self._in_use(doc["Id"]):
                continue
            if not network_filters.prune_matches(doc, filters):
                continue
            try:
                await self.remove(doc["Id"])
            except (Forbidden, NotFound):
                continue
            removed.append(doc["Name"])
        return {"NetworksDeleted": removed or None}

    def _make_bridge(self, doc: dict) -> None:
        from skiff.network import links

        config = self._ipam(doc)
        mtu = int(doc["Options"].get(MTU_OPTION) or 0) or None
        links.ensure_bridge(self.bridge_name(doc), str(config.gateway),
                            config.subnet.prefixlen, mtu=mtu if mtu != 1500 else None)
        links_sysctl()

    def _drop_bridge(self, doc: dict) -> None:
        from skiff.network import links

        self._bridges_seen.discard(self.bridge_name(doc))
        try:
            links.delete_link(self.bridge_name(doc))
        except Exception as exc:
            log.warning("removing bridge %s: %s", self.bridge_name(doc), exc)

    def _refresh_rules(self) -> None:
        """skiff's nft table rewritten from the records, in one transaction."""
        if not self.config.nft:
            return
        from skiff.network import nft

        networks, ports = [], []
        for doc in self._all():
            if doc["Driver"] != "bridge":
                continue
            networks.append(nft.BridgeRules(
                self.bridge_name(doc), str(self._ipam(doc).subnet), internal=doc["Internal"],
                masquerade=doc["Options"].get(MASQUERADE_OPTION, "true") != "false"))
        for row in self.db.query("SELECT container_id, doc FROM sandboxes ORDER BY rowid"):
            for p in json.loads(row["doc"]).get("Rules") or []:
                ports.append(nft.PortRule(**p))
        with self._nft_lock:
            nft.apply(nft.render(self.config.nft_table, networks, ports))

    # ------------------------------------------------------------------ containers: create
    def prepare(self, cid: str, name: str, body: dict, host_config: dict, spec: dict,
                lookup) -> None:
        """At container create: check the network mode, record its endpoints, and point the
        spec's network namespace at the file start() will make (or at what it shares)."""
        mode = network_mode(host_config)
        host_config["NetworkMode"] = mode
        namespaces = spec["linux"].get("namespaces", [])
        others = [n for n in namespaces if n.get("type") != "network"]
        endpoints_config = dict((body.get("NetworkingConfig") or {}).get("EndpointsConfig")
                                or {})
        if mode == "host":
            spec["linux"]["namespaces"] = others
            return
        if mode == "none":
            return
        if mode.startswith("container:"):
            other = lookup(mode[len("container:"):])
            if not other.state.get("Running"):
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            path = self.netns_path(other.id)
            if not os.path.exists(path):
                path = f"/proc/{int(other.state['Pid'])}/ns/net"
            spec["linux"]["namespaces"] = others + [{"type": "network", "path": path}]
            if self.containers is not None:   # its /etc/hosts and resolv.conf, as docker
                owner = self.containers.container_dir(other.id)
                for mount in spec.get("mounts", []):
                    name = {"/etc/hosts": "hosts",
                            "/etc/resolv.conf": "resolv.conf"}.get(mount.get("destination"))
                    if name and mount.get("type") == "bind":
                        mount["source"] = os.path.join(owner, name)
            return
        primary = self.find(mode)
        if primary["Driver"] == "host":
            spec["linux"]["namespaces"] = others
            host_config["NetworkMode"] = "host"
            return
        if primary["Driver"] == "null":
            host_config["NetworkMode"] = "none"
            return
        given = (body.get("HostConfig") or {}).get("NetworkMode") or ""
        settings = {}
        for key in (primary["Name"], primary["Id"], mode, given, "default"):
            if key in endpoints_config:   # the docker CLI names the default one "default"
                settings = endpoints_config.pop(key) or settings
        wanted = [(primary, settings)]
        for ref, settings in endpoints_config.items():
            net = self.find(ref)
            if net["Id"] != primary["Id"]:
                wanted.append((net, settings or {}))
        if body.get("MacAddress"):
            first = dict(wanted[0][1])
            first.setdefault("MacAddress", body["MacAddress"])
            wanted[0] = (wanted[0][0], first)
        with self.db.transaction():
            for net, settings in wanted:
                self._add_endpoint(cid, name, net, settings)
        spec["linux"]["namespaces"] = others + [{"type": "network",
                                                 "path": self.netns_path(cid)}]

    def default_hostname(self, host_config: dict, lookup) -> str | None:
        """A container without --hostname: with --network host the host's name, with
        container:NAME that container's, as docker does; None: its short id."""
        mode = network_mode(host_config)
        if mode == "host":
            return socket.gethostname()
        if mode.startswith("container:"):
            try:
                return lookup(mode[len("container:"):]).config["Config"].get("Hostname")
            except NotFound:
                return None   # prepare() says docker's error
        return None

    def netns_path(self, cid: str) -> str:
        return os.path.join(self.netns_dir, cid)

    def _add_endpoint(self, cid: str, cname: str, net: dict, settings: dict) -> dict:
        """One endpoint row (in the caller's transaction), checked as docker checks it."""
        if net["Driver"] != "bridge":
            raise Forbidden("container cannot be disconnected from host network or "
                            "connected to host network")
        user_defined = _is_user_defined(net)
        ipam_settings = settings.get("IPAMConfig") or {}
        static = ipam_settings.get("IPv4Address") or ""
        aliases = [a for a in settings.get("Aliases") or [] if a]
        if static and not user_defined:
            raise InvalidArgument("user specified IP address is supported on user defined "
                                  "networks only")
        if aliases and not user_defined:
            raise InvalidArgument("network-scoped alias is supported only for containers in "
                                  "user defined networks")
        if self.db.query_one("SELECT 1 FROM endpoints WHERE network_id = ? AND "
                             "container_id = ?", (net["Id"], cid)):
            raise Forbidden(f"endpoint with name {cname} already exists in network "
                            f"{net['Name']}")
        ip = None
        if static:
            ip = ipam.parse_address(static)
            used = [r["ip"] for r in self.db.query(
                "SELECT ip FROM endpoints WHERE network_id = ? AND ip IS NOT NULL",
                (net["Id"],))]
            ipam.check_static_address(self._ipam(net), ip, used)
        mac = settings.get("MacAddress") or ""
        if mac:
            mac = ipam.parse_mac(mac)
        doc = {"endpoint_id": secrets.token_hex(32), "aliases": aliases,
               "static_ip": str(ip) if ip else "", "static_mac": mac,
               "links": list(settings.get("Links") or []),
               "driver_opts": dict(settings.get("DriverOpts") or {})}
        self.db.query("INSERT INTO endpoints (network_id, container_id, ip, doc) "
                      "VALUES (?,?,?,?)", (net["Id"], cid, str(ip) if ip else None,
                                           json.dumps(doc)))
        return doc

    def forget(self, cid: str) -> None:
        """The container is gone: its endpoint rows go too."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM endpoints WHERE container_id = ?", (cid,))
            cur.execute("DELETE FROM sandboxes WHERE container_id = ?", (cid,))

    def etc_files(self, files: dict[str, str], host_config: dict, body: dict) -> dict:
        """/etc/resolv.conf and /etc/hosts as the network mode wants them, with --dns,
        --dns-search, --dns-option and --add-host applied (at create; start adds the
        container's own addresses to hosts)."""
        from skiff.engine import bundle

        mode = network_mode(host_config)
        files = dict(files)
        host_text = _read(self.host_resolv)
        if mode == "host":
            resolv = host_text
            files["hosts"] = _read("/etc/hosts") or files["hosts"]
        else:
            resolv = bundle.resolv_conf(host_text)
            if self._uses_embedded_dns(mode, body):
                resolv = "\n".join(line for line in resolv.splitlines()
                                   if not line.startswith("nameserver")) + \
                    "\nnameserver 127.0.0.11\noptions ndots:0\n"
        files["resolv.conf"] = custom_resolv(resolv, host_config,
                                             embedded=self._uses_embedded_dns(mode, body))
        files["hosts"] = files["hosts"] + self.extra_hosts(host_config)
        return files

    def _uses_embedded_dns(self, mode: str, body: dict) -> bool:
        if mode in ("host", "none", "bridge") or mode.startswith("container:"):
            return False
        try:
            return _is_user_defined(self.find(mode))
        except NotFound:
            return False

    def extra_hosts(self, host_config: dict) -> str:
        lines = []
        for entry in host_config.get("ExtraHosts") or []:
            host, sep, ip = entry.partition(":") if "=" not in entry else entry.partition("=")
            if not sep or not host:
                raise InvalidArgument(f"invalid argument \"{entry}\" for \"--add-host\" flag: "
                                      "bad format for add-host")
            if ip == "host-gateway":
                ip = str(ipaddress.ip_interface(self.config.bip).ip)
            else:
                try:
                    ipaddress.ip_address(ip.strip("[]"))
                except ValueError:
                    raise InvalidArgument(f"invalid argument \"{entry}\" for \"--add-host\" "
                                          f"flag: invalid IP address in add-host: \"{ip}\"") \
                        from None
            lines.append(f"{ip.strip('[]')}\t{host}\n")
        return "".join(lines)

    # ------------------------------------------------------------------ containers: run
    def _ordered(self, cid: str) -> list[tuple[dict, dict]]:
        out = []
        for ep in self._endpoints(container_id=cid):
            try:
                out.append((self.find(ep["network_id"]), ep))
            except NotFound:
                raise NotFound(f"network {ep['network_id']} not found") from None
        return out

    async def setup(self, record) -> None:
        """Before the runtime starts the container: its namespace file, an address and a
        veth on each of its networks, its published ports, /etc/hosts, DNS."""
        cid = record.id
        host_config = record.config["HostConfig"]
        mode = network_mode(host_config)
        if not host_config.get("NetworkMode") or mode in ("host", "none") or \
                mode.startswith("container:"):
            return   # no namespace file of ours (or a container older than networking)
        if not self._endpoints(container_id=cid):
            self.find(mode)   # docker's "network NAME not found" once it was removed
        started = time.perf_counter()
        try:
            attached = await asyncio.to_thread(self._setup_sync, record)
            if attached:
                await self._serve_dns(cid)
        except BaseException:
            await self.release(cid)
            raise
        for net, _ep in self._ordered(cid):
            self._emit(net, "connect", container=cid)
        log.debug("network of %s set up in %.1f ms", cid[:12],
                  (time.perf_counter() - started) * 1000)

    def _setup_sync(self, record) -> bool:
        from skiff.network import netns

        cid = record.id
        path = self.netns_path(cid)
        netns.remove(path)   # a crash's leftover
        netns.create(path)
        self._ensure_bridges([net for net, _ep in self._ordered(cid)])
        if not self._endpoints(container_id=cid):   # disconnected from every network
            from skiff.network import links

            links.lo_up(path)
        first = True
        user_defined = False
        for net, ep in self._ordered(cid):
            self._plug(cid, net, ep, path, default_route=first)
            first = False
            user_defined = user_defined or _is_user_defined(net)
        self._publish(record)
        self.write_hosts(record)
        return user_defined

    def _ensure_bridges(self, nets: list[dict], recheck: bool = False) -> None:
        """The bridges of `nets` exist (the default one is made when first used); a bridge
        seen once is not looked up again unless `recheck` (an attach found it missing)."""
        from skiff.network import links

        if not recheck and all(self.bridge_name(n) in self._bridges_seen for n in nets):
            return
        fresh = False
        with self._bridge_lock:   # containers starting at once make a bridge once
            for net in nets:
                name = self.bridge_name(net)
                if name in self._bridges_seen and not recheck:
                    continue
                if not links.exists(name):
                    self._make_bridge(net)
                    fresh = True
                self._bridges_seen.add(name)
        if fresh:
            self._refresh_rules()

    def _plug(self, cid: str, net: dict, ep: dict, path: str, default_route: bool) -> None:
        """An address for the endpoint (in one transaction) and its veth pair."""
        from skiff.network import links

        config = self._ipam(net)
        with self.db.transaction():
            taken_names = {json.loads(r["doc"]).get("ifname") for r in self.db.query(
                "SELECT doc FROM endpoints WHERE container_id = ? AND network_id != ?",
                (cid, net["Id"]))}
            ifname = next(f"eth{i}" for i in range(64) if f"eth{i}" not in taken_names)
            ip = ep.get("static_ip")
            if not ip:
                used = [r["ip"] for r in self.db.query(
                    "SELECT ip FROM endpoints WHERE network_id = ? AND ip IS NOT NULL AND "
                    "container_id != ?", (net["Id"], cid))]
                ip = str(ipam.next_address(config, used))
            mac = ep.get("static_mac") or ipam.mac_for(ipaddress.ip_address(ip))
            doc = {k: v for k, v in ep.items() if k not in ("network_id", "container_id", "ip")}
            doc.update(ifname=ifname, mac=mac)
            self.db.query("UPDATE endpoints SET ip = ?, doc = ? WHERE network_id = ? AND "
                          "container_id = ?", (ip, json.dumps(doc), net["Id"], cid))
        gateway = None if (net["Internal"] or not default_route) else str(config.gateway)
        mtu = int(net["Options"].get(MTU_OPTION) or 0)
        args = (path, self.bridge_name(net), links.host_ifname(cid, net["Id"]), ifname, ip,
                config.subnet.prefixlen, mac, gateway, mtu if mtu and mtu != 1500 else None)
        try:
            links.attach(*args)
        except links.BridgeMissing:   # removed behind our back: make it again
            self._ensure_bridges([net], recheck=True)
            links.attach(*args)

    async def release(self, cid: str, *, emit: bool = True) -> None:
        """After the container stopped (or failed to start): veths, namespace file, addresses,
        published ports and DNS go; endpoint rows stay for the next start."""
        started = time.perf_counter()
        if self._dns is not None:
            self._dns.stop(cid)
        had = await asyncio.to_thread(self._release_sync, cid)
        log.debug("network of %s released in %.1f ms", cid[:12],
                  (time.perf_counter() - started) * 1000)
        if emit:
            for net in had:
                self._emit(net, "disconnect", container=cid)

    def _release_sync(self, cid: str) -> list[dict]:
        """The veths are not deleted one by one (each deletion waits for RCU grace periods,
        ~20 ms): they go with the namespace, which the kernel tears down once the file is
        unmounted and the container's last process is gone."""
        from skiff.network import netns

        had = []
        self._hold(cid, [])
        for ep in self._endpoints(container_id=cid):
            try:
                net = self.find(ep["network_id"])
            except NotFound:
                continue
            if ep["ip"]:
                had.append(net)
        with self.db.transaction() as cur:
            cur.execute("UPDATE endpoints SET ip = NULL WHERE container_id = ? AND "
                        "json_extract(doc, '$.static_ip') = ''", (cid,))
            ported = cur.execute("DELETE FROM sandboxes WHERE container_id = ? RETURNING "
                                 "json_extract(doc, '$.Rules')", (cid,)).fetchall()
        netns.remove(self.netns_path(cid))
        if any(r[0] not in (None, "[]") for r in ported):
            self._refresh_rules()
        return had

    # ------------------------------------------------------------------ published ports
    def _publish(self, record) -> None:
        """Host ports for the container's PortBindings (and every exposed port with -P),
        recorded and put in the nft table in one go."""
        host_config = record.config["HostConfig"]
        bindings = dict(host_config.get("PortBindings") or {})
        if host_config.get("PublishAllPorts"):
            for port in record.config["Config"].get("ExposedPorts") or {}:
                bindings.setdefault(port, [{"HostIp": "", "HostPort": ""}])
        endpoints = self._ordered(record.id)
        if not bindings or not endpoints:
            # the row marks a namespace of skiff's, published ports or not
            with self.db.transaction() as cur:
                cur.execute("INSERT OR REPLACE INTO sandboxes (container_id, doc) VALUES "
                            "(?, ?)", (record.id, json.dumps({"Ports": {}, "Rules": []})))
            return
        net, _ = endpoints[0]
        container_ip = self._endpoints(network_id=net["Id"], container_id=record.id)[0]["ip"]
        held = []
        try:
            self._allocate_ports(record, bindings, container_ip, held)
        except BaseException:
            for sock in held:
                sock.close()
            raise
        self._hold(record.id, held)
        self._refresh_rules()

    def _allocate_ports(self, record, bindings: dict, container_ip: str, held: list) -> None:
        with self.db.transaction():
            taken = set()
            for row in self.db.query("SELECT doc FROM sandboxes"):
                for r in json.loads(row["doc"]).get("Rules") or []:
                    taken.add((r["proto"], r["host_port"]))
            ports, rules = {}, []
            for key, binds in sorted(bindings.items()):
                port, proto = port_values.parse_port_key(key)
                for bind in binds or [{}]:
                    host_ip = (bind or {}).get("HostIp") or ""
                    if host_ip:
                        ipam.parse_address(host_ip, "host IP")
                    low, high = port_values.parse_host_ports((bind or {}).get("HostPort") or "")
                    host_port, sock = port_values.free_port(proto, host_ip, low, high, taken)
                    held.append(sock)
                    taken.add((proto, host_port))
                    rules.append({"proto": proto, "host_ip": host_ip, "host_port": host_port,
                                  "container_ip": container_ip, "container_port": port})
                    ports.setdefault(f"{port}/{proto}", []).append(
                        {"HostIp": host_ip or "0.0.0.0", "HostPort": str(host_port)})
            self.db.query("INSERT OR REPLACE INTO sandboxes (container_id, doc) VALUES (?,?)",
                          (record.id, json.dumps({"Ports": ports, "Rules": rules})))

    def _hold(self, cid: str, sockets: list) -> None:
        """Keep the sockets holding a container's host ports (closing any it held before)."""
        with self._bridge_lock:
            old = self._held.pop(cid, [])
            if sockets:
                self._held[cid] = sockets
        for sock in old:
            sock.close()

    def _hold_again(self, cid: str) -> None:
        """After a daemon restart: hold a running container's published ports again."""
        row = self.db.query_one("SELECT doc FROM sandboxes WHERE container_id = ?", (cid,))
        held = []
        for r in (json.loads(row["doc"]).get("Rules") or []) if row else []:
            try:
                held.append(port_values.reserve(r["proto"], r["host_ip"], r["host_port"]))
            except OSError as exc:
                log.warning("holding port %s/%s of %s: %s", r["host_port"], r["proto"],
                            cid[:12], exc)
        self._hold(cid, held)

    def ports(self, record) -> dict:
        """NetworkSettings.Ports: published ports, and exposed ones as null."""
        if not record.state.get("Running"):
            return {}
        out = {p: None for p in record.config["Config"].get("ExposedPorts") or {}}
        for key in (record.config["HostConfig"].get("PortBindings") or {}):
            out.setdefault(key if "/" in key else key + "/tcp", None)
        row = self.db.query_one("SELECT doc FROM sandboxes WHERE container_id = ?",
                                (record.id,))
        if row is not None:
            out.update(json.loads(row["doc"]).get("Ports") or {})
        return out

    # ------------------------------------------------------------------ hosts and DNS
    def write_hosts(self, record) -> None:
        """/etc/hosts with the container's own addresses: rewritten in place (the bind mount
        holds the inode)."""
        from skiff.engine import bundle

        path = os.path.join(self.containers.container_dir(record.id), "hosts")
        config = record.config["Config"]
        hostname = config.get("Hostname") or record.id[:12]
        names = hostname
        if config.get("Domainname"):
            names = f"{hostname}.{config['Domainname']} {hostname}"
        text = bundle.etc_files(hostname, "")["hosts"] + \
            self.extra_hosts(record.config["HostConfig"])
        for ep in self._endpoints(container_id=record.id):
            if ep["ip"]:
                text += f"{ep['ip']}\t{names}\n"
        with open(path, "r+" if os.path.exists(path) else "w") as f:
            f.write(text)
            f.truncate()

    async def _serve_dns(self, cid: str) -> None:
        if self._dns is None:
            from skiff.network.dns import DNSServer

            self._dns = DNSServer(self.resolve, self._upstreams)
        await self._dns.serve(cid, self.netns_path(cid))

    def _upstreams(self, cid: str) -> list[str]:
        from skiff.network.dns import upstream_servers

        try:
            dns = self.containers.records.get(cid).config["HostConfig"].get("Dns") or []
        except (NotFound, AttributeError):
            dns = []
        return [d for d in dns if "." in d] or upstream_servers(_read(self.host_resolv))

    def resolve(self, cid: str, name: str) -> list[str] | None:
        """Addresses of `name` (a container name, network alias or short id) on the
        user-defined networks `cid` is on; None when none has it."""
        found = []
        name = name.lower()
        for ep in self._endpoints(container_id=cid):
            try:
                net = self.find(ep["network_id"])
            except NotFound:
                continue
            if not _is_user_defined(net):
                continue
            suffix = "." + net["Name"].lower()
            wanted = name[:-len(suffix)] if name.endswith(suffix) else name
            for other in self._endpoints(network_id=net["Id"]):
                if not other["ip"] or not self._running(other["container_id"]):
                    continue
                ocid = other["container_id"]
                names = {self._container_name(ocid).lower(), ocid[:12]}
                names.update(a.lower() for a in other.get("aliases") or [])
                if wanted in names or (len(wanted) >= 12 and ocid.startswith(wanted)):
                    if other["ip"] not in found:
                        found.append(other["ip"])
        return found or None

    # ------------------------------------------------------------------ connect/disconnect
    async def connect(self, ref: str, container_ref: str, settings: dict) -> None:
        net = self.find(ref)
        record = self.containers.records.find(container_ref)
        mode = network_mode(record.config["HostConfig"])
        if mode == "host" or net["Driver"] == "host":
            raise Forbidden("container cannot be disconnected from host network or "
                            "connected to host network")
        if mode.startswith("container:"):
            raise Forbidden("container sharing network namespace with another container or "
                            "host cannot be connected to any other network")
        if mode == "none" or net["Driver"] == "null":
            raise Forbidden("container cannot be connected to multiple networks with one of "
                            "the networks in private (none) mode")
        with self.db.transaction():
            ep = self._add_endpoint(record.id, record.name, net, settings or {})
        if record.state.get("Running"):
            ep.update(network_id=net["Id"], container_id=record.id,
                      ip=ep.get("static_ip") or None)
            try:
                await asyncio.to_thread(self._plug, record.id, net, ep,
                                        self.netns_path(record.id), False)
                await asyncio.to_thread(self.write_hosts, record)
                if _is_user_defined(net):
                    await self._serve_dns(record.id)
            except BaseException:
                await asyncio.to_thread(self._unplug, record.id, net)
                raise
        self._emit(net, "connect", container=record.id)

    async def disconnect(self, ref: str, container_ref: str, force: bool = False) -> None:
        net = self.find(ref)
        try:
            record = self.containers.records.find(container_ref)
        except NotFound:
            if not force:
                raise
            with self.db.transaction() as cur:
                cur.execute("DELETE FROM endpoints WHERE network_id = ? AND container_id LIKE ?",
                            (net["Id"], container_ref + "%"))
            return
        if net["Driver"] in ("host", "null"):
            raise Forbidden("container cannot be disconnected from host network or "
                            "connected to host network")
        if not self._endpoints(network_id=net["Id"], container_id=record.id):
            raise Forbidden(f"container {record.id} is not connected to network {net['Name']}")
        await asyncio.to_thread(self._unplug, record.id, net)
        if record.state.get("Running"):
            await asyncio.to_thread(self.write_hosts, record)
        self._emit(net, "disconnect", container=record.id)

    def _unplug(self, cid: str, net: dict) -> None:
        from skiff.network import links

        links.delete_link(links.host_ifname(cid, net["Id"]))
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM endpoints WHERE network_id = ? AND container_id = ?",
                        (net["Id"], cid))
        self._repoint_ports(cid)

    def _repoint_ports(self, cid: str) -> None:
        """Published ports follow the container to the address it still has (its first
        network's) when the network they pointed at is disconnected; with none left they go."""
        row = self.db.query_one("SELECT doc FROM sandboxes WHERE container_id = ?", (cid,))
        doc = json.loads(row["doc"]) if row else {}
        if not doc.get("Rules"):
            return
        ips = [ep["ip"] for ep in self._endpoints(container_id=cid) if ep["ip"]]
        if ips:
            for rule in doc["Rules"]:
                rule["container_ip"] = ips[0]
        else:
            doc = {"Ports": {}, "Rules": []}
            self._hold(cid, [])
        with self.db.transaction() as cur:
            cur.execute("UPDATE sandboxes SET doc = ? WHERE container_id = ?",
                        (json.dumps(doc), cid))
        self._refresh_rules()

    # ------------------------------------------------------------------ inspect
    def settings(self, record) -> dict:
        from skiff.engine.network_inspect import network_settings

        return network_settings(self, record)

    def summary(self, record) -> dict:
        from skiff.engine.network_inspect import summary

        return summary(self, record)

    # ------------------------------------------------------------------ daemon start
    async def restore(self) -> None:
        """At daemon start: bridges and rules as the records say (after a reboot or a
        crash), DNS for running containers again, and no namespace file, veth or rule left of
        a container that no longer runs."""
        await asyncio.to_thread(self._restore_sync)
        for row in self.db.query("SELECT container_id FROM sandboxes"):
            cid = row["container_id"]
            if self._running(cid):
                self._hold_again(cid)
            try:
                if self._running(cid) and any(_is_user_defined(net) for net, _ in
                                              self._ordered(cid)):
                    await self._serve_dns(cid)
            except (OSError, NotFound) as exc:
                log.warning("DNS for %s: %s", cid[:12], exc)

    def _restore_sync(self) -> None:
        from skiff.network import netns

        from skiff.network import links

        made = False
        for doc in self._all():
            if doc["Driver"] != "bridge":
                continue
            if _is_user_defined(doc) or links.exists(self.bridge_name(doc)) or \
                    self._endpoints(network_id=doc["Id"]):
                self._make_bridge(doc)
                made = True
        if self.containers is not None:   # rows of containers removed in a crash
            known = {r.id for r in self.containers.records.list()}
            for row in self.db.query("SELECT DISTINCT container_id FROM endpoints UNION "
                                     "SELECT container_id FROM sandboxes"):
                if row["container_id"] not in known:
                    self._release_sync(row["container_id"])
                    self.forget(row["container_id"])
        running = {r["container_id"]
                   for r in self.db.query("SELECT container_id FROM sandboxes")}
        for cid in running:
            if not self._running(cid):
                self._release_sync(cid)
        for row in self.db.query("SELECT DISTINCT container_id FROM endpoints WHERE ip IS "
                                 "NOT NULL"):
            if not self._running(row["container_id"]):
                self._release_sync(row["container_id"])
        try:
            names = os.listdir(self.netns_dir)
        except FileNotFoundError:
            names = []
        for name in names:
            if not self._running(name):
                netns.remove(os.path.join(self.netns_dir, name))
        if made:
            self._refresh_rules()

    def shutdown(self) -> None:
        """skiffd stops: DNS sockets close (they come back with restore()); with no
        networked container left running and no user-defined network, the default bridge
        and the nft table go too, so a stopped daemon leaves no link or rule behind."""
        if self._dns is not None:
            self._dns.close()
        for cid in list(self._held):
            self._hold(cid, [])
        if self.db.query_one("SELECT 1 FROM sandboxes") is not None:
            return
        nets = [d for d in self._all() if d["Driver"] == "bridge"]
        if any(_is_user_defined(d) for d in nets):
            return
        from skiff.network import links

        # Veths of our own ended containers go with their namespaces, which the kernel frees
        # a moment later; ports that stay belong to another daemon given the same bridge name.
        deadline = time.monotonic() + 2.0
        while any(links.has_ports(self.bridge_name(d)) for d in nets):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        try:
            for doc in nets:
                self._drop_bridge(doc)
            if self.config.nft:
                from skiff.network import nft

                nft.delete(self.config.nft_table)
        except OSError as exc:
            log.warning("removing the default bridge's rules: %s", exc)


def links_sysctl() -> None:
    """Routing between the bridges and the host's interfaces needs forwarding on (as docker
    turns it on)."""
    from skiff.network import links

    links.set_sysctl("net/ipv4/ip_forward", "1")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _network_doc(name: str, nid: str, created: str, driver: str) -> dict:
    return {"Name": name, "Id": nid, "Created": created, "Scope": "local", "Driver": driver,
            "EnableIPv4": True, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": False, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": {}, "Labels": {}}
