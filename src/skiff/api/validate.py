"""Type checks for request bodies: a wrongly typed field is a 400 with a message, never a
crash; unknown fields pass (newer clients send fields we do not know yet, as dockerd allows).

Types are written as in the Engine API's reference: "string", "bool", "int", "[string]",
"{string}" (an object of strings), "object", "[object]", and "string|[string]" where the
API takes either (docker-py sends Cmd as a string sometimes).
"""

from __future__ import annotations

from skiff.errors import InvalidArgument

CONTAINER_CONFIG = {
    "Hostname": "string", "Domainname": "string", "User": "string",
    "AttachStdin": "bool", "AttachStdout": "bool", "AttachStderr": "bool",
    "ExposedPorts": "object|null", "Tty": "bool", "OpenStdin": "bool", "StdinOnce": "bool",
    "Env": "[string]|null", "Cmd": "string|[string]|null", "Healthcheck": "object|null",
    "ArgsEscaped": "bool", "Image": "string", "Volumes": "object|null",
    "WorkingDir": "string", "Entrypoint": "string|[string]|null",
    "NetworkDisabled": "bool", "MacAddress": "string", "OnBuild": "[string]|null",
    "Labels": "{string}|null", "StopSignal": "string", "StopTimeout": "int|null",
    "Shell": "[string]|null", "HostConfig": "object|null", "NetworkingConfig": "object|null",
}

HOST_CONFIG = {
    "Binds": "[string]|null", "ContainerIDFile": "string", "LogConfig": "object|null",
    "NetworkMode": "string", "PortBindings": "object|null", "RestartPolicy": "object|null",
    "AutoRemove": "bool", "VolumeDriver": "string", "VolumesFrom": "[string]|null",
    "CapAdd": "[string]|null", "CapDrop": "[string]|null", "Dns": "[string]|null",
    "DnsOptions": "[string]|null", "DnsSearch": "[string]|null",
    "ExtraHosts": "[string]|null", "GroupAdd": "[string]|null", "IpcMode": "string",
    "Cgroup": "string", "Links": "[string]|null", "OomScoreAdj": "int", "PidMode": "string",
    "Privileged": "bool", "PublishAllPorts": "bool", "ReadonlyRootfs": "bool",
    "SecurityOpt": "[string]|null", "StorageOpt": "{string}|null", "Tmpfs": "{string}|null",
    "UTSMode": "string", "UsernsMode": "string", "ShmSize": "int", "Sysctls": "{string}|null",
    "Runtime": "string", "Isolation": "string", "CpuShares": "int", "Memory": "int",
    "NanoCpus": "int", "CgroupParent": "string", "BlkioWeight": "int",
    "CpuPeriod": "int", "CpuQuota": "int", "CpuRealtimePeriod": "int",
    "CpuRealtimeRuntime": "int", "CpusetCpus": "string", "CpusetMems": "string",
    "Devices": "[object]|null", "DeviceCgroupRules": "[string]|null",
    "KernelMemory": "int", "MemoryReservation": "int", "MemorySwap": "int",
    "MemorySwappiness": "int|null", "OomKillDisable": "bool|null", "PidsLimit": "int|null",
    "Ulimits": "[object]|null", "Init": "bool|null", "Mounts": "[object]|null",
    "MaskedPaths": "[string]|null", "ReadonlyPaths": "[string]|null",
    "ConsoleSize": "[int]|null",
}

GO_TYPES = {"string": "string", "bool": "bool", "int": "int64", "[string]": "[]string",
            "{string}": "map[string]string", "object": "object", "[object]": "[]object",
            "[int]": "[]uint"}


def _fits(value, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "[string]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "[int]":
        return isinstance(value, list) and all(isinstance(v, int) for v in value)
    if kind == "[object]":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if kind == "{string}":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    raise ValueError(kind)


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def check(body: dict, schema: dict[str, str], where: str) -> None:
    for field, spec in schema.items():
        if field not in body:
            continue
        value = body[field]
        kinds = spec.split("|")
        if any(_fits(value, kind) for kind in kinds):
            continue
        wanted = next(k for k in kinds if k != "null")
        raise InvalidArgument(f"json: cannot unmarshal {_json_kind(value)} into Go struct "
                              f"field {where}.{field} of type {GO_TYPES.get(wanted, wanted)}")


def container_create(body) -> dict:
    if not isinstance(body, dict):
        raise InvalidArgument("config cannot be empty in order to create a container")
    check(body, CONTAINER_CONFIG, "ContainerConfigWrapper")
    host = body.get("HostConfig")
    if host is not None:
        _host_config(host, "ContainerConfigWrapper.HostConfig")
        logging = host.get("LogConfig")
        if logging is not None:
            check(logging, {"Type": "string", "Config": "{string}|null"},
                  "ContainerConfigWrapper.HostConfig.LogConfig")
    return body


def _host_config(host: dict, where: str) -> None:
    check(host, HOST_CONFIG, where)
    policy = host.get("RestartPolicy")
    if policy is not None:
        check(policy, {"Name": "string", "MaximumRetryCount": "int"}, where + ".RestartPolicy")


def container_update(body) -> dict:
    """docker's UpdateConfig: the resource fields of a HostConfig and a RestartPolicy."""
    if not isinstance(body, dict):
        raise InvalidArgument("invalid update request: not a JSON object")
    _host_config(body, "UpdateConfig")
    return body


EXEC_CONFIG = {
    "AttachStdin": "bool", "AttachStdout": "bool", "AttachStderr": "bool",
    "DetachKeys": "string", "Tty": "bool", "Env": "[string]|null", "Cmd": "[string]|null",
    "Privileged": "bool", "User": "string", "WorkingDir": "string",
    "ConsoleSize": "[int]|null",
}
EXEC_START = {"Detach": "bool", "Tty": "bool", "ConsoleSize": "[int]|null"}


def exec_create(body: dict) -> dict:
    check(body, EXEC_CONFIG, "ExecConfig")
    return body


def exec_start(body: dict) -> dict:
    check(body, EXEC_START, "ExecStartCheck")
    return body


# /networks/create, /networks/{id}/connect and /disconnect bodies (docker's types)
NETWORK_CREATE = {
    "Name": "string", "CheckDuplicate": "bool", "Driver": "string", "Scope": "string",
    "Internal": "bool", "Attachable": "bool", "Ingress": "bool", "ConfigOnly": "bool",
    "ConfigFrom": "object|null", "IPAM": "object|null", "EnableIPv4": "bool|null",
    "EnableIPv6": "bool|null", "Options": "{string}|null", "Labels": "{string}|null",
}
NETWORK_CONNECT = {"Container": "string", "EndpointConfig": "object|null"}
NETWORK_DISCONNECT = {"Container": "string", "Force": "bool"}
