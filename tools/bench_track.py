"""What `nomira.track()` costs the caller: per-call time, local store or spool (the writes happen
in a background thread; the time it needs after the last call is printed too).

    python tools/bench_track.py [--calls 2000]

Runs in a temporary XDG home; the spool case points NOMIRA_REMOTE at a closed loopback port
(so delivery fails in the background thread and every event stays durable on disk).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

USAGE = {"input_tokens": 12, "output_tokens": 340, "cache_read_input_tokens": 9000,
         "cache_creation_input_tokens": 700,
         "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 500}}


def run(calls: int) -> list[float]:
    import nomira
    from nomira.integrations import tracking
    tracking.reset()
    nomira.track("anthropic", "claude-sonnet-4-5", USAGE)  # warm: imports, price table, store open
    times = []
    for i in range(calls):
        t = time.perf_counter()
        nomira.track("anthropic", "claude-sonnet-4-5", USAGE, developer="ana", feature="bench")
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    tracking.flush(60)
    print(f"  (background writer done {1000 * (time.perf_counter() - t):.1f} ms after the last call)")
    assert tracking.stats()["tracked"] == calls + 1, tracking.stats()
    tracking.reset()
    return times


def report(name: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    print(f"{name:<14} calls {len(ms):>6}  median {statistics.median(ms):.3f} ms  p95 {ms[int(len(ms) * .95)]:.3f} ms"
          f"  max {ms[-1]:.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["NOMIRA_HOME"] = home
        t = time.perf_counter()
        import nomira  # noqa: F401
        print(f"import nomira  {1000 * (time.perf_counter() - t):.2f} ms")
        os.environ.pop("NOMIRA_REMOTE", None)
        report("local store", run(args.calls))
        os.environ["NOMIRA_REMOTE"] = "http://127.0.0.1:9"
        from nomira.integrations import tracking
        tracking.FLUSH_OPTIONS.update(max_attempts=1)
        report("spool", run(args.calls))


if __name__ == "__main__":
    main()
