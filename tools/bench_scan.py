#!/usr/bin/env python3
"""Benchmark `nomira --json` on a synthetic Claude Code history, against ccusage.

Generates a history in the real compact transcript format (assistant lines with
usage, streamed as two snapshots, among large tool-result lines, a few lines of
megabytes), then times nomira cold (no cache), warm (cache, nothing new) and with
--no-cache, and `ccusage claude daily --offline --json` on the same files when
ccusage is on PATH (or given with --ccusage). Prints MB/s, wall time, peak memory
and the ratios, and checks that both tools report the same total. The report writes
a row per session, as `ccusage session` does (not `daily`): that is timed too, like
for like. `--command daily|session` times those commands of both tools instead.

    python tools/bench_scan.py                # 250 MB
    python tools/bench_scan.py --size-mb 1000 --keep /tmp/hist
    python tools/bench_scan.py --size-mb 1000 --sessions 120   # same sessions as 250 MB, 4x the calls
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nomira.sources import behind  # noqa: E402 - (this checkout's, whichever is installed)

MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-7", "claude-haiku-4-5-20251001"]
FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "


def _dump(o) -> str:
    return json.dumps(o, separators=(",", ":"))


def write_session(path: Path, rng: random.Random, session: str, calls: int, big_every: int,
                  working_hours: bool = False) -> int:
    """`working_hours`: the calls seconds to minutes apart from a random start, as one working session
    (hours, at times past midnight); else each at a random time of the quarter (the default, as the
    figures in docs/PERFORMANCE.md were measured; a file then spans about 80 days)."""
    cwd = "/home/bench/src/" + path.parent.name
    n = 0
    at = datetime(2026, 9, 1, tzinfo=timezone.utc)
    if working_hours:  # (the default draws nothing more: its histories stay the ones measured before)
        at += timedelta(seconds=rng.randint(0, 88 * 86_400))
    with open(path, "w") as fh:
        context = 10_000
        for i in range(calls):
            if working_hours:
                at += timedelta(seconds=rng.randint(5, 180), milliseconds=rng.randint(0, 999))
                ts = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
            else:
                ts = f"2026-{rng.randint(9, 11):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:" \
                     f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
            size = 1_000_000 if i % big_every == big_every - 1 else rng.randint(1_000, 10_000)
            text = (FILLER * (size // len(FILLER) + 1))[:size]
            fh.write(_dump({"parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": cwd,
                            "sessionId": session, "version": "2.0.37", "gitBranch": "main", "type": "user",
                            "message": {"role": "user", "content": [{"tool_use_id": f"toolu_{i}", "type":
                                        "tool_result", "content": text}]},
                            "uuid": f"u{i}", "timestamp": ts, "toolUseResult": {"stdout": text[:200]}}) + "\n")
            write = rng.randint(100, 5_000)
            usage = {"input_tokens": rng.randint(1, 50), "cache_creation_input_tokens": write,
                     "cache_read_input_tokens": context,
                     "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
                     "output_tokens": 1, "service_tier": "standard"}
            context = min(context + write, 180_000)
            mid, rid = f"msg_{rng.getrandbits(64):016x}", f"req_{rng.getrandbits(64):016x}"
            model = MODELS[i % len(MODELS)]
            for out in (1, rng.randint(20, 2_000)):
                usage["output_tokens"] = out
                fh.write(_dump({"parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": cwd,
                                "sessionId": session, "version": "2.0.37", "gitBranch": "main",
                                "message": {"id": mid, "type": "message", "role": "assistant", "model": model,
                                            "content": [{"type": "text", "text": FILLER * 6}],
                                            "stop_reason": None, "stop_sequence": None, "usage": usage},
                                "requestId": rid, "type": "assistant", "uuid": f"a{i}{out}",
                                "timestamp": ts}) + "\n")
            n += 1
    return n


def generate(root: Path, size_mb: int, seed: int = 1, sessions: int | None = None,
             working_hours: bool = False) -> tuple[int, int]:
    """About `size_mb` of sessions of 50-400 calls, or of `sessions` sessions sized to fit."""
    rng = random.Random(seed)
    per_session = (50, 400) if sessions is None else ((n := size_mb * 100 // sessions) * 4 // 5, n * 6 // 5)
    projects = root / "projects"
    total_calls, written, s = 0, 0, 0
    target = size_mb * 1_000_000
    while written < target:
        project = projects / f"-home-bench-src-p{s % 12}"
        project.mkdir(parents=True, exist_ok=True)
        session = f"{rng.getrandbits(128):032x}"
        f = project / f"{session}.jsonl"
        total_calls += write_session(f, rng, session, rng.randint(*per_session), big_every=250,
                                     working_hours=working_hours)
        written += f.stat().st_size
        s += 1
    return total_calls, written


def run(cmd: list[str], env: dict, cwd: str | None = None) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS MiB of the command's process tree, stdout, CPU seconds (user + system)
    of the tree: on a loaded machine, CPU time moves much less than wall time)."""
    wrapper = [sys.executable, "-c", (
        "import resource,subprocess,sys,time;t=time.perf_counter();"
        "p=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE);w=time.perf_counter()-t;"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "sys.stderr.write(f'{w} {r.ru_maxrss} {r.ru_utime + r.ru_stime}\\n');"
        "sys.stdout.buffer.write(p.stdout);sys.exit(p.returncode)"), *cmd]
    p = subprocess.run(wrapper, env=env, capture_output=True, text=True, check=True, cwd=cwd)
    wall, rss_kb, cpu = p.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024, p.stdout, float(cpu)


