"""engine/: skiff as a library. Everything a command does is a method here, usable from Python
without the daemon (`Engine(EngineConfig(root=..., exec_root=...))`).

Owns: container names and lifecycle states, the wiring of the image store, snapshots and the
monitor. Imports the lower layers (store, snapshot, runtime, monitor, ...), never api/ or cli/.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class EngineConfig:
    root: str = "/var/lib/skiff"
    exec_root: str = "/run/skiff"
    # Container cgroups go in <this>/<id>, beneath skiffd's own cgroup in every hierarchy.
    cgroup_parent: str = "skiff"
    log_driver: str = "json-file"          # containers' default, as daemon.json's log-driver
    log_opts: dict = field(default_factory=dict)
    network: object = None   # skiff.engine.networks.NetworkConfig; None: its defaults
    # OCI runtimes beyond the built-in ones (daemon.json's "runtimes"), and the default
    runtimes: dict = field(default_factory=dict)
    default_runtime: str = "skiff"
    userns_remap: str = ""   # daemon.json's userns-remap: "default", USER[:GROUP], UID[:GID]


class Engine:
    def __init__(self, config: EngineConfig):
        from skiff.engine.containers import ContainerService
        from skiff.engine.events import EventBus
        from skiff.engine.images import ImageService
        from skiff.engine.recordcache import CachedRecords
        from skiff.monitor.client import MonitorClient
        from skiff.snapshot import Snapshotter
        from skiff.store import ContainerRecords, ContentStore, MetadataDB

        self.config = config
        os.makedirs(config.root, mode=0o711, exist_ok=True)
        os.makedirs(config.exec_root, mode=0o711, exist_ok=True)
        self.db = MetadataDB(os.path.join(config.root, "skiff.db"))
        self.content = ContentStore(config.root)
        self.snapshots = Snapshotter(config.root)
        self.images = ImageService(self.content, self.db, self.snapshots)
        self.monitor = MonitorClient(config.exec_root)
        self.events = EventBus()
        self.containers = ContainerService(
            root=config.root, records=CachedRecords(ContainerRecords(self.db)),
            images=self.images,
            snapshots=self.snapshots, monitor=self.monitor, events=self.events,
            cgroup_parent=config.cgroup_parent, log_driver=config.log_driver,
            log_opts=config.log_opts)
        from skiff.engine.execs import ExecService
        from skiff.engine.process import ProcessService

        self.execs = ExecService(self.containers, self.monitor, self.events)
        from skiff.engine.health import HealthService

        self.health = HealthService(self.containers, self.execs, self.events)
        self.containers.started_hooks.append(self.health.started)
        self.containers.exited_hooks.append(self.health.stopped)
        self.process = ProcessService(self.containers)
        self._wire_volumes()
        from skiff.engine.update import UpdateService

        self.update = UpdateService(self.containers)
        from skiff.engine.networks import NetworkService   # (networking)

        self.networks = NetworkService(self.db, config.exec_root, self.events, config.network)
        self.networks.containers = self.containers
        self.containers.networks = self.networks
        from skiff.engine.runtimes import RuntimeTable   # (--runtime)

        self.runtimes = RuntimeTable(config.runtimes, config.default_runtime,
                                     config.exec_root)
        self.containers.runtimes = self.runtimes
        from skiff.engine.userns import UsernsRemap   # (userns-remap)

        self.userns = UsernsRemap.from_setting(config.userns_remap)
        self.containers.userns = self.userns
        if self.userns is not None:
            self.userns.grant_traversal(self.containers.dir)

    def _wire_volumes(self) -> None:
        """Volumes (<root>/volumes) and the containers' hooks that use them."""
        from skiff.engine.volume_use import VolumeUse
        from skiff.engine.volumes import VolumeService

        self.volumes = VolumeService(self.config.root, self.db, self.events)
        self.volume_use = VolumeUse(self.volumes, self.events, self.containers.records)
        self.volumes.users = self.volume_use.users
        self.volumes.owner = lambda: self.userns.root if getattr(self, "userns", None) else None
        self.containers.volume_use = self.volume_use
        self.containers.exited_hooks.append(self.volume_use.stopped)

    def close(self) -> None:
        self.db.close()
