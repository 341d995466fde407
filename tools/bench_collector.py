#!/usr/bin/env python3
"""Benchmark the collector on either engine: ingest rate over loopback HTTP into real
`nomira serve` processes (validation included) with 1 and then 4 concurrent senders, and
dashboard page times over the resulting store of N events (default 1,000,000).

    python tools/bench_collector.py --events 1000000                        # SQLite in a temp dir
    python tools/bench_collector.py --events 1000000 --engine postgresql    # a throwaway cluster (durable settings)
    python tools/bench_collector.py --db postgresql://nomira@db/nomira --processes 4
    python tools/bench_collector.py --cpu --events 50000 --rounds 5                # CPU per event, in-process
    python tools/bench_collector.py --cpu --events 50000 --code /tmp/old           # the same, another tree
    python tools/bench_collector.py --cpu --events 50000 --sessions                # the same, a realistic history

The first --first events go in with one sender, the rest with --senders senders, spread
over --processes collector processes (SQLite: one; PostgreSQL: as many as asked). The CPU
seconds of the collectors (and of the PostgreSQL server, when the bench started it) are
reported with the rates: on a shared machine they are steadier than wall time.

--code also chooses the checkout the collector processes run.
--cpu measures the ingest path in this process instead (WSGI app called directly: JSON
parsing, validation, store), as CPU time per event, best of --rounds fresh stores; --code
runs it on another checkout's `nomira` (e.g. `git archive` of an older commit), so two
versions are compared with one script.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = Path(sys.argv[sys.argv.index("--code") + 1]).resolve() if "--code" in sys.argv[:-1] else ROOT
sys.path.insert(0, str(CODE))

import importlib  # noqa: E402


def _module(*names):
    """The first of `names` that imports from CODE: --code may point at a tree from before the ledger/
    layout, and an editable install of another checkout would otherwise fill in the missing module."""
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if Path(module.__file__).resolve().is_relative_to(CODE):
            return module
    return None


store = _module("nomira.ledger.store", "nomira." + "store")
engine = _module("nomira.ledger.engine", "nomira." + "engine")  # None before PostgreSQL (SQLite only)
from nomira.collector.app import App  # noqa: E402
from nomira.collector.auth import Config  # noqa: E402

MODELS = ["claude-opus-4-7", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "gpt-5-codex"]
SOURCES = ["claude_code", "claude_code", "codex", "opencode"]
FEATURES = ["checkout", "search", "onboarding", "billing", "infra"]
WORKFLOWS = ["review", "refactor", "tests", "docs"]
CUSTOMERS = ["acme", "globex", "initech", ""]
ENVS = ["dev", "ci", "prod"]
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


def session_events(n: int, seed: int = 3):
    """A realistic history: sessions of 50-150 calls by one developer in one project, a few seconds to
    a minute apart, tags fixed per session (what agents ship), instead of `events`' random tags per call."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    i = s = 0
    while i < n:
        s += 1
        dev = rng.randint(1, 40)
        at = now - timedelta(seconds=rng.randint(0, 90 * 86400))
        tags = {"developer": f"dev{dev}", "project": f"project-{(dev * 7 + rng.randint(0, 3)) % 60 + 1}",
                "tenant": f"team{dev % 3 + 1}", "feature": rng.choice(FEATURES), "workflow": rng.choice(WORKFLOWS),
                "customer": rng.choice(CUSTOMERS) or None, "env": rng.choice(ENVS)}
        source, model = rng.choice(SOURCES), rng.choice(MODELS)
        for _ in range(min(rng.randint(50, 150), n - i)):
            at += timedelta(seconds=rng.randint(3, 60))
            yield {"schema_version": 1, "source": source, "provider": "anthropic", "model": model,
                   "occurred_at": at.isoformat(), "tokens": {"input": rng.randint(1, 50),
                                                             "output": rng.randint(10, 2000),
                                                             "cache_read": rng.randint(0, 150000),
                                                             "cache_write_5m": rng.randint(0, 5000)},
                   "cost_usd": rng.random() * 0.05, "cost_source": "bundled:2026-11-24", "regime": "subscription",
                   "tags": dict(tags), "message_id": f"msg_{seed}_{i}", "session_id": f"r{seed}_{s}"}
            i += 1


