"""User namespaces: the daemon's `userns-remap` and a container's `--userns`.

    remap = UsernsRemap.from_setting("default")    # or "user", "user:group", "uid:gid"
    remap.apply(spec, host_config, runtime_name)   # at create: user ns + id maps in config.json

With a remap, each container's root is the first id of the user's subordinate ranges
(/etc/subuid, /etc/subgid), an unprivileged id on the host: `--userns=host` opts a container
out, as with docker. "default" means the user `dockremap`, created with a 65536-id range
after the highest range in use if it does not exist, as dockerd creates it.

Image files: the runtime's bundle mounts the image's layers through idmapped mounts (kernel
>= 5.19 for overlayfs layers), so the same unpacked layers serve every container, remapped or
not; docker chowns a copy of every layer per remapped root instead (<root>/<uid>.<gid>/). The
container's own upper dir and its /etc/hosts, hostname and resolv.conf belong to its root.

Every runtime sets the namespace up from config.json (skiff-runtime, runc, crun); the
image's layers are mounted by skiff-monitor before the runtime runs (monitor/oci_runtime.py).
"""

from __future__ import annotations

import os
import pwd
import grp
import subprocess

from skiff.errors import InvalidArgument

DEFAULT_USER = "dockremap"
RANGE_SIZE = 65536
FIRST_ID = 100000


class RemapError(ValueError):
    pass


def parse_ranges(text: str, name: str, number: int) -> list[tuple[int, int]]:
    """The (start, count) ranges of /etc/subuid or /etc/subgid text for `name` or `number`."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or line.lstrip().startswith("#"):
            continue
        who, start, count = parts
        if who in (name, str(number)) and start.isdigit() and count.isdigit():
            out.append((int(start), int(count)))
    return out


def next_free_start(text_uid: str, text_gid: str, size: int = RANGE_SIZE) -> int:
    """Where a new range begins: after every range already given out (docker's rule)."""
    end = FIRST_ID
    for text in (text_uid, text_gid):
        for line in text.splitlines():
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                end = max(end, int(parts[1]) + int(parts[2]))
    return end


def id_mappings(ranges: list[tuple[int, int]]) -> list[dict]:
    """Ranges laid end to end from container id 0 (OCI linux.uidMappings)."""
    out, inside = [], 0
    for start, count in ranges:
        out.append({"containerID": inside, "hostID": start, "size": count})
        inside += count
    return out


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


class UsernsRemap:
    def __init__(self, user: str, uid_maps: list[dict], gid_maps: list[dict]):
        self.user = user
        self.uid_maps = uid_maps
        self.gid_maps = gid_maps

    @property
    def root(self) -> tuple[int, int]:
        """The host uid and gid of the containers' root."""
        return self.uid_maps[0]["hostID"], self.gid_maps[0]["hostID"]

    @classmethod
    def from_setting(cls, value: str, subuid: str = "/etc/subuid",
                     subgid: str = "/etc/subgid") -> "UsernsRemap | None":
        if not value:
            return None
        user_text, _, group_text = value.partition(":")
        if user_text == "default":
            if group_text:
                raise RemapError("userns-remap: \"default\" takes no group")
            ensure_default_user(subuid, subgid)
            user_text = DEFAULT_USER
        try:
            entry = pwd.getpwuid(int(user_text)) if user_text.isdigit() else \
                pwd.getpwnam(user_text)
        except KeyError:
            raise RemapError(f"userns-remap: no such user: {user_text}") from None
        if group_text:
            try:
                group = grp.getgrgid(int(group_text)) if group_text.isdigit() else \
                    grp.getgrnam(group_text)
            except KeyError:
                raise RemapError(f"userns-remap: no such group: {group_text}") from None
            group_name, gid = group.gr_name, group.gr_gid
        else:
            group_name, gid = entry.pw_name, entry.pw_gid
        uid_ranges = parse_ranges(_read(subuid), entry.pw_name, entry.pw_uid)
        gid_ranges = parse_ranges(_read(subgid), group_name, gid)
        if not uid_ranges:
            raise RemapError(f"userns-remap: no subuid ranges found for user "
                             f"\"{entry.pw_name}\" in {subuid}")
        if not gid_ranges:
            raise RemapError(f"userns-remap: no subgid ranges found for group "
                             f"\"{group_name}\" in {subgid}")
        return cls(entry.pw_name, id_mappings(uid_ranges), id_mappings(gid_ranges))

    def apply(self, spec: dict, host_config: dict, runtime_name: str) -> None:
        """A user namespace with the daemon's maps in config.json, unless --userns=host."""
        mode = host_config.get("UsernsMode") or ""
        if mode == "host":
            return
        if host_config.get("Privileged"):
            raise InvalidArgument("privileged mode is incompatible with user namespaces.  You "
                                  "must run the container in the host namespace when running "
                                  "privileged mode")
        for key, what in (("NetworkMode", "network"), ("PidMode", "PID"), ("IpcMode", "IPC"),
                          ("UTSMode", "UTS")):
            if host_config.get(key) == "host":
                raise InvalidArgument(f"Cannot share the host's {what} namespace when user "
                                      f"namespaces are enabled")
        linux = spec.setdefault("linux", {})
        namespaces = [n for n in linux.get("namespaces") or [] if n.get("type") != "user"]
        linux["namespaces"] = namespaces + [{"type": "user"}]
        linux["uidMappings"] = [dict(m) for m in self.uid_maps]
        linux["gidMappings"] = [dict(m) for m in self.gid_maps]
        # in a user namespace sysfs and cgroupfs are mounted by the runtime as it can;
        # /proc/sys stays read-only through the runtime's readonlyPaths as before

    def grant_traversal(self, containers_dir: str) -> None:
        """The containers' root walks to its bundle (rootfs, /etc files) from inside its user
        namespace: the containers directory is group-searchable by that root's group."""
        self.check_path(containers_dir)
        _uid, gid = self.root
        st = os.stat(containers_dir)
        if st.st_gid != gid:
            os.chown(containers_dir, -1, gid)
        os.chmod(containers_dir, 0o710)

    def check_path(self, containers_dir: str) -> None:
        """Every existing directory above `containers_dir` must let the remapped root
        through (docker's check, with docker's words)."""
        uid, gid = self.root
        path = os.path.dirname(os.path.abspath(containers_dir))
        while path != "/":
            try:
                st = os.stat(path)
            except FileNotFoundError:
                path = os.path.dirname(path)
                continue
            if not (st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100)
                    or (st.st_gid == gid and st.st_mode & 0o010)):
                raise RemapError(f"a subdirectory in your graphroot path ({path}) restricts "
                                 "access to the remapped root uid/gid; please fix by allowing "
                                 "'o+x' permissions on existing directories")
            path = os.path.dirname(path)