def _clear_outputs(cache_dir: Path) -> None:
    """Forget finished outputs (and their replays) but keep per-file records: times re-aggregation
    from the cache."""
    import sqlite3
    db = sqlite3.connect(cache_dir / "nomira" / "scan.sqlite")
    db.execute("DELETE FROM outputs")
    db.commit()
    db.close()
    _forget_replays(cache_dir)


def _forget_replays(cache_dir: Path) -> None:
    """Forget the finished outputs kept for a replay (`scancache.quick_replay`), not the scan cache's."""
    shutil.rmtree(cache_dir / "nomira" / "quick", ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=250)
    ap.add_argument("--sessions", type=int, help="this many sessions, however large (default: 50-400 calls each)")
    ap.add_argument("--keep", type=Path, help="generate into (and keep) this folder; reused if present")
    ap.add_argument("--ccusage", default=shutil.which("ccusage"), help="ccusage binary")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per measurement (best is reported)")
    ap.add_argument("--working-hours", action="store_true",
                    help="generate each session's calls minutes apart (a session of hours), not spread over a quarter")
    ap.add_argument("--command", default="report", choices=["report", "daily", "session"],
                    help="time `nomira daily --json` against `ccusage daily` (or `session` against `session`) "
                         "instead of the default report")
    ap.add_argument("--baseline", help="a checkout of Nomira to time in the same run (e.g. main, before a change)")
    ap.add_argument("--fixed-order", action="store_true",
                    help="run the commands in the same order each round (default: shuffled, the warm runs after "
                         "their cold run)")
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="nomira-bench-"))
    if not (root / "projects").is_dir():
        t = time.perf_counter()
        calls, size = generate(root, args.size_mb, sessions=args.sessions, working_hours=args.working_hours)
        print(f"generated {size / 1e6:.0f} MB, {calls} calls in {time.perf_counter() - t:.1f}s at {root}")
    size = sum(f.stat().st_size for f in root.rglob("*.jsonl"))
    # the caches live outside the history, as a user's do (~/.cache): inside it, each cold run's new
    # cache folder changed the history's root, which a replay's checks watch, so the runs in the
    # next second kept no replay
    caches = Path(tempfile.mkdtemp(prefix="nomira-bench-caches-"))
    cache, base_env_cache = caches / "nomira", caches / "baseline"
    env = dict(os.environ, CLAUDE_CONFIG_DIR=str(root), XDG_CACHE_HOME=str(cache), NO_COLOR="1")
    nomira = [sys.executable, "-m", "nomira", *([args.command] if args.command != "report" else []), "--json", "--source",
              "claude"]
    # name: (command, prepare, working directory); measured interleaved, round by round, so the
    # tools share whatever load the machine is under
    plan = {
        "nomira cold": (nomira, lambda: shutil.rmtree(cache, ignore_errors=True), None),
        # the first run after cold: the finished output from the scan cache (the replay the cold run
        # kept is removed), kept again for a replay
        "nomira warm": (nomira, lambda: _forget_replays(cache), None),
        "nomira warm again": (nomira, None, None),  # nothing new since: the finished output replayed
        "nomira warm, no output": (nomira, lambda: _clear_outputs(cache), None),
        "nomira --no-cache": (nomira + ["--no-cache"], None, None),
        # the floor under every run above: this interpreter starting and ending (its site-packages'
        # .pth files included), which a replay cannot go below
        "python start": ([sys.executable, "-c", "pass"], None, None),
    }
    if args.baseline:  # another checkout of Nomira (the code before a change), same files, same run
        plan["baseline cold"] = (nomira, lambda: shutil.rmtree(base_env_cache, ignore_errors=True), args.baseline)
        plan["baseline warm"] = (nomira, lambda: _forget_replays(base_env_cache), args.baseline)
    if args.ccusage:
        plan["ccusage"] = ([args.ccusage, "claude", "session" if args.command == "session" else "daily", "--offline",
                            "--json"], None, None)
        if args.command == "report":  # the same kind of output as the report's: a row per session
            plan["ccusage session"] = ([args.ccusage, "claude", "session", "--offline", "--json"], None, None)
    runs: dict[str, list] = {name: [] for name in plan}
    load_before = os.getloadavg()
    # chains of runs that depend on the one before (warm after cold), in a shuffled order each round: a
    # command run right after a cold Nomira run was slower (its ~25 MB of cache writes are flushed to
    # disk meanwhile: the same `ccusage session` took 0.68 s there, 0.50 s after ccusage), which a fixed
    # order hands to whichever tool comes next
    chains: list[list[str]] = []
    for name in plan:
        if chains and name.split()[0] == chains[-1][0].split()[0] and "warm" in name:
            chains[-1].append(name)
        else:
            chains.append([name])
    shuffle = random.Random(1).shuffle
    for _ in range(args.runs):
        if not args.fixed_order:
            shuffle(chains)
        for name in (n for chain in chains for n in chain):
            cmd, before, cwd = plan[name]
            if before:
                before()
            e = env if not name.startswith("baseline") else dict(env, XDG_CACHE_HOME=str(base_env_cache))
            runs[name].append(run(cmd, e, cwd))
            if not name.startswith("ccusage"):  # a cold run's cache files are written after it answered
                # (`nomira.sources.behind`): done before the next command (and its `prepare`) starts
                behind.wait(str(Path(e["XDG_CACHE_HOME"]) / "nomira"))
    results = {}
    for name, rs in runs.items():
        wall = min(r[0] for r in rs)
        rss = max(r[1] for r in rs)
        median = sorted(r[0] for r in rs)[len(rs) // 2]
        cpu = min(r[3] for r in rs)
        results[name] = (wall, rss, rs[-1][2], cpu, median)
        print(f"{name:<22} {wall:7.3f} s  {size / 1e6 / wall:8.0f} MB/s  peak {rss:6.1f} MiB   median {median:.3f} s"
              f"  CPU {cpu:.3f} s  (runs: {' '.join(f'{r[0]:.3f}' for r in rs)})")
    print(f"warm again without the interpreter's start: "
          f"{(results['nomira warm again'][0] - results['python start'][0]) * 1000:.0f} ms")
    totals = {"nomira": json.loads(results["nomira warm"][2])["totals"]["cost_usd"],
              "nomira cold": json.loads(results["nomira cold"][2])["totals"]["cost_usd"]}
    if args.baseline:
        totals["baseline"] = json.loads(results["baseline cold"][2])["totals"]["cost_usd"]
    if args.ccusage:
        totals["ccusage"] = json.loads(results["ccusage"][2])["totals"]["totalCost"]
        cc = results["ccusage"][0]
        print(f"cold/ccusage = {results['nomira cold'][0] / cc:.2f}x   warm/ccusage = "
              f"{results['nomira warm'][0] / cc:.2f}x   warm again/ccusage = "
              f"{results['nomira warm again'][0] / cc:.2f}x   warm, no output/ccusage = "
              f"{results['nomira warm, no output'][0] / cc:.2f}x" +
              (f"   baseline cold/ccusage = {results['baseline cold'][0] / cc:.2f}x   baseline warm/ccusage = "
               f"{results['baseline warm'][0] / cc:.2f}x" if args.baseline else ""))
    if args.ccusage:  # (a best of five moves by ±10% with ccusage's spread; the medians move less)
        print(f"medians: cold/ccusage = {results['nomira cold'][4] / results['ccusage'][4]:.2f}x" +
              (f"   cold/ccusage session = {results['nomira cold'][4] / results['ccusage session'][4]:.2f}x"
               if "ccusage session" in results else ""))
    if "ccusage session" in results:
        totals["ccusage session"] = json.loads(results["ccusage session"][2])["totals"]["totalCost"]
        print(f"like for like (a row per session, `ccusage session`): cold/ccusage session = "
              f"{results['nomira cold'][0] / results['ccusage session'][0]:.2f}x")
    if args.ccusage:
        cc = results["ccusage"][3]
        print("CPU / ccusage CPU: " + "   ".join(f"{name} {r[3] / cc:.2f}x" for name, r in results.items()
                                                 if not name.startswith("ccusage")))
    print("totals: " + ", ".join(f"{k} ${v:.6f}" for k, v in totals.items()))
    print(f"load average: before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    shutil.rmtree(caches, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
