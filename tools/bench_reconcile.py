#!/usr/bin/env python3
"""Benchmark reconciliation over a store of N events (default 1,000,000): the `nomira reconcile`
run (one grouped scan of events; adjustments and the run recorded), then the /reconcile page, its
JSON/CSV twins and the home page with its card (which read the stored run, never the events).

    python tools/bench_reconcile.py --events 1000000 --db /tmp/bench-reconcile.db
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_collector import MODELS, call, events  # noqa: E402

from nomira.ledger import store  # noqa: E402
from nomira.collector.app import App  # noqa: E402
from nomira.collector.auth import Config  # noqa: E402
from nomira.reconcile import ledger  # noqa: E402
from nomira.reconcile.bills import BillLine, merge, model_key  # noqa: E402
from nomira.reconcile.windows import reconcile  # noqa: E402


def timed(label: str, fn, repeat: int = 3):
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best or 1e9, time.perf_counter() - t)
    print(f"{label:<44} {best * 1000:9.1f} ms")
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=None)
    a = ap.parse_args(argv)
    path = a.db or Path(tempfile.mkdtemp(prefix="nomira-bench-")) / "bench.db"
    db = store.open_db(path)
    if not db.execute("SELECT 1 FROM events LIMIT 1").fetchone():
        t = time.perf_counter()
        batch = []
        for e in events(a.events):
            batch.append(dict(e, regime="api"))
            if len(batch) == 5000:
                store.ingest(db, batch)
                batch = []
        if batch:
            store.ingest(db, batch)
        print(f"ingested {a.events:,} events in {time.perf_counter() - t:.1f} s")
    rng = random.Random(5)
    by_tenant: dict[str, list[BillLine]] = {}
    for o in ledger.observed(db, None, None, None):
        by_tenant.setdefault(o["tenant"], []).append(BillLine(
            "anthropic", "default", o["day"], model_key(o["model"]), o["cost_usd"], None, None, "bench"))
    for tenant, lines in by_tenant.items():  # a bill per tenant/day/model: the estimate, 30% of them 0-10% higher
        lines = [replace(ln, cost_usd=ln.cost_usd * (1 + (rng.random() * 0.1 if rng.random() < 0.3 else 0)))
                 for ln in merge(lines)]
        by_tenant[tenant] = lines
        ledger.save_lines(db, tenant, "anthropic", "import:bench", lines, {})
    print(f"{sum(map(len, by_tenant.values())):,} bill lines, models {len(MODELS)}")
    r = timed("nomira reconcile (all tenants, records)", lambda: reconcile(db), repeat=1)
    print(f"  windows {len(r['windows']):,}, adjustments {len(r['adjustments']):,}, counts {r['counts']}")
    app = App(path, Config())
    for p in ("/reconcile?period=all", "/reconcile.json?period=30d", "/reconcile.csv?period=all",
              "/reconcile?period=30d&tenant=team1", "/?period=30d"):
        status, body = timed(f"GET {p}", lambda: call(app, "GET", p))
        assert status == 200, (p, status, body[:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