def check_mode(host_config: dict) -> None:
    mode = host_config.get("UsernsMode") or ""
    if mode not in ("", "host", "private"):
        raise InvalidArgument(f"invalid USER mode: {mode}")


def ensure_default_user(subuid: str = "/etc/subuid", subgid: str = "/etc/subgid") -> None:
    """Create `dockremap` (a system user with no login) and give it 65536 subordinate uids and
    gids after the highest range in use, as dockerd does, unless it exists with ranges."""
    try:
        entry = pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        _run(["useradd", "--system", "--no-create-home", "--user-group", "--shell",
              "/bin/false", DEFAULT_USER])
        entry = pwd.getpwnam(DEFAULT_USER)
    have_uids = parse_ranges(_read(subuid), entry.pw_name, entry.pw_uid)
    have_gids = parse_ranges(_read(subgid), entry.pw_name, entry.pw_gid)
    if have_uids and have_gids:
        return
    start = next_free_start(_read(subuid), _read(subgid))
    for path, have in ((subuid, have_uids), (subgid, have_gids)):
        if not have:
            with open(path, "a") as f:
                f.write(f"{DEFAULT_USER}:{start}:{RANGE_SIZE}\n")


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    except FileNotFoundError:
        raise RemapError(f"userns-remap: cannot create user {DEFAULT_USER}: {argv[0]} is "
                         "missing") from None
    except subprocess.CalledProcessError as exc:
        raise RemapError(f"userns-remap: cannot create user {DEFAULT_USER}: "
                         f"{exc.stderr.decode(errors='replace').strip()}") from None
