#!/usr/bin/env python3
"""`build` timed end to end through each engine's CLI: skiff beside docker (BuildKit with
Debian's docker CLI, and the classic builder) and podman (buildah), private daemons/roots as
bench/run.py starts them.

    python3 bench/build.py [--runs 3] [--engines skiff,docker,docker-classic,podman]

The reference project (generated once under /var/tmp/skiff-bench-build): about 50 MB in
2,000 files (60% random bytes, 40% text), and a Dockerfile of 10 instructions (FROM, ARG,
ENV, WORKDIR, RUN, COPY of the big tree, RUN over it, COPY of a small late directory, RUN over
that, CMD). Three figures per engine, each the median of --runs builds:
  - cold:      `build --no-cache` (every step done, the context sent);
  - no change: a rebuild with nothing changed (every step from the cache);
  - late file: a rebuild after one file of the late COPY changed (the steps from that COPY on
               re-run, the ones before it from the cache).
The peers build with `--network none` (the RUN steps need none); skiff with its default.
All engines run side by side and the rounds alternate between them, so that the drifting load
of a shared machine falls on each alike. Prints a table and writes the figures as JSON under
bench/results/.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import IMAGES, ROOT, Docker, Podman, Skiff, stats, write_results  # noqa: E402

WORK = "/var/tmp/skiff-bench-build"
FILES = 2000
TOTAL_BYTES = 50 * 1000 * 1000
DOCKERFILE = """FROM busybox
ARG VERSION=1
ENV APP=/app
WORKDIR /app
RUN echo "prepared $VERSION" > /prepared && mkdir -p /app/cache
COPY src/ /app/src/
RUN find /app/src -type f | wc -l > /app/count && du -s /app/src > /app/size
COPY late/ /app/late/
RUN cat /app/late/* > /app/late.txt
CMD ["cat", "/app/count"]
"""


def make_project(root: str) -> str:
    """The reference project, made once (same bytes on every run: a seeded generator)."""
    project = os.path.join(root, "project")
    marker = os.path.join(project, ".complete")
    if os.path.exists(marker):
        return project
    shutil.rmtree(project, ignore_errors=True)
    rng = random.Random(8)
    per_file = TOTAL_BYTES // FILES
    words = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))))
             for _ in range(500)]
    for i in range(FILES - 10):
        path = os.path.join(project, "src", f"pkg{i % 40:02d}", f"mod{i // 40:03d}.dat")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            if i % 5 < 3:
                f.write(rng.randbytes(per_file))
            else:
                text = " ".join(rng.choice(words) for _ in range(per_file // 5))
                f.write(text.encode()[:per_file])
    for i in range(10):
        path = os.path.join(project, "late", f"config{i}.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(f"setting{i} = {i}\n")
    with open(os.path.join(project, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(project, ".dockerignore"), "w") as f:
        f.write("*.tmp\n")
    open(marker, "w").close()
    return project


def timed(cmd: list[str], env=None) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.decode()[-2000:]}")
    return (time.perf_counter() - start) * 1000


def one_round(name: str, cli: list[str], env, project: str, i: int) -> tuple:
    """(cold, no change, late file) in ms for one engine, once."""
    late = os.path.join(project, "late", "config9.txt")
    build = cli + ["build", "-t", "benchbuild:1"] + (["--network", "none"]
                                                      if name != "skiff" else [])
    if name == "podman":
        build.append("--layers")
    cold = timed(build + ["--no-cache", project], env)
    same = timed(build + [project], env)
    with open(late, "w") as f:
        f.write(f"setting9 = changed {name} {i} {time.time()}\n")
    changed = timed(build + [project], env)
    return cold, same, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="skiff,docker,docker-classic,podman")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_test_images.py"),
                    "--out", IMAGES], check=True, stdout=subprocess.DEVNULL)
    os.makedirs(WORK, exist_ok=True)
    project = make_project(WORK)
    wanted = args.engines.split(",")
    # Every engine is started first and the rounds alternate between them, so that the load
    # of this shared machine (which drifts by tens of percent within minutes) falls on all
    # of them alike.
    from contextlib import ExitStack

    engines = []   # (name, cli, env)
    with ExitStack() as stack:
        if "skiff" in wanted:
            skiff = stack.enter_context(Skiff())
            engines.append(("skiff", skiff.cli, None))
        docker_modes = [m for m in ("docker", "docker-classic") if m in wanted]
        if docker_modes and Docker.available():
            docker = stack.enter_context(Docker())
            for mode in docker_modes:
                if mode == "docker":   # BuildKit: Debian's CLI (the CLI 28 here has no buildx)
                    engines.append((mode, ["/usr/bin/docker"] + docker.cli[1:],
                                    dict(os.environ, DOCKER_BUILDKIT="1")))
                else:
                    engines.append((mode, docker.cli, dict(os.environ, DOCKER_BUILDKIT="0")))
        elif docker_modes:
            print("docker: not installed, skipped")
        if "podman" in wanted and Podman.available():
            podman = stack.enter_context(Podman())
            engines.append(("podman", podman.cli, podman.env))
        times: dict[str, list[tuple]] = {name: [] for name, _, _ in engines}
        failed: set[str] = set()
        for name, cli, env in engines:   # warm-up: page cache, base image unpacked
            try:
                timed(cli + ["build", "-t", "benchbuild:1", "--no-cache", project] +
                      (["--network", "none"] if name != "skiff" else []), env)
            except RuntimeError as e:
                print(f"{name}: failed: {e}")
                failed.add(name)
        for i in range(args.runs):
            for name, cli, env in engines:
                if name in failed:
                    continue
                try:
                    times[name].append(one_round(name, cli, env, project, i))
                except RuntimeError as e:
                    print(f"{name}: failed: {e}")
                    failed.add(name)
        with open(os.path.join(project, "late", "config9.txt"), "w") as f:
            f.write("setting9 = 9\n")
    results = {}
    for name, rounds in times.items():
        if rounds and name not in failed:
            results[name] = {key: stats([r[k] for r in rounds])
                             for k, key in enumerate(("cold", "no_change", "late_file"))}
    print(f"\nreference project: {FILES} files, {TOTAL_BYTES // 10**6} MB, "
          f"{len(DOCKERFILE.splitlines())} instructions; medians of {args.runs} runs (ms)")
    print(f"{'engine':16} {'cold':>10} {'no change':>10} {'late file':>10}")
    for name, r in results.items():
        print(f"{name:16} {r['cold']['median_ms']:>10} {r['no_change']['median_ms']:>10} "
              f"{r['late_file']['median_ms']:>10}")
    if "skiff" in results:
        for peer in ("docker", "docker-classic", "podman"):
            if peer in results:
                ratios = " ".join(
                    f"{key} {results['skiff'][key]['median_ms'] / results[peer][key]['median_ms']:.2f}"
                    for key in ("cold", "no_change", "late_file"))
                print(f"skiff / {peer}: {ratios}")
    write_results(args.out, "build", {"files": FILES, "bytes": TOTAL_BYTES,
                                      "results": results})


if __name__ == "__main__":
    main()
