"""Time `nomira statusline` as Claude Code runs it: a new process per render, payload on stdin.

    python tools/bench_statusline.py [--runs 20] [--files 300] [--calls 400]

Builds a history under a temporary HOME (FILES old transcripts, 3 of today, and a session
of CALLS calls), then times RUNS renders in each state:
  warm-same   nothing changed since the last render (the result cache answers)
  warm-grown  the session file grew by one call before each render (scan cache resumes)
  cold        no scan cache, no result cache
for both `python -m nomira statusline` (the general CLI) and `python -m nomira.commands.statusline`
(what the `nomira-statusline` entry point runs), round robin, so a change of machine load hits
every variant alike. Prints min / median / max wall ms and the median CPU ms (user + sys), with a
bare `python -c pass` for scale, then the render alone in-process (no interpreter start).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.test_statusline import PAYLOAD, line  # noqa: E402 - the real-format line writer


def build(home: Path, files: int, calls: int) -> Path:
    proj = home / ".claude" / "projects" / "-home-ana-src-shop"
    proj.mkdir(parents=True)
    now = datetime.now(timezone.utc)
    old = (now - timedelta(days=20)).timestamp()
    for i in range(files):
        f = proj / f"00000000-0000-4000-8000-{i:012d}.jsonl"
        f.write_text("".join(line(now - timedelta(days=20, minutes=k), f"o{i}_{k}", f.stem, inp=1000, out=200)
                             for k in range(20)))
        os.utime(f, (old, old))
    for i in range(3):
        f = proj / f"11111111-0000-4000-8000-{i:012d}.jsonl"
        f.write_text("".join(line(now - timedelta(minutes=k), f"t{i}_{k}", f.stem, inp=1000, out=200)
                             for k in range(50)))
    session = proj / "5b2c9d1e-7a3f-4e60-9c11-2d3e4f5a6b7c.jsonl"
    session.write_text("".join(line(now - timedelta(seconds=20 * k), f"s{k}", session.stem, inp=2000, out=500,
                                    read=30000) for k in range(calls)))
    return session


def once(cmd: list[str], payload: bytes, env: dict, lines: int = 1) -> tuple[float, float]:
    """(wall ms, the child's CPU ms): on a loaded machine wall time is inflated far more than CPU time."""
    import resource
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, input=payload, capture_output=True, env=env, cwd=ROOT)
    wall = (time.perf_counter() - t0) * 1000
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0 and r.stdout.count(b"\n") == lines, r
    return wall, (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000


def row(label: str, wall: list[float], cpu: list[float]) -> None:
    print(f"{label:<38}{min(wall):8.1f}{statistics.median(wall):8.1f}{max(wall):8.1f}{statistics.median(cpu):9.1f}")


def in_process(payload: bytes, env: dict, runs: int, grow) -> None:
    """The render alone, imports done, in this process: what a render costs beyond starting Python."""
    import io
    os.environ.update({k: env[k] for k in ("HOME", "PYTHONPATH")})
    for v in ("XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ.pop(v, None)
    from nomira.commands import statusline
    statusline.main(io.BytesIO(payload), io.StringIO())
    for state, before in (("warm-same", None), ("warm-grown", grow)):
        wall, cpu = [], []
        for _ in range(runs):
            if before:
                before()
            t0, c0 = time.perf_counter(), time.process_time()
            statusline.main(io.BytesIO(payload), io.StringIO())
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        row(f"in-process render {state}", wall, cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--calls", type=int, default=400)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nomira-bench-statusline-"))
    try:
        home = tmp / "home"
        session = build(home, a.files, a.calls)
        env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        for v in ("XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "CLAUDE_CONFIG_DIR"):
            env.pop(v, None)
        payload = PAYLOAD.replace("TRANSCRIPT", str(session)).encode()
        n = [0]

        def grow():
            n[0] += 1
            with open(session, "a") as fh:
                fh.write(line(datetime.now(timezone.utc), f"g{n[0]}", session.stem, inp=100, out=50))

        def wipe():
            shutil.rmtree(home / ".cache", ignore_errors=True)
            shutil.rmtree(home / ".local", ignore_errors=True)
        print(f"history: {a.files + 4} transcripts, session of {a.calls} calls; {a.runs} runs each; ms")
        print(f"{'':<38}{'min':>8}{'median':>8}{'max':>8}{'cpu med':>9}")
        entry = [sys.executable, "-m", "nomira.commands.statusline"]
        general = [sys.executable, "-m", "nomira", "statusline"]
        prime = lambda cmd: (lambda: once(cmd, payload, env))  # noqa: E731 - render once, unmeasured
        variants = [("python -c pass", [sys.executable, "-c", "pass"], None, 0)]
        for label, cmd in (("nomira.commands.statusline", entry), ("nomira statusline", general)):
            variants += [(f"{label} warm-same", cmd, prime(cmd), 1), (f"{label} warm-grown", cmd, grow, 1),
                         (f"{label} cold", cmd, wipe, 1)]
        results = {v[0]: ([], []) for v in variants}
        once(entry, payload, env)
        for _ in range(a.runs):  # round robin: a change of machine load hits every variant alike
            for label, cmd, before, lines in variants:
                if before:
                    before()
                wall, cpu = once(cmd, b"" if lines == 0 else payload, env, lines)
                results[label][0].append(wall)
                results[label][1].append(cpu)
        for label, (wall, cpu) in results.items():
            row(label, wall, cpu)
        in_process(payload, env, a.runs, grow)
        print("line:", subprocess.run([sys.executable, "-m", "nomira.commands.statusline"], input=payload,
                                      capture_output=True, env=env, cwd=ROOT).stdout.decode().strip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
