#!/usr/bin/env python3
"""`exec CTR true` latency (the CLI -> daemon -> a process joining a running container ->
exit code path), beside `docker exec` and `podman exec` when installed.

    python3 bench/exec.py [--runs 30] [--engines skiff,docker,podman]

Each engine gets its private daemon/root (bench/run.py's), one detached busybox container
running `sleep`, then `exec CTR true` is timed --runs times after two warm-up runs. Prints
median and spread, and writes the figures as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (HERE, IMAGES, ROOT, Docker, Podman, Skiff, print_latencies, sh,  # noqa: E402
                 stats, time_runs, write_results)


def run_detached(engine) -> str:
    out = sh(engine.cli + ["run", "-d", "--network", "none", "busybox", "sleep", "100000"],
             env=getattr(engine, "env", None))
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--engines", default="skiff,docker,podman")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_test_images.py"),
                    "--out", IMAGES], check=True, stdout=subprocess.DEVNULL)
    # as scripts/install.sh leaves it: skiff's modules byte-compiled (a module edited since,
    # under PYTHONDONTWRITEBYTECODE, would be compiled again on every command)
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "src", "skiff")],
                   check=True, stdout=subprocess.DEVNULL)
    engines = {"skiff": Skiff, "docker": Docker, "podman": Podman}
    results = {}
    for name in args.engines.split(","):
        cls = engines[name]
        if hasattr(cls, "available") and not cls.available():
            print(f"{name}: not installed, skipped")
            continue
        with cls() as engine:
            env = getattr(engine, "env", None)
            ctr = run_detached(engine)
            try:
                times = time_runs(engine.cli + ["exec", ctr, "true"], args.runs, env=env)
            except subprocess.CalledProcessError as exc:  # say so, and measure the others
                print(f"{name}: exec failed ({exc.returncode}); skipped")
                continue
            finally:
                subprocess.run(engine.cli + ["rm", "-f", ctr], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            results[name] = {"exec_true": stats(times)}
    print_latencies(results, "exec_true", "exec CTR true")
    write_results(args.out, "exec", {"results": results})


if __name__ == "__main__":
    main()