def call(app, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    out = {}

    def start_response(status, headers):
        out["status"] = int(status.split()[0])
    path, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/json", "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": "127.0.0.1"}
    data = b"".join(app(environ, start_response))
    return out["status"], data


def start_collectors(target, n: int, workers: int, log_dir: Path) -> list[tuple[subprocess.Popen, int]]:
    env = {**os.environ, "PYTHONPATH": str(CODE)}
    for var in ("NOMIRA_DASHBOARD_PASSWORD", "NOMIRA_INGEST_TOKEN"):
        env.pop(var, None)
    procs = []
    for i in range(n):
        log = log_dir / f"serve{i}.log"
        with open(log, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "nomira", "serve", "--port", "0", "--db", str(target),
                                     "--workers", str(workers)], cwd=CODE, env=env, stderr=err)
        deadline = time.monotonic() + 60
        while not (m := re.search(r"127\.0\.0\.1:(\d+)/", log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"collector did not start: {log.read_text()}")
            time.sleep(0.05)
        procs.append((proc, int(m.group(1))))
    return procs


def send(bodies: list[tuple[int, bytes]], ports: list[int], senders: int) -> float:
    """Post every body, `senders` at a time (each on its own keep-alive connection); seconds taken."""
    failures = []

    def sender(k: int):
        port = ports[k % len(ports)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for n, body in bodies[k::senders]:
            conn.request("POST", "/v1/usage/events", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            answer = r.read()
            if r.status != 200 or json.loads(answer)["accepted"] != n:
                failures.append((r.status, answer[:200]))
        conn.close()
    t = time.perf_counter()
    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failures:
        raise SystemExit(f"ingest failed: {failures[:3]}")
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--first", type=int, default=100_000, help="events sent by one sender before the others join")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--processes", type=int, default=None, help="collector processes (default: 1 SQLite, 2 PostgreSQL)")
    ap.add_argument("--workers", type=int, default=4, help="worker threads per collector process")
    ap.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--db", type=engine.db_arg if engine else Path, default=None,
                    help="an existing empty store (path or URL)")
    ap.add_argument("--pages-only", action="store_true", help="reuse an existing --db: time the pages only")
    ap.add_argument("--cpu", action="store_true", help="CPU time per event of the ingest path, in this process")
    ap.add_argument("--sessions", action="store_true",
                    help="--cpu: a realistic history (sessions of 50-150 calls, tags fixed per session)")
    ap.add_argument("--rounds", type=int, default=3, help="--cpu: fresh stores measured (best is reported)")
    ap.add_argument("--code", type=Path, default=ROOT, help="the checkout whose `nomira` is measured (--cpu, and the collectors)")
    args = ap.parse_args(argv)
    if args.cpu:
        return bench_cpu(args)
    if args.pages_only:
        if not engine.is_postgres(args.db):
            warm(args.db)
        return bench_pages(App(args.db, Config(host="127.0.0.1")))
    tmp = Path(tempfile.mkdtemp(prefix="nomira-bench-"))
    cluster = None
    target = args.db
    if target is None and args.engine == "postgresql":
        sys.path.insert(0, str(ROOT / "tests"))
        from pg_cluster import Cluster
        cluster = Cluster.start(durable=True, extra=("-c shared_buffers=512MB",))
        target = cluster.url()
    target = target or tmp / "bench.db"
    pg = engine.is_postgres(target)
    processes = args.processes or (2 if pg else 1)
    print(f"engine {'postgresql' if pg else 'sqlite'}: {args.events:,} events, batches of {args.batch}, "
          f"{processes} collector process(es) x {args.workers} workers")
    store.open_db(target).close()  # migrated before the collectors start
    t = time.perf_counter()
    ordered = sorted(events(args.events), key=lambda e: (e["tags"]["developer"], e["occurred_at"]))
    bodies = [(len(ordered[i:i + args.batch]), json.dumps({"events": ordered[i:i + args.batch]}).encode())
              for i in range(0, len(ordered), args.batch)]
    print(f"generated and encoded in {time.perf_counter() - t:.1f} s")
    procs = start_collectors(target, processes, args.workers, tmp)
    try:
        ports = [port for _, port in procs]
        first = max(1, min(len(bodies), args.first // args.batch))
        pids = [proc.pid for proc, _ in procs]
        print(f"load average {os.getloadavg()[0]:.1f}")
        for senders, part in ((1, bodies[:first]), (args.senders, bodies[first:])):
            if not part:
                continue
            n = sum(k for k, _ in part)
            cpu = _cpu(pids), _server_cpu(cluster), time.process_time()
            dt = send(part, ports, senders)
            used = _cpu(pids) - cpu[0], _server_cpu(cluster) - cpu[1], time.process_time() - cpu[2]
            print(f"ingest, {senders} sender(s): {n:,} events in {dt:.1f} s = {n / dt:,.0f} events/s "
                  f"(HTTP + validation + store); CPU per event: collectors {used[0] / n * 1e6:.0f} us"
                  + (f", PostgreSQL {used[1] / n * 1e6:.0f} us" if cluster else "")
                  + f", senders {used[2] / n * 1e6:.0f} us; load average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(30)
    db = store.open_db(target)
    print(f"store holds {db.execute('SELECT COUNT(*) FROM events').fetchone()[0]:,} events")
    if not pg:
        warm(target)
    bench_pages(App(target, Config(host="127.0.0.1")))
    if cluster:
        cluster.stop()
    return 0


def warm(path) -> None:
    """The store in the OS page cache, as on a collector that has been serving."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def bench_cpu(args) -> int:
    """Ingest CPU per event in this process, best of --rounds fresh stores: through the WSGI app
    (JSON parsing, validation, store, answer), then `store.ingest` alone on already-parsed events."""
    history = session_events if args.sessions else events
    ordered = sorted(history(args.events), key=lambda e: (e["tags"]["developer"], e["occurred_at"]))
    bodies = [json.dumps({"events": ordered[i:i + args.batch]}).encode() for i in range(0, len(ordered), args.batch)]
    pg = engine is not None and engine.is_postgres(args.db)
    if args.engine == "postgresql" and args.db is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from pg_cluster import Cluster
        cluster = Cluster.start(durable=True, extra=("-c shared_buffers=512MB",))
        args.db, pg = cluster.url(), True
    else:
        cluster = None
    print(f"code {CODE}, engine {'postgresql' if pg else 'sqlite'}: {args.events:,} "
          f"{'session-history' if args.sessions else 'bench'} events in batches of "
          f"{args.batch}, best of {args.rounds}; load average {os.getloadavg()[0]:.1f}")
    results = {"app": [], "store": []}
    folds: dict[str, list[float]] = {"app": [], "store": []}
    for r in range(args.rounds):
        for what in results:
            target = args.db if pg else Path(tempfile.mkdtemp(prefix="nomira-cpu-")) / "bench.db"
            if pg:
                _reset_schema(target)
            app = App(target, Config(host="127.0.0.1"))
            db = store.open_db(target)
            parsed = [json.loads(b)["events"] for b in bodies] if what == "store" else None
            server = _server_cpu(cluster)
            c, t = time.process_time(), time.perf_counter()
            if what == "app":
                for body in bodies:
                    status, answer = call(app, "POST", "/v1/usage/events", body)
                    assert status == 200, answer[:300]
            else:
                for batch in parsed:
                    store.ingest(db, batch)
            cpu, wall = time.process_time() - c, time.perf_counter() - t
            server = _server_cpu(cluster) - server
            results[what].append((cpu + server, cpu, server, wall))
            if hasattr(store, "fold"):  # 0020: what the ingest left pending, folded now (the cost it moved)
                c, server_fold = time.process_time(), _server_cpu(cluster)
                folded = store.fold(db)
                fold_cpu = time.process_time() - c + _server_cpu(cluster) - server_fold
                folds[what].append(fold_cpu)
                print(f"  round {r + 1} {what:<5}: fold of {folded:,} pending rows after it {fold_cpu:.2f} s CPU "
                      f"({fold_cpu / args.events * 1e6:.1f} us per event)", flush=True)
            n = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            assert n == args.events, n
            db.close()
            app.pool.close()
            if not pg:  # each round's store is ~150 MB at 50,000 events: gone with the round
                shutil.rmtree(Path(target).parent, ignore_errors=True)
            print(f"  round {r + 1} {what:<5}: {args.events / (cpu + server):,.0f} events per CPU second "
                  f"(this process {cpu:.2f} s, PostgreSQL server {server:.2f} s), wall {wall:.2f} s "
                  f"({args.events / wall:,.0f} events/s)", flush=True)
    for what, rows in results.items():
        best = min(rows)
        print(f"best {what:<5}: {args.events / best[0]:,.0f} events per CPU second "
              f"({best[0] / args.events * 1e6:.1f} us CPU per event: {best[1] / args.events * 1e6:.1f} here, "
              f"{best[2] / args.events * 1e6:.1f} PostgreSQL)")
        if folds[what]:
            print(f"best {what:<5} fold: {min(folds[what]) / args.events * 1e6:.1f} us CPU per event (what the ingest "
                  f"left pending, folded after it)")
    if cluster:
        cluster.stop()
    return 0


def _reset_schema(url: str) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _server_cpu(cluster) -> float:
    """CPU seconds of the bench's own PostgreSQL server so far (postmaster and every backend alive)."""
    return 0.0 if cluster is None else _cpu([cluster.pid], children=True)


def _cpu(pids, children: bool = False) -> float:
    """CPU seconds (user + system) the live processes `pids` (and, if asked, their children) used so far."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) in pids or (children and int(fields[1]) in pids):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def bench_pages(app, paths=PAGES) -> int:
    """Each page 5 times: the first (nothing of this view cached by the process: what a view costs
    after any ingest) and the median (repeat views until the store changes)."""
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; wall ms (CPU ms of this process)")
    failed = 0
    for path in paths:
        times, cpus = [], []
        for _ in range(5):
            t, c = time.perf_counter(), time.process_time()
            status, _ = call(app, "GET", path)
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
            if status != 200:  # e.g. 503: PostgreSQL's statement timeout ended the query
                print(f"{path:<58} HTTP {status} after {times[-1] * 1000:.0f} ms", flush=True)
                failed += 1
                break
        else:
            print(f"{path:<58} first {times[0] * 1000:6.1f} ({cpus[0] * 1000:6.1f}) ms   "
                  f"median {sorted(times)[2] * 1000:6.1f} ({sorted(cpus)[2] * 1000:6.1f}) ms", flush=True)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
