#!/usr/bin/env python3
"""Start throughput: 50 detached containers created and started (`run -d busybox sleep`),
one after another and from 8 clients at once, in containers per second, beside docker and
podman when installed.

    python3 bench/start.py [--count 50] [--clients 8] [--engines skiff,skiff-runc,docker,podman]

`skiff-runc` is skiff with `--runtime runc` (skiff-monitor driving runc instead of
skiff-runtime). Each engine gets its private daemon/root (bench/run.py's) and the same
busybox archive; every container is removed between rounds (not timed). Prints the rates and
writes them as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (HERE, IMAGES, ROOT, Docker, Podman,  # noqa: E402
                 Skiff, installed, sh, write_results)


class SkiffRunc(Skiff):
    name = "skiff-runc"
    run_flags = ["--runtime", "runc"]


def run_flags(engine) -> list[str]:
    # no network for any of them: the figure is about containers, not bridges
    return ["--network", "none", *getattr(engine, "run_flags", [])]


def start_one(engine) -> str:
    out = sh(engine.cli + ["run", "-d", *run_flags(engine), "busybox", "sleep", "100000"],
             env=getattr(engine, "env", None))
    return out.stdout.strip().splitlines()[-1]


def remove_all(engine, ids) -> None:
    for i in range(0, len(ids), 25):
        subprocess.run(engine.cli + ["rm", "-f", *ids[i:i + 25]], env=getattr(engine, "env",
                                                                              None),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sequential(engine, count: int) -> tuple[float, list[str]]:
    start = time.perf_counter()
    ids = [start_one(engine) for _ in range(count)]
    return time.perf_counter() - start, ids


def parallel(engine, count: int, clients: int) -> tuple[float, list[str]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        ids = list(pool.map(lambda _: start_one(engine), range(count)))
    return time.perf_counter() - start, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--engines", default="skiff,skiff-runc,docker,podman")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_test_images.py"),
                    "--out", IMAGES], check=True, stdout=subprocess.DEVNULL)
    engines = {"skiff": Skiff, "skiff-runc": SkiffRunc, "docker": Docker, "podman": Podman}
    results = {}
    for name, cls in installed(args.engines, engines):
        with cls() as engine:
            start_one_and_remove = start_one(engine)   # warm caches (image, daemon paths)
            remove_all(engine, [start_one_and_remove])
            seq, ids = sequential(engine, args.count)
            remove_all(engine, ids)
            par, ids = parallel(engine, args.count, args.clients)
            remove_all(engine, ids)
        results[name] = {"sequential_s": round(seq, 2),
                         "sequential_per_s": round(args.count / seq, 1),
                         "parallel_s": round(par, 2),
                         "parallel_per_s": round(args.count / par, 1),
                         "count": args.count, "clients": args.clients}
        print(f"{name}: sequential {args.count / seq:.1f}/s ({seq:.1f} s), "
              f"{args.clients} clients {args.count / par:.1f}/s ({par:.1f} s)", flush=True)
    print(f"\n{'engine':11} {'sequential':>14} {f'{args.clients} clients':>14}")
    for name, r in results.items():
        print(f"{name:11} {r['sequential_per_s']:>12}/s {r['parallel_per_s']:>12}/s")
    write_results(args.out, "start", {"results": results, "load": os.getloadavg()})


if __name__ == "__main__":
    main()
