#!/usr/bin/env python3
"""What linking telemetry and transcript copies (store._link_copies, 0013) costs at ingest.

1. A store that never took telemetry: transcript batches, with the link step and with it skipped;
   then a store that has (each transcript batch looks up its request ids and fingerprints).
2. A store of N transcript calls over one day (one tenant, 50 sessions): a 512-record telemetry
   batch of calls it already holds (each linked by request id), then one of new calls.
CPU time (process user+sys), best of R.

    python tools/bench_links.py --calls 100000 --runs 3
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nomira.ledger import store  # noqa: E402


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def call(n: int, telemetry: bool = False, new: bool = False) -> dict:
    e = {"schema_version": 1, "source": "claude_code", "provider": "anthropic", "model": "claude-sonnet-4-5-20250929",
         "occurred_at": f"2025-11-03T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.{n // 86400 % 1000:03d}Z",
         "tokens": {"input": 4, "output": 100 + n % 900, "cache_read": 1000 + n, "cache_write_5m": 50},
         "cost_usd": 0.01, "regime": "subscription", "session_id": f"sess-{n % 50:04d}",
         "request_id": f"req_{'new' if new else ''}{n:08d}", "message_id": None if telemetry else f"msg_{n:08d}",
         "tags": {} if telemetry else {"developer": "ana", "project": "shop"}}
    if telemetry:
        e["source_channel"] = "otlp"
    return e


def timed(fn) -> float:
    start = cpu()
    fn()
    return cpu() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    link = store._link_copies
    for label, on in (("with the link step", True), ("link step skipped", False)):
        best = float("inf")
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as d:
                db = store.open_db(Path(d) / "s.db")
                store._link_copies = link if on else (lambda db, events, keys: keys)
                batches = [[call(n) for n in range(b, b + 1000)] for b in range(0, 20_000, 1000)]
                best = min(best, timed(lambda: [store.ingest(db, b) for b in batches]))
        store._link_copies = link
        print(f"no telemetry, 20,000 transcript calls in batches of 1,000, {label}: {best:.3f} s CPU")
    best = float("inf")
    for _ in range(args.runs):  # a store that has taken telemetry: every transcript batch looks its links up
        with tempfile.TemporaryDirectory() as d:
            db = store.open_db(Path(d) / "s.db")
            store.ingest(db, [call(n, True, new=True) for n in range(1000)])
            batches = [[call(n) for n in range(b, b + 1000)] for b in range(0, 20_000, 1000)]
            best = min(best, timed(lambda: [store.ingest(db, b) for b in batches]))
    print(f"after 1,000 telemetry calls, the same 20,000 transcript calls: {best:.3f} s CPU")
    with tempfile.TemporaryDirectory() as d:
        db = store.open_db(Path(d) / "s.db")
        for b in range(0, args.calls, 5000):
            store.ingest(db, [call(n) for n in range(b, min(b + 5000, args.calls))])
        for label, make in (("already stored (linked)", lambda r, n: call(n, True)),
                            ("new", lambda r, n: call(n, True, new=True))):
            best = float("inf")
            for r in range(args.runs):
                batch = [make(r, n) for n in range(r * 512, r * 512 + 512)]
                best = min(best, timed(lambda: store.ingest(db, batch)))
            print(f"{args.calls:,}-call day, one 512-record telemetry batch of calls {label}: {best:.3f} s CPU")
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == args.calls + 512 * args.runs


if __name__ == "__main__":
    main()
