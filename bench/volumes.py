#!/usr/bin/env python3
"""Volume and bind-mount I/O inside a container, against the host directory itself: skiff
beside docker (private daemons, started as bench/run.py starts them).

    python3 bench/volumes.py [--runs 30] [--engines skiff,docker] [--mb 2048] [--files 5000]

The same busybox script runs in three places, interleaved run by run (the order rotating
from one run to the next) so that the machine's drift hits all alike:

  - host:   /bin/busybox on the host, in a directory beside the engine's root;
  - volume: in a container, in a named volume (`-v NAME:/w`);
  - bind:   in a container, in a bind-mounted host directory (`-v DIR:/w`).

Workloads: `dd` write of --mb MB with conv=fsync over a file made before the first run; `dd`
read of it back 8 times (page cache: the cost of the mount, not of the disk); --files new files
of 1 KB written with shell builtins then `sync -f` (that file system only); all of them read
back 100 times with `cat`. Nothing is deleted until the end: this disk is mounted with
`discard`, and blocks freed by one run were trimmed during the next, which moved small-file
creation by +-15% from run to run. Times
come from /proc/uptime inside the script, so container start-up is not counted; its 10 ms
resolution is why each workload is sized to take a second or more on this machine's disk
(2 GB/s: 256 MB took 0.12 s, which left the ratios 8% apart by rounding alone).

A disk's own speed moves by 10-20% from one run to the next here, for the host directory as
much as for a mount, so a mount's cost shows in the ratio taken run by run (host and mount
measured seconds apart): their geometric mean is printed with its 95% confidence interval;
medians, quartiles and best runs are in the JSON too. Prints a table and writes the figures
under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import (IMAGES, ROOT, Docker, Skiff,  # noqa: E402
                 geometric_summary, installed, write_results)

SCRIPT = r"""
d=$1; mb=$2; n=$3; run=$4
t() { read u _ < /proc/uptime; echo $u; }
line=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
line=$line$line$line$line$line$line$line$line$line$line$line$line
if [ ! -e $d/big ]; then dd if=/dev/zero of=$d/big bs=1M count=$mb 2>/dev/null; sync -f $d; fi
s=$(t); dd if=/dev/zero of=$d/big bs=1M count=$mb conv=notrunc,fsync 2>/dev/null; e=$(t)
echo write $s $e
s=$(t); r=0; while [ $r -lt 8 ]; do dd if=$d/big of=/dev/null bs=1M 2>/dev/null; r=$((r+1)); done
e=$(t); echo read $s $e
mkdir $d/small$run
s=$(t); i=0; while [ $i -lt $n ]; do echo "$line" > $d/small$run/f$i; i=$((i+1)); done
sync -f $d; e=$(t)
echo small_write $s $e
s=$(t); r=0; while [ $r -lt 100 ]; do cat $d/small$run/* > /dev/null; r=$((r+1)); done; e=$(t)
echo small_read $s $e
"""
KINDS = ("write", "read", "small_write", "small_read")
READS, SMALL_READS = 8, 100   # the script's repeat counts


def parse(output: str) -> dict[str, float]:
    out = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in KINDS:
            out[parts[0]] = max(float(parts[2]) - float(parts[1]), 0.005)
    missing = set(KINDS) - set(out)
    if missing:
        raise RuntimeError(f"workload output lacks {missing}: {output!r}")
    return out


def run(cmd: list[str], env=None) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr}")
    return result.stdout


def bench_engine(engine, runs: int, mb: int, files: int) -> dict:
    env = getattr(engine, "env", None)
    cli = engine.cli
    net = ["--network", "none"] if engine.name != "skiff" else []
    volume = "bench-vol"
    host_dir = tempfile.mkdtemp(prefix="host-", dir=engine.dir)
    bind_dir = tempfile.mkdtemp(prefix="bind-", dir=engine.dir)
    run(cli + ["volume", "create", volume], env)
    args = ["sh", "-c", SCRIPT, "sh", "/w", str(mb), str(files)]
    samples = {place: {k: [] for k in KINDS} for place in ("host", "volume", "bind")}
    try:
        for round_no in range(runs):
            places = {
                "host": ["/bin/busybox", "sh", "-c", SCRIPT, "sh", host_dir, str(mb),
                         str(files), str(round_no)],
                "volume": cli + ["run", "--rm"] + net + ["-v", f"{volume}:/w", "busybox"]
                + args + [str(round_no)],
                "bind": cli + ["run", "--rm"] + net + ["-v", f"{bind_dir}:/w", "busybox"]
                + args + [str(round_no)],
            }
            order = list(places)[round_no % 3:] + list(places)[:round_no % 3]
            for place in order:
                for kind, seconds in parse(run(places[place], env)).items():
                    samples[place][kind].append(seconds)
    finally:
        subprocess.run(cli + ["volume", "rm", "-f", volume], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(host_dir, ignore_errors=True)
        shutil.rmtree(bind_dir, ignore_errors=True)
    out = {}
    for place, kinds in samples.items():
        out[place] = {}
        for kind, times in kinds.items():
            median = statistics.median(times)
            amount = {"write": mb, "read": mb * READS, "small_write": files,
                      "small_read": files * SMALL_READS}[kind]
            unit = "mb_per_s" if kind in ("write", "read") else "files_per_s"
            out[place][kind] = {"median_s": round(median, 3), unit: round(amount / median, 1),
                                "best_s": round(min(times), 3),
                                "runs": [round(t, 3) for t in times]}
    for place in ("volume", "bind"):   # > 1: faster than the host directory itself
        out[place]["vs_host"] = {kind: round(out["host"][kind]["median_s"] /
                                             out[place][kind]["median_s"], 3)
                                 for kind in KINDS}
        # noise on a shared machine only ever adds time: the best runs show the mount's cost
        out[place]["best_vs_host"] = {kind: round(out["host"][kind]["best_s"] /
                                                  out[place][kind]["best_s"], 3)
                                      for kind in KINDS}
        # and run by run (host and place measured seconds apart): the ratios' quartiles
        # quartiles, and the geometric mean with its 95% confidence interval (normal
        # approximation over the runs' log ratios): "within 5%" means that interval lies
        # inside 0.95..1.05
        for key in ("paired_vs_host", "paired_quartiles", "paired_mean", "paired_ci95"):
            out[place][key] = {}
        for kind in KINDS:
            ratios = [h / p for h, p in zip(samples["host"][kind], samples[place][kind])]
            q1, q2, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            out[place]["paired_vs_host"][kind] = round(q2, 3)
            out[place]["paired_quartiles"][kind] = [round(q1, 3), round(q3, 3)]
            summary = geometric_summary(ratios)
            out[place]["paired_mean"][kind] = summary["mean"]
            out[place]["paired_ci95"][kind] = summary["ci95"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--engines", default="skiff,docker")
    parser.add_argument("--mb", type=int, default=2048)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_test_images.py"),
                    "--out", IMAGES], check=True, stdout=subprocess.DEVNULL)
    engines = {"skiff": Skiff, "docker": Docker}
    results = {}
    for name, cls in installed(args.engines, engines):
        with cls() as engine:
            results[name] = bench_engine(engine, args.runs, args.mb, args.files)
    print(f"\n{'engine':7} {'place':7} {'write MB/s':>11} {'read MB/s':>10} "
          f"{'files/s w':>10} {'files/s r':>10}   speed vs host, run by run: geometric mean "
          f"[95% interval] for write, read, small write, small read")
    for name, places in results.items():
        for place in ("host", "volume", "bind"):
            r = places[place]
            ratios = ""
            if place != "host":
                ci = r["paired_ci95"]
                ratios = "  ".join(f"{r['paired_mean'][k]:.3f} [{ci[k][0]:.3f}.."
                                   f"{ci[k][1]:.3f}]" for k in KINDS)
            print(f"{name:7} {place:7} {r['write']['mb_per_s']:>11} {r['read']['mb_per_s']:>10}"
                  f" {r['small_write']['files_per_s']:>10} {r['small_read']['files_per_s']:>10}"
                  f"   {ratios}")
    write_results(args.out, "volumes", {"runs": args.runs, "mb": args.mb,
                                        "files": args.files, "results": results})


if __name__ == "__main__":
    main()
