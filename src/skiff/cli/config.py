"""From `run`/`create` flags to the body of `POST /containers/create`, as the docker CLI builds
it. Pure: values in, values out (the environment and files are passed in), ValueError with
docker's wording for a bad value."""

from __future__ import annotations

import os
import re

# -- single values ---------------------------------------------------------------------------


def validate_env(value: str, lookup=os.environ.get) -> str:
    """`-e KEY=VAL` as is; `-e KEY` takes KEY's value from our environment when it is set
    (and is passed bare otherwise, which the daemon ignores)."""
    key, sep, _ = value.partition("=")
    if not key:
        raise ValueError(f"invalid environment variable: {value}")
    if sep:
        return value
    found = lookup(key)
    return f"{key}={found}" if found is not None else value


def parse_env_file(text: str, lookup=os.environ.get) -> list[str]:
    """Lines of an `--env-file`: `KEY=VAL` kept verbatim, `KEY` filled in from our
    environment (or dropped), blank lines and `#` comments skipped."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        if not line or line.startswith("#"):
            continue
        variable, sep, value = line.partition("=")
        variable = variable.lstrip(" \t")
        if any(c in variable for c in " \t\n\v\f\r"):
            raise ValueError(f"variable '{variable}' contains whitespaces")
        if not variable:
            raise ValueError(f"no variable name on line '{line}'")
        if sep:
            out.append(f"{variable}={value}")
        else:
            found = lookup(variable.strip())
            if found is not None:
                out.append(f"{variable.strip()}={found}")
    return out


def parse_labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise ValueError(f"invalid label format: {value!r}")
        labels[key] = val
    return labels


_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_memory(value: str) -> int:
    """`RAMInBytes`: "512m" -> 536870912, "1.5g", "64MiB", "1024"."""
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"invalid size: '{value}'")
    number = float(match.group(1))
    return int(number * _MULT[(match.group(2) or "").lower()])


RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


def parse_restart(value: str) -> dict:
    """`on-failure:3` -> {"Name": "on-failure", "MaximumRetryCount": 3}."""
    if value == "":
        return {"Name": "no", "MaximumRetryCount": 0}
    name, sep, count = value.partition(":")
    if not name:
        raise ValueError("invalid restart policy format: no policy provided before colon")
    if name not in RESTART_POLICIES:
        raise ValueError(f"invalid restart policy: unknown policy '{name}'; use one of 'no', "
                         "'always', 'on-failure', or 'unless-stopped'")
    retries = 0
    if sep:
        if name != "on-failure":
            raise ValueError(f"invalid restart policy: maximum retry count can only be used "
                             f"with 'on-failure'")
        try:
            retries = int(count)
        except ValueError:
            raise ValueError(f"invalid restart policy format: maximum retry count must be an "
                             f"integer") from None
    return {"Name": name, "MaximumRetryCount": retries}


# -- ports -----------------------------------------------------------------------------------


def _port_range(text: str, what: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        start = int(lo)
        end = int(hi) if sep else start
    except ValueError:
        raise ValueError(f"invalid {what}: {text}") from None
    if not (0 <= start <= 65535 and 0 <= end <= 65535) or end < start:
        raise ValueError(f"invalid {what}: {text}")
    return start, end


def _split_proto(text: str) -> tuple[str, str]:
    port, sep, proto = text.rpartition("/")
    if not sep:
        return text, "tcp"
    proto = proto.lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"invalid proto: {proto}")
    return port, proto


def parse_expose(values: list[str]) -> dict[str, dict]:
    exposed: dict[str, dict] = {}
    for value in values:
        port, proto = _split_proto(value)
        start, end = _port_range(port, "range format for --expose specification")
        for number in range(start, end + 1):
            exposed[f"{number}/{proto}"] = {}
    return exposed


def parse_publish(values: list[str]) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """`-p [ip:][hostPort:]containerPort[/proto]` -> (ExposedPorts, PortBindings)."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict]] = {}
    for value in values:
        spec, proto = _split_proto(value)
        ip = ""
        if spec.startswith("["):
            close = spec.find("]")
            if close < 0:
                raise ValueError(f"invalid IP address: {spec}")
            ip, spec = spec[1:close], spec[close + 1:].lstrip(":")
            parts = spec.split(":")
            host, container = (parts + [""])[:2] if len(parts) == 2 else ("", parts[0])
        else:
            parts = spec.rsplit(":", 2)
            if len(parts) == 1:
                host, container = "", parts[0]
            elif len(parts) == 2:
                host, container = parts
            else:
                ip, host, container = parts
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        if not container:
            raise ValueError(f"no port specified: {value}<empty>")
        cstart, cend = _port_range(container, "containerPort")
        if host:
            hstart, hend = _port_range(host, "hostPort")
            if cend - cstart != hend - hstart and cstart != cend:
                raise ValueError(f"invalid ranges specified for container and host Ports: "
                                 f"{container} and {host}")
        for offset, number in enumerate(range(cstart, cend + 1)):
            key = f"{number}/{proto}"
            exposed[key] = {}
            if not host:
                host_port = ""
            elif cstart == cend and hend != hstart:
                host_port = f"{hstart}-{hend}"
            else:
                host_port = str(hstart + offset)
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host_port})
    return exposed, bindings


