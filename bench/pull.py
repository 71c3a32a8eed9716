#!/usr/bin/env python3
"""Cold pull of a ~150 MB multi-layer image from a loopback registry: skiff beside `docker pull`
and `podman pull` (each with a private daemon/root, as bench/run.py starts them).

    python3 bench/pull.py [--runs 3] [--engines skiff,docker,podman] [--size-mb 150] [--push]

The image (6 layers, part random and part compressible data, so gzip has real work) is built
once under /var/tmp/skiff-bench-pull and copied into a `docker-registry` started here on
127.0.0.1 with skopeo (which gzips the layers as registries usually serve them). Each run
removes the image first, so every pull downloads, verifies, decompresses and unpacks every
layer. With --push, the same archive is loaded into each engine under a second registry's
name and pushed there (the registry emptied before each run), beside `skopeo copy`.
Prints a table and writes the figures as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import Docker, Podman, Skiff, sh, stats, write_results  # noqa: E402

WORK = "/var/tmp/skiff-bench-pull"
LAYER_SHARES = (0.27, 0.2, 0.2, 0.13, 0.13, 0.07)


def build_image(path: str, size_mb: int) -> None:
    """A docker-archive with six layers of files, 60% random bytes and 40% text."""
    rng = random.Random(42)
    layers, diff_ids = [], []
    words = b"the quick brown fox jumps over the lazy dog and keeps on running "
    for i, share in enumerate(LAYER_SHARES):
        buf = io.BytesIO()
        total = int(size_mb * share * 1024 * 1024)
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            d = tarfile.TarInfo(f"layer{i}")
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(d)
            n = 0
            while n < total:
                size = min(rng.randint(64 * 1024, 4 * 1024 * 1024), total - n)
                random_part = int(size * 0.6)
                data = rng.randbytes(random_part) + (words * (size // len(words) + 1))[
                    :size - random_part]
                info = tarfile.TarInfo(f"layer{i}/file{n}")
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
                n += size
        blob = buf.getvalue()
        layers.append(blob)
        diff_ids.append("sha256:" + hashlib.sha256(blob).hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "created": "2026-01-01T00:00:00Z"}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w") as out:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        names = []
        for i, blob in enumerate(layers):
            names.append(f"l{i}/layer.tar")
            add(names[-1], blob)
        add(config_name, config)
        add("manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["big:latest"],
                                          "Layers": names}]).encode())
    os.replace(tmp, path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry on 127.0.0.1:PORT; `restart()` gives it empty storage on the same port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = None
        self.dir = None

    def __enter__(self):
        self.start()
        return self

    def start(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="registry-bench-")
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.dir}/data\nhttp:\n  addr: {self.host}\n")
        self.proc = subprocess.Popen(["docker-registry", "serve", config],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(f"{self.dir}/log", "w"))
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", self.dir])

    def restart(self) -> None:
        self.stop()
        self.start()

    def __exit__(self, *exc):
        self.stop()


def renamed_archive(archive: str, name: str) -> str:
    """The archive with its RepoTags set to `name` (so that every engine loads it under the
    name it pushes)."""
    out_path = archive[:-4] + "-" + name.replace("/", "_").replace(":", "_") + ".tar"
    if os.path.exists(out_path):
        return out_path
    with tarfile.open(archive) as src, tarfile.open(out_path + ".tmp", "w") as dst:
        for info in src:
            data = src.extractfile(info).read() if info.isreg() else None
            if info.name == "manifest.json":
                doc = json.loads(data)
                doc[0]["RepoTags"] = [name]
                data = json.dumps(doc).encode()
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
    os.replace(out_path + ".tmp", out_path)
    return out_path


def push_cmds(engine, ref: str):
    """(load, push) commands of an engine; the archive is loaded under `ref`."""
    if engine.name == "podman":
        return (engine.cli + ["load", "-q", "-i"],
                engine.cli + ["push", "-q", "--tls-verify=false", ref])
    return engine.cli + ["load", "-q", "-i"], engine.cli + ["push", "-q", ref]


def pull_cmds(engine, ref: str):
    """(pull, remove) commands of an engine for a loopback registry reference."""
    if engine.name == "podman":
        return (engine.cli + ["pull", "-q", "--tls-verify=false", ref],
                engine.cli + ["rmi", "-f", ref])
    return engine.cli + ["pull", "-q", ref], engine.cli + ["rmi", "-f", ref]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="skiff,docker,podman")
    parser.add_argument("--size-mb", type=int, default=150)
    parser.add_argument("--push", action="store_true", help="time pushes too")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    os.makedirs(WORK, exist_ok=True)
    archive = os.path.join(WORK, f"big-{args.size_mb}.tar")
    if not os.path.exists(archive):
        print(f"building a {args.size_mb} MB test image ...", flush=True)
        build_image(archive, args.size_mb)
    engines = {"skiff": Skiff, "docker": Docker, "podman": Podman}
    results = {}
    with Registry() as registry:
        ref = f"{registry.host}/bench/big:latest"
        sh(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
            f"docker-archive:{archive}", f"docker://{ref}"])
        manifest = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"http://{registry.host}/v2/bench/big/manifests/latest", headers={
                "Accept": "application/vnd.docker.distribution.manifest.v2+json"})).read())
        compressed = sum(l["size"] for l in manifest["layers"])
        for name in args.engines.split(","):
            cls = engines[name]
            if hasattr(cls, "available") and not cls.available():
                print(f"{name}: not installed, skipped")
                continue
            with cls() as engine:
                env = getattr(engine, "env", None)
                pull, remove = pull_cmds(engine, ref)
                times = []
                for _ in range(args.runs):
                    subprocess.run(remove, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                    start = time.perf_counter()
                    subprocess.run(pull, env=env, check=True, stdout=subprocess.DEVNULL)
                    times.append((time.perf_counter() - start) * 1000)
                s = stats(times)
                s["MB_per_s"] = round(compressed / 1e6 / (s["median_ms"] / 1000), 1)
                results[name] = {"pull": s}
    push_results = {}
    if args.push:
        with Registry() as dest:
            ref = f"{dest.host}/bench/pushed:latest"
            pushed_archive = renamed_archive(archive, ref)
            for name in args.engines.split(",") + ["skopeo"]:
                if name == "skopeo":
                    times = []
                    for _ in range(args.runs):
                        dest.restart()
                        start = time.perf_counter()
                        sh(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                            f"docker-archive:{pushed_archive}", f"docker://{ref}"])
                        times.append((time.perf_counter() - start) * 1000)
                    push_results[name] = stats(times)
                    continue
                cls = engines[name]
                if hasattr(cls, "available") and not cls.available():
                    continue
                with cls() as engine:
                    env = getattr(engine, "env", None)
                    load, push = push_cmds(engine, ref)
                    subprocess.run(load + [pushed_archive], env=env, check=True,
                                   stdout=subprocess.DEVNULL)
                    times = []
                    for _ in range(args.runs):
                        dest.restart()
                        start = time.perf_counter()
                        subprocess.run(push, env=env, check=True, stdout=subprocess.DEVNULL)
                        times.append((time.perf_counter() - start) * 1000)
                    push_results[name] = stats(times)
    print(f"\nimage: {args.size_mb} MB in {len(LAYER_SHARES)} layers, "
          f"{compressed / 1e6:.0f} MB compressed")
    print(f"{'engine':8} {'cold pull':>12}  {'MB/s':>7}   min..max")
    for name, r in results.items():
        s = r["pull"]
        print(f"{name:8} {s['median_ms']:>9} ms  {s['MB_per_s']:>7}   "
              f"{s['min_ms']}..{s['max_ms']} ms")
    if "skiff" in results:
        for peer in ("docker", "podman"):
            if peer in results:
                ratio = results[peer]["pull"]["median_ms"] / results["skiff"]["pull"]["median_ms"]
                print(f"skiff throughput / {peer}: {ratio:.2f}x")
    if push_results:
        print(f"\n{'engine':8} {'push':>12}   min..max   (every engine gzips the layers)")
        for name, st in push_results.items():
            print(f"{name:8} {st['median_ms']:>9} ms   {st['min_ms']}..{st['max_ms']} ms")
    write_results(args.out, "pull", {"size_mb": args.size_mb, "compressed_bytes": compressed,
                                     "results": results, "push": push_results})


if __name__ == "__main__":
    main()
