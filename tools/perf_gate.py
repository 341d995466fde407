#!/usr/bin/env python3
"""CI performance gate: cold `nomira --json` on a generated >= 1 GiB history, as a ratio to reading the
same bytes on the same machine, and its peak memory, against the figures in docs/PERFORMANCE.md.

The history is tools/bench_scan.py's generator (Claude Code's compact transcript format: streamed
usage snapshots among tool-result lines of up to 1 MB), written to a temporary folder, never
committed. Each figure is the best of --runs (default 3) so that a slower or busier machine does not
fail the gate: the ratio divides Nomira's cold CPU time (user + system of its process tree, no scan
cache) by the CPU time of a Python process reading the same files whole (4 MiB reads, page cache warm,
as it is for Nomira; the same interpreter start-up on both sides), so the machine's own speed cancels
out, and CPU time, unlike wall time, hardly moves when other jobs share the machine (wall figures are
printed too). Peak memory is the best (lowest) of the runs' peak RSS. The gate fails when the ratio or the peak RSS grows past --tolerance (1.5) times the
committed baseline (the `perf-gate:` line of docs/PERFORMANCE.md), or when the report's call count is
not the generator's. Prints the figures for the CI log either way.

    python tools/perf_gate.py                  # 1 GiB, best of 3; exit 1 when past the limits
    python tools/perf_gate.py --size-mb 200    # a quick local look (the gate itself needs >= 1 GiB)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scan import generate, run  # noqa: E402 - the one generator and timing wrapper

ROOT = Path(__file__).resolve().parent.parent
GIB_MB = 1074  # 1 GiB = 1,073.7 MB
BASELINE = re.compile(r"perf-gate: ratio=(?P<ratio>[0-9.]+) peak_mib=(?P<peak>[0-9.]+)")


def baseline(doc: Path) -> tuple[float, float]:
    m = BASELINE.search(doc.read_text())
    if not m:
        raise SystemExit(f"perf_gate: no 'perf-gate: ratio=... peak_mib=...' line in {doc}")
    return float(m["ratio"]), float(m["peak"])


READER = ("import pathlib,sys\nbuf=bytearray(4<<20)\n"
          "for f in sorted(pathlib.Path(sys.argv[1]).rglob('*.jsonl')):\n"
          " with open(f,'rb',buffering=0) as fh:\n"
          "  while fh.readinto(buf):pass\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=GIB_MB)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tolerance", type=float, default=1.5, help="fail past this multiple of the baseline")
    ap.add_argument("--baseline", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    ap.add_argument("--keep", type=Path, help="generate into (and keep) this folder; reused if present")
    args = ap.parse_args(argv)
    base_ratio, base_peak = baseline(args.baseline)
    root = args.keep or Path(tempfile.mkdtemp(prefix="nomira-perf-gate-"))
    started = time.perf_counter()
    try:
        calls_file = root / "calls.txt"
        if not (root / "projects").is_dir():
            t = time.perf_counter()
            calls, size = generate(root, args.size_mb)
            calls_file.write_text(str(calls))
            print(f"generated {size / 2**30:.2f} GiB, {calls} calls in {time.perf_counter() - t:.1f} s")
        calls = int(calls_file.read_text())
        files = sorted(root.rglob("*.jsonl"))
        size = sum(f.stat().st_size for f in files)
        env = dict(os.environ, CLAUDE_CONFIG_DIR=str(root), XDG_CACHE_HOME=str(root / ".cache"), NO_COLOR="1",
                   PYTHONPATH=str(ROOT))
        nomira = [sys.executable, "-m", "nomira", "--json", "--source", "claude"]
        reads, colds = [], []
        for _ in range(args.runs):  # interleaved: both share whatever load the machine is under
            reads.append(run([sys.executable, "-c", READER, str(root)], env, str(ROOT)))
            shutil.rmtree(root / ".cache", ignore_errors=True)
            colds.append(run(nomira, env, str(ROOT)))
        read, read_cpu = min(r[0] for r in reads), min(r[3] for r in reads)
        wall = min(r[0] for r in colds)
        cpu = min(r[3] for r in colds)
        peak = min(r[1] for r in colds)
        got = json.loads(colds[-1][2])["totals"]["calls"]
        ratio = cpu / read_cpu
        limit_ratio, limit_peak = base_ratio * args.tolerance, base_peak * args.tolerance
        print(f"history          {size / 2**30:.2f} GiB, {len(files)} files, {calls} calls")
        print(f"raw read         {read:7.3f} s  {size / 2**20 / read:8.0f} MiB/s   CPU {read_cpu:.3f} s   (runs: "
              f"{' '.join(f'{r[0]:.3f}' for r in reads)})")
        print(f"nomira cold      {wall:7.3f} s  {size / 2**20 / wall:8.0f} MiB/s   CPU {cpu:.3f} s   peak {peak:.1f} MiB"
              f"   (runs: {' '.join(f'{r[0]:.3f}' for r in colds)})")
        print(f"wall cold/read   {wall / read:7.2f}x   (shown, not judged: wall time swings with the load)")
        print(f"CPU cold/read    {ratio:7.2f}x   limit {limit_ratio:.2f}x ({args.tolerance}x the baseline {base_ratio}x)")
        print(f"peak memory      {peak:7.1f} MiB  limit {limit_peak:.1f} MiB ({args.tolerance}x the baseline "
              f"{base_peak} MiB)")
        print(f"load average     {' '.join(f'{x:.2f}' for x in os.getloadavg())}; gate took "
              f"{time.perf_counter() - started:.0f} s")
        failures = []
        if args.size_mb < GIB_MB:
            print("(below 1 GiB: figures only, the gate does not judge)")
        else:
            if ratio > limit_ratio:
                failures.append(f"CPU cold/read ratio {ratio:.2f}x is past {limit_ratio:.2f}x")
            if peak > limit_peak:
                failures.append(f"peak memory {peak:.1f} MiB is past {limit_peak:.1f} MiB")
        if got != calls:
            failures.append(f"the report counted {got} calls, the generator wrote {calls}")
        for f in failures:
            print(f"perf gate FAILED: {f}")
        if not failures:
            print("perf gate passed")
        return 1 if failures else 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