# -- volumes and tmpfs -----------------------------------------------------------------------


def parse_volumes(values: list[str]) -> tuple[dict[str, dict], list[str]]:
    """`-v /data` -> anonymous volume (Config.Volumes); `-v src:/dst[:opts]` -> Binds."""
    volumes: dict[str, dict] = {}
    binds: list[str] = []
    for value in values:
        parts = value.split(":")
        if len(parts) == 1:
            if not value.startswith("/"):
                raise ValueError(f"invalid volume specification: '{value}'")
            volumes[value] = {}
        elif len(parts) in (2, 3) and parts[0] and parts[1].startswith("/"):
            from skiff.cli.mountopts import absolute_bind

            binds.append(absolute_bind(value))
        else:
            raise ValueError(f"invalid volume specification: '{value}'")
    return volumes, binds


def parse_tmpfs(values: list[str]) -> dict[str, str]:
    mounts = {}
    for value in values:
        path, _, options = value.partition(":")
        if not path.startswith("/"):
            raise ValueError(f"invalid tmpfs specification: '{value}'")
        mounts[path] = options
    return mounts


def parse_add_host(value: str) -> str:
    host, sep, ip = value.partition(":")
    if not sep:
        host, sep, ip = value.partition("=")
    if not sep or not host or not ip:
        raise ValueError(f"bad format for add-host: {value!r}")
    return f"{host}:{ip}"


# -- resources and security ------------------------------------------------------------------


