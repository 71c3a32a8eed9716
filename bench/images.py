#!/usr/bin/env python3
"""Image operations timed end to end through each engine's CLI: skiff beside docker and podman
(private daemons/roots, started as bench/run.py starts them).

    python3 bench/images.py [--runs 3] [--engines skiff,docker,podman] [--size-mb 200]

  - load:   `load -i` of a ~200 MB docker-archive with six uncompressed layers (throughput in
            MB/s of the archive, wall time), the image removed before each run;
  - save:   `save -o` of that image;
  - commit: `commit` of a stopped busybox container that wrote 100 MB in 1,000 files;
  - first run: `run --rm IMAGE true` of each committed image right after its commit (skiff
            makes a commit's snapshot there, from the layer blob, where docker and podman
            made theirs during the commit: commit + first run is the fair sum).

The image is built once under /var/tmp/skiff-bench-images (bench/pull.py's generator: 60%
random bytes, 40% text). Prints a table and writes the figures as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pull import build_image  # noqa: E402
from run import (IMAGES, ROOT, Docker, Podman, Skiff,  # noqa: E402
                 installed, sh, stats, write_results)

WORK = "/var/tmp/skiff-bench-images"
WRITER = ("mkdir /data && i=0; while [ $i -lt 1000 ]; do "
          "head -c 104857 /dev/urandom > /data/f$i; i=$((i+1)); done")


def timed(cmd: list[str], env=None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - start


def quiet(cmd: list[str], env=None) -> None:
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_engine(engine, archive: str, runs: int, work: str) -> dict:
    env = getattr(engine, "env", None)
    cli = engine.cli
    size_mb = os.path.getsize(archive) / 1e6
    loads, saves, commits, first_runs = [], [], [], []
    for i in range(runs):
        quiet(cli + ["rmi", "-f", "big:latest"], env)
        loads.append(timed(cli + ["load", "-q", "-i", archive], env))
    out = os.path.join(work, f"saved-{engine.name}.tar")
    for i in range(runs):
        if os.path.exists(out):
            os.unlink(out)
        saves.append(timed(cli + ["save", "-o", out, "big:latest"], env))
    saved_mb = os.path.getsize(out) / 1e6
    os.unlink(out)
    net = ["--network", "none"] if engine.name != "skiff" else []
    name = "bench-writer"
    quiet(cli + ["rm", "-f", name], env)
    sh(cli + ["run", "--name", name] + net + ["busybox", "sh", "-c", WRITER], env=env)
    for i in range(runs):
        commits.append(timed(cli + ["commit", name, f"committed:{i}"], env))
        first_runs.append(timed(cli + ["run", "--rm", "--network", "none", f"committed:{i}",
                                       "true"], env))
        quiet(cli + ["rmi", f"committed:{i}"], env)
    quiet(cli + ["rm", "-f", name], env)
    quiet(cli + ["rmi", "-f", "big:latest"], env)

    def figures(times, mb=None):
        s = stats([t * 1000 for t in times])
        if mb:
            s["mb_per_s"] = round(mb / (s["median_ms"] / 1000), 1)
        return s

    return {"load": figures(loads, size_mb), "save": figures(saves, saved_mb),
            "commit_100mb_1000_files": figures(commits, 104.857),
            "first_run_after_commit": figures(first_runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="skiff,docker,podman")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_test_images.py"),
                    "--out", IMAGES], check=True, stdout=subprocess.DEVNULL)
    os.makedirs(WORK, exist_ok=True)
    archive = os.path.join(WORK, f"big-{args.size_mb}.tar")
    if not os.path.exists(archive):
        build_image(archive, args.size_mb)
    engines = {"skiff": Skiff, "docker": Docker, "podman": Podman}
    results = {}
    for name, cls in installed(args.engines, engines):
        with cls() as engine:
            results[name] = bench_engine(engine, archive, args.runs, WORK)
    print(f"\n{'engine':8} {'load':>20} {'save':>20} {'commit 100MB/1000':>20}"
          f" {'first run':>12}")
    for name, r in results.items():
        print(f"{name:8} {r['load']['median_ms']:>9} ms {r['load']['mb_per_s']:>5} MB/s"
              f" {r['save']['median_ms']:>9} ms {r['save']['mb_per_s']:>5} MB/s"
              f" {r['commit_100mb_1000_files']['median_ms']:>17} ms"
              f" {r['first_run_after_commit']['median_ms']:>9} ms")
    if "skiff" in results:
        for peer in ("docker", "podman"):
            if peer in results:
                ratios = {k: round(results["skiff"][k]["median_ms"] /
                                   results[peer][k]["median_ms"], 2) for k in results[peer]}

                def both(r):
                    return (r["commit_100mb_1000_files"]["median_ms"] +
                            r["first_run_after_commit"]["median_ms"])

                ratios["commit+first_run"] = round(both(results["skiff"]) /
                                                   both(results[peer]), 2)
                print(f"skiff / {peer} (time): {ratios}")
    write_results(args.out, "images", {"size_mb": args.size_mb, "runs": args.runs,
                                       "results": results})


if __name__ == "__main__":
    main()
