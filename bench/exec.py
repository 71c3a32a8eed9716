#!/usr/bin/env python3
"""`exec CTR true` latency (the CLI -> daemon -> a process joining a running container ->
exit code path), beside `docker exec` and `podman exec` when installed.

    python3 bench/exec.py [--runs 40] [--engines skiff,docker,podman]

Each engine gets its private daemon/root (bench/run.py's) and one detached busybox container
running `sleep`; after two warm-up runs each, `exec CTR true` is timed --runs times per engine,
the engines taking turns run by run (the order rotating), so that a slower minute of this
shared machine weighs on every engine alike. Prints each engine's median and spread and, run
by run, skiff's time over each peer's (geometric mean, 95% interval); writes the figures as
JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (HERE, IMAGES, ROOT, Docker, Podman, Skiff, geometric_summary,  # noqa: E402
                 installed, print_latencies, sh, stats, time_runs, write_results)


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
    with contextlib.ExitStack() as stack:
        commands = {}
        for name, cls in installed(args.engines, engines):
            engine = stack.enter_context(cls())
            env = getattr(engine, "env", None)
            ctr = run_detached(engine)
            stack.callback(subprocess.run, engine.cli + ["rm", "-f", ctr], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cmd = engine.cli + ["exec", ctr, "true"]
            try:
                time_runs(cmd, 0, env=env)   # the warm-up runs
            except subprocess.CalledProcessError as exc:  # say so, and measure the others
                print(f"{name}: exec failed ({exc.returncode}); skipped")
                continue
            commands[name] = (cmd, env)
        samples = {name: [] for name in commands}
        names = list(commands)
        for i in range(args.runs):
            for name in names[i % len(names):] + names[:i % len(names)]:
                cmd, env = commands[name]
                samples[name] += time_runs(cmd, 1, env=env, warmup=0)
    results = {name: {"exec_true": stats(times)} for name, times in samples.items()}
    for peer in ("docker", "podman"):
        if "skiff" in samples and peer in samples:
            results["skiff"][f"run_by_run_vs_{peer}"] = geometric_summary(
                [s / p for s, p in zip(samples["skiff"], samples[peer])])
    print_latencies(results, "exec_true", "exec CTR true")
    for peer in ("docker", "podman"):
        summary = results.get("skiff", {}).get(f"run_by_run_vs_{peer}")
        if summary:
            print(f"skiff / {peer}, run by run: geometric mean {summary['mean']:.3f} "
                  f"[95% {summary['ci95'][0]:.3f}..{summary['ci95'][1]:.3f}], "
                  f"median {summary['median']:.3f}")
    write_results(args.out, "exec", {"results": results})


if __name__ == "__main__":
    main()