def parse_cpus(value: str) -> int:
    """`--cpus 1.5` -> NanoCpus 1500000000."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f'invalid argument "{value}" for "--cpus" flag: failed to parse '
                         f'{value} as a rational number') from None
    return int(round(number * 1e9))


def parse_swap(value: str) -> int:
    return -1 if value.strip() == "-1" else parse_memory(value)


def parse_ulimit(value: str) -> dict:
    """`nofile=1024[:2048]` -> {"Name", "Soft", "Hard"} (hard = soft when not given)."""
    name, sep, limits = value.partition("=")
    if not sep or not name:
        raise ValueError(f"invalid ulimit argument: {value}")
    soft, _, hard = limits.partition(":")
    try:
        soft_n = int(soft)
        hard_n = int(hard) if hard else soft_n
    except ValueError:
        raise ValueError(f"invalid ulimit argument: {value}") from None
    return {"Name": name, "Soft": soft_n, "Hard": hard_n}


def _valid_perms(text: str) -> bool:
    return bool(text) and all(c in "rwm" for c in text) and len(set(text)) == len(text)


def parse_device(value: str) -> dict:
    """`/dev/sda[:/dev/xvda][:rwm]` -> {"PathOnHost", "PathInContainer", "CgroupPermissions"}."""
    parts = value.split(":")
    perms = "rwm"
    if len(parts) == 3:
        if not _valid_perms(parts[2]):
            raise ValueError(f"invalid device mode: {parts[2]}")
        src, dst, perms = parts
    elif len(parts) == 2:
        if _valid_perms(parts[1]):
            src, dst, perms = parts[0], parts[0], parts[1]
        else:
            src, dst = parts
    elif len(parts) == 1:
        src = dst = parts[0]
    else:
        raise ValueError(f"invalid device specification: {value}")
    if not dst.startswith("/"):
        raise ValueError(f"invalid device specification: {value}")
    return {"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}


def parse_device_rate(value: str, iops: bool) -> dict:
    """`/dev/sda:1mb` (bytes per second) or `/dev/sda:100` (IO per second)."""
    path, sep, rate = value.rpartition(":")
    if not sep or not path.startswith("/dev/"):
        raise ValueError(f"bad format: {value}")
    try:
        number = int(rate) if iops else parse_memory(rate)
    except ValueError:
        raise ValueError(f"invalid rate for device: {value}. The correct format is "
                         f"<device-path>:<number>{'' if iops else '[<unit>]'}. Number must "
                         "be a positive integer" + ("" if iops else
                                                    ". Unit is optional and can be kb, mb, or gb"))
    return {"Path": path, "Rate": number}


def parse_weight_device(value: str) -> dict:
    path, sep, weight = value.rpartition(":")
    if not sep or not path.startswith("/dev/") or not weight.isdigit():
        raise ValueError(f"bad format: {value}")
    return {"Path": path, "Weight": int(weight)}


def parse_key_values(values: list[str], flag: str, what: str) -> dict[str, str]:
    """`KEY=VALUE` flag values (repeatable) as a dict, with the docker CLI's error."""
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid argument \"{value}\" for \"--{flag}\" flag: "
                             f"{what} must be in the format of key=value")
        out[key] = val
    return out


def parse_sysctls(values: list[str]) -> dict[str, str]:
    return parse_key_values(values, "sysctl", "sysctl")


def parse_log_opts(values: list[str]) -> dict[str, str]:
    return parse_key_values(values, "log-opt", "log options")


def _read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def parse_security_opts(values: list[str], read=_read_text) -> list[str]:
    """As the docker CLI sends them: `seccomp=FILE` becomes `seccomp=<the file's JSON>`."""
    out = []
    for value in values:
        key, sep, arg = value.partition("=")
        if not sep:
            key, sep, arg = value.partition(":")
        if key == "seccomp" and sep and arg != "unconfined":
            try:
                text = read(arg)
            except OSError as e:
                raise ValueError(f"opening seccomp profile ({arg}) failed: "
                                 f"{e.strerror or e}") from None
            import json
            try:
                json.loads(text)
            except ValueError:
                raise ValueError(f"compacting json for seccomp profile ({arg}) failed") \
                    from None
            out.append("seccomp=" + text)
        else:
            out.append(value)
    return out


