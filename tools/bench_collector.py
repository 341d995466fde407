#!/usr/bin/env python3
"""Benchmark the collector: ingest rate through the WSGI app (validation included) and
dashboard page times, filters included, over a store of N events (default 1,000,000).

    python tools/bench_collector.py --events 1000000 --db /tmp/bench.db
    python tools/bench_collector.py --pages-only --db /tmp/bench.db   # reuse that store
"""
from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nomira import store  # noqa: E402
from nomira.collector.app import App  # noqa: E402
from nomira.collector.auth import Config  # noqa: E402

MODELS = ["claude-opus-4-7", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "gpt-5-codex"]
SOURCES = ["claude_code", "claude_code", "codex", "opencode"]
FEATURES = ["checkout", "search", "onboarding", "billing", "infra"]
WORKFLOWS = ["review", "refactor", "tests", "docs"]
CUSTOMERS = ["acme", "globex", "initech", ""]
ENVS = ["dev", "ci", "prod"]


def events(n: int, seed: int = 3):
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    for i in range(n):
        at = now - timedelta(seconds=rng.randint(0, 90 * 86400))
        dev = rng.randint(1, 40)  # each developer works on a few of the 60 projects
        yield {"schema_version": 1, "source": rng.choice(SOURCES), "provider": "anthropic", "model": rng.choice(MODELS),
               "occurred_at": at.isoformat(), "tokens": {"input": rng.randint(1, 50), "output": rng.randint(10, 2000),
                                                         "cache_read": rng.randint(0, 150000),
                                                         "cache_write_5m": rng.randint(0, 5000)},
               "cost_usd": rng.random() * 0.05, "cost_source": "bundled:2026-11-24", "regime": "subscription",
               "tags": {"developer": f"dev{dev}", "project": f"project-{(dev * 7 + rng.randint(0, 3)) % 60 + 1}",
                        "tenant": f"team{dev % 3 + 1}", "feature": rng.choice(FEATURES),
                        "workflow": rng.choice(WORKFLOWS), "customer": rng.choice(CUSTOMERS) or None,
                        "env": rng.choice(ENVS)},
               "message_id": f"msg_{seed}_{i}", "session_id": f"s{rng.randint(1, 20000)}"}


def call(app, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    out = {}

    def start_response(status, headers):
        out["status"] = int(status.split()[0])
    path, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/json", "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": "127.0.0.1"}
    data = b"".join(app(environ, start_response))
    return out["status"], data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--pages-only", action="store_true", help="reuse an existing --db: time the pages only")
    args = ap.parse_args(argv)
    db = args.db or Path(tempfile.mkdtemp(prefix="nomira-bench-")) / "bench.db"
    app = App(db, Config(host="127.0.0.1"))
    app.config.max_ingest_bytes = 1 << 30
    if not args.pages_only:
        bench_ingest(app, db, args)
    with open(db, "rb") as f:  # the store in the OS page cache, as on a collector that has been serving
        while f.read(1 << 24):
            pass
    return bench_pages(app)


def bench_ingest(app, db: Path, args) -> None:
    t0, n, batch, ingest_s, ingest_cpu = time.perf_counter(), 0, [], 0.0, 0.0
    # as `nomira ship` sends them: each developer's calls, in time order
    ordered = sorted(events(args.events), key=lambda e: (e["tags"]["developer"], e["occurred_at"]))
    for e in ordered:
        batch.append(e)
        if len(batch) == args.batch:
            body = json.dumps({"events": batch}).encode()
            t, c = time.perf_counter(), time.process_time()
            status, _ = call(app, "POST", "/v1/usage/events", body)
            ingest_s += time.perf_counter() - t
            ingest_cpu += time.process_time() - c
            assert status == 200, status
            n += len(batch)
            batch = []
    if batch:
        t, c = time.perf_counter(), time.process_time()
        assert call(app, "POST", "/v1/usage/events", json.dumps({"events": batch}).encode())[0] == 200
        ingest_s += time.perf_counter() - t
        ingest_cpu += time.process_time() - c
        n += len(batch)
    print(f"ingest: {n} events in {ingest_s:.1f} s through the WSGI app = {n / ingest_s:,.0f} events/s "
          f"(validation + store; total with generation {time.perf_counter() - t0:.1f} s); CPU {ingest_cpu:.1f} s = "
          f"{n / ingest_cpu:,.0f} events per CPU second (the steadier figure on a loaded machine)")
    store_db = store.open_db(db.with_name(db.stem + "-store.db"))
    t, c = time.perf_counter(), time.process_time()
    for i in range(0, len(ordered), args.batch):
        store.ingest(store_db, ordered[i:i + args.batch])
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"store only: {len(ordered)} events in {dt:.1f} s = {len(ordered) / dt:,.0f} events/s "
          f"(store.ingest, events already parsed and validated); CPU {cpu:.1f} s = {len(ordered) / cpu:,.0f} "
          "events per CPU second")


PAGES = ("/?period=today", "/?period=30d", "/?period=all", "/?period=all&tenant=team1",
         "/developer/dev7?period=all", "/project/project-3?period=30d", "/compare/developers?period=all",
         "/api/summary?period=all",
         # filters on rollup dimensions (developer, project, model) and dates: answered by the rollups
         "/?period=90d&developer=dev7", "/?period=30d&model=claude-opus-4-7&tenant=team2",
         "/developer/dev7?period=all&model=gpt-5-codex", "/?from=2026-10-01&to=2026-10-31&project=project-3",
         "/compare/developers?period=90d&project=project-3", "/index.csv?period=90d&table=model&developer=dev7",
         # source and business tags: answered by `events`
         "/?period=today&feature=search", "/?period=7d&source=codex", "/?period=30d&feature=search",
         "/?period=30d&tenant=team1&env=prod", "/?period=all&customer=acme",
         "/developer/dev7?period=30d&workflow=review", "/compare/developers?period=30d&env=ci",
         "/index.csv?period=30d&table=developer&feature=billing")


def bench_pages(app, paths=PAGES) -> int:
    """Each page 5 times: the first (nothing of this view cached by the process: what a view costs
    after any ingest) and the median (repeat views until the store changes)."""
    for path in paths:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            status, _ = call(app, "GET", path)
            times.append(time.perf_counter() - t)
            assert status == 200, (path, status)
        print(f"{path:<58} first {times[0] * 1000:6.1f} ms   median {sorted(times)[2] * 1000:6.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
