"""The OCI runtime: from a bundle (config.json + rootfs) to an isolated process.

Public surface (pinned by tests/unit/test_runtime_plan.py):

    spawn(bundle, container_id, *, stdio=None, console_socket=None, state_root=None,
          wait_start=False) -> int
    start(container_id, state_root)
    cleanup(bundle_or_spec, container_id, *, state_root=None)

and the `skiff-runtime` command (runtime/cli.py) with runc's verbs. Inside: `plan` turns
config.json into steps (pure), `apply` performs them in the container's first process,
`cgroups` and `host` handle cgroup paths and limits, `state` the runc-style state files.

Imports only skiff.oci, skiff.linux and skiff.errors. The caller of spawn must be
single-threaded (it clones).
"""

__all__ = ["spawn", "start", "cleanup"]


def spawn(bundle, container_id, **kwargs) -> int:
    from .launch import spawn as _spawn
    return _spawn(bundle, container_id, **kwargs)


def start(container_id, state_root, **kwargs) -> None:
    from .launch import start as _start
    return _start(container_id, state_root, **kwargs)


def cleanup(bundle_or_spec, container_id, **kwargs) -> None:
    from .launch import cleanup as _cleanup
    return _cleanup(bundle_or_spec, container_id, **kwargs)