def resource_host_config(opts, read=_read_text) -> dict:
    """The HostConfig fields of the resource and security flags (only those given)."""
    host: dict = {}
    if getattr(opts, "runtime", None):   # --runtime
        host["Runtime"] = opts.runtime
    if getattr(opts, "userns", None):   # --userns
        host["UsernsMode"] = opts.userns
    if opts.memory_swap:
        host["MemorySwap"] = parse_swap(opts.memory_swap)
    if opts.memory_reservation:
        host["MemoryReservation"] = parse_memory(opts.memory_reservation)
    if opts.memory_swappiness is not None and opts.memory_swappiness != -1:
        host["MemorySwappiness"] = opts.memory_swappiness
    if opts.oom_kill_disable:
        host["OomKillDisable"] = True
    if opts.oom_score_adj:
        host["OomScoreAdj"] = opts.oom_score_adj
    if opts.cpus:
        host["NanoCpus"] = parse_cpus(opts.cpus)
    for flag, key in (("cpu_shares", "CpuShares"), ("cpu_period", "CpuPeriod"),
                      ("cpu_quota", "CpuQuota"), ("blkio_weight", "BlkioWeight"),
                      ("pids_limit", "PidsLimit")):
        value = getattr(opts, flag)
        if value:
            host[key] = value
    if opts.cpuset_cpus:
        host["CpusetCpus"] = opts.cpuset_cpus
    if opts.cpuset_mems:
        host["CpusetMems"] = opts.cpuset_mems
    if opts.blkio_weight_device:
        host["BlkioWeightDevice"] = [parse_weight_device(v) for v in opts.blkio_weight_device]
    for flag, key, iops in (("device_read_bps", "BlkioDeviceReadBps", False),
                            ("device_write_bps", "BlkioDeviceWriteBps", False),
                            ("device_read_iops", "BlkioDeviceReadIOps", True),
                            ("device_write_iops", "BlkioDeviceWriteIOps", True)):
        values = getattr(opts, flag)
        if values:
            host[key] = [parse_device_rate(v, iops) for v in values]
    if opts.shm_size:
        host["ShmSize"] = parse_memory(opts.shm_size)
    if opts.ulimit:
        host["Ulimits"] = [parse_ulimit(v) for v in opts.ulimit]
    if opts.security_opt:
        host["SecurityOpt"] = parse_security_opts(opts.security_opt, read)
    if opts.device:
        host["Devices"] = [parse_device(v) for v in opts.device]
    if opts.device_cgroup_rule:
        host["DeviceCgroupRules"] = list(opts.device_cgroup_rule)
    if opts.group_add:
        host["GroupAdd"] = list(opts.group_add)
    if opts.sysctl:
        host["Sysctls"] = parse_sysctls(opts.sysctl)
    for flag, key in (("ipc", "IpcMode"), ("pid", "PidMode"), ("uts", "UTSMode")):
        if getattr(opts, flag):
            host[key] = getattr(opts, flag)
    if opts.log_driver or opts.log_opt:
        host["LogConfig"] = {"Type": opts.log_driver or "",
                             "Config": parse_log_opts(opts.log_opt or [])}
    return host


# -- the create body -------------------------------------------------------------------------


def _duration_ns(flag: str, text: str | None) -> int:
    """A Go duration flag ("30s", "1m30s") in nanoseconds; 0 when not given."""
    if not text:
        return 0
    from skiff.cli.commands.containers import parse_go_duration

    seconds = parse_go_duration(text)
    if seconds is None:
        raise ValueError(f'invalid argument "{text}" for "--{flag}" flag: time: invalid '
                         f'duration "{text}"')
    if seconds < 0:
        raise ValueError(f"--{flag} cannot be negative")
    return int(seconds * 1_000_000_000)


def parse_healthcheck(opts) -> dict | None:
    """--health-* and --no-healthcheck as docker's Healthcheck object."""
    if opts.no_healthcheck:
        if opts.health_cmd:
            raise ValueError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    check = {}
    if opts.health_cmd:
        check["Test"] = ["CMD-SHELL", opts.health_cmd]
    for flag, key in (("health-interval", "Interval"), ("health-timeout", "Timeout"),
                      ("health-start-period", "StartPeriod")):
        value = _duration_ns(flag, getattr(opts, flag.replace("-", "_")))
        if value:
            check[key] = value
    if opts.health_retries:
        if opts.health_retries < 0:
            raise ValueError("--health-retries cannot be negative")
        check["Retries"] = opts.health_retries
    return check or None


def build_create(opts, image: str, command: list[str], *, detach: bool = False,
                 env_files: list[str] | None = None, lookup=os.environ.get) -> tuple[dict, dict]:
    """(JSON body, query params) of `POST /containers/create` for `run`/`create` options.

    `opts` is the parsed flags (`skiff.cli.flags.Options`); `env_files` the texts of the
    `--env-file`s, already read.
    """
    env: list[str] = []
    for text in env_files or []:
        env.extend(parse_env_file(text, lookup))
    env.extend(opts.env)

    exposed = parse_expose(opts.expose)
    published, bindings = parse_publish(opts.publish)
    exposed.update(published)
    volumes, binds = parse_volumes(opts.volume)
    restart = parse_restart(opts.restart)
    if opts.rm and restart["Name"] != "no":
        raise ValueError("conflicting options: cannot specify both --restart and --rm")

    if opts.entrypoint:
        entrypoint = [opts.entrypoint]
    elif opts.given("entrypoint"):
        entrypoint = [""]
    else:
        entrypoint = None

    interactive = bool(opts.interactive)
    attach_stdin = interactive and not detach
    config: dict = {
        "Hostname": opts.hostname or "",
        "Domainname": "",
        "User": opts.user or "",
        "AttachStdin": attach_stdin,
        "AttachStdout": not detach,
        "AttachStderr": not detach,
        "Tty": bool(opts.tty),
        "OpenStdin": interactive,
        "StdinOnce": attach_stdin,
        "Env": env,
        "Cmd": list(command) if command else None,
        "Image": image,
        "Volumes": volumes or None,
        "WorkingDir": opts.workdir or "",
        "Entrypoint": entrypoint,
        "Labels": parse_labels(opts.label),
    }
    if exposed:
        config["ExposedPorts"] = exposed
    if opts.stop_signal:
        config["StopSignal"] = opts.stop_signal
    if opts.stop_timeout is not None:
        config["StopTimeout"] = opts.stop_timeout
    healthcheck = parse_healthcheck(opts)
    if healthcheck:
        config["Healthcheck"] = healthcheck

    host: dict = {
        "Binds": binds or None,
        "PortBindings": bindings or {},
        "RestartPolicy": restart,
        "AutoRemove": bool(opts.rm),
        "CapAdd": opts.cap_add or None,
        "CapDrop": opts.cap_drop or None,
        "Privileged": bool(opts.privileged),
        "PublishAllPorts": bool(opts.publish_all),
        "ReadonlyRootfs": bool(opts.read_only),
    }
    if opts.network:
        host["NetworkMode"] = opts.network
    if opts.given("init"):
        host["Init"] = bool(opts.init)
    if opts.memory:
        host["Memory"] = parse_memory(opts.memory)
    if opts.tmpfs:
        host["Tmpfs"] = parse_tmpfs(opts.tmpfs)
    if opts.add_host:
        host["ExtraHosts"] = [parse_add_host(v) for v in opts.add_host]
    host.update(resource_host_config(opts))
    if opts.mount or opts.volumes_from:   # --mount, --volumes-from
        from skiff.cli.mountopts import mount_host_config

        host.update(mount_host_config(opts.mount, opts.volumes_from))
    config["HostConfig"] = host
    config["NetworkingConfig"] = {"EndpointsConfig": {}}

    from skiff.cli.netopts import apply_network_options   # --ip, --dns, ... (networking)

    apply_network_options(opts, config, host)
    params = {}
    if opts.name:
        params["name"] = opts.name
    if opts.platform:
        params["platform"] = opts.platform
    return config, params


def start_error_status(message: str) -> int:
    """docker's exit status for a failed start: 127 when the command is not found, 126 when it
    cannot be invoked, 125 otherwise."""
    if ("executable file not found" in message or "no such file or directory" in message
            or "system cannot find the file specified" in message):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125
