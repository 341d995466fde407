"""The PostgreSQL engine: several collector processes on one database, `nomira migrate`, the
missing-driver message, the pool and timeouts. (The store and collector suites run on both
engines through the `store_target` fixture.)"""
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import FIXTURES
from nomira.ledger import store
from nomira.cli import main
from test_pipeline import good

ROOT = Path(__file__).resolve().parent.parent
BOTH = ["--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "codex")]


def _serve(url: str, log: Path, env: dict) -> tuple[subprocess.Popen, int]:
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "nomira", "serve", "--port", "0", "--db", url,
                                 "--workers", "4"], cwd=ROOT, env=env, stderr=err)
    deadline = time.monotonic() + 30
    while not (m := re.search(r"127\.0\.0\.1:(\d+)/", log.read_text())):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return proc, int(m.group(1))


def _post(port: int, events: list[dict]) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/usage/events", data=json.dumps(
        {"events": events}).encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _state(db) -> dict:
    """Everything a store's readers see, less what depends on arrival order (raw ids, times)."""
    cols = [c for c in store.EVENT_COLUMNS if c not in ("raw_id", "received_at")]
    return {"events": db.execute(f"SELECT {', '.join(cols)} FROM events ORDER BY dedup_key").fetchall(),
            "rollups": db.execute("SELECT * FROM rollups ORDER BY grain, tenant, day, developer, project, model, "
                                  "regime").fetchall(),
            "raw": (db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0],
                    db.execute("SELECT COUNT(*) FROM superseded_events").fetchone()[0]),
            "superseded": store.setting_value(db, "superseded_count")}


def test_two_collector_processes_on_one_database_lose_duplicate_or_double_count_nothing(pg_cluster, tmp_path):
    shared, single = f"c{os.getpid()}a", f"c{os.getpid()}b"
    for schema in (shared, single):
        pg_cluster.admin(f"CREATE SCHEMA {schema}")
    rng = random.Random(19)
    unique = [good(message_id=f"msg_{i}", tags={"developer": f"dev{i % 7}", "project": f"p{i % 5}"},
                   occurred_at=f"2026-11-{1 + i % 28:02d}T10:00:00Z", tokens={"input": 10 + i, "output": 300 + i},
                   cost_usd=(i % 13) / 1024) for i in range(2400)]  # dyadic: sums exact in any order
    partial = [dict(e, tokens={"input": e["tokens"]["input"], "output": 1}, cost_usd=0.0) for e in unique[::2]]
    rng.shuffle(unique)
    batches = [unique[i:i + 100] for i in range(0, len(unique), 100)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path)}
    for var in ("NOMIRA_DASHBOARD_PASSWORD", "NOMIRA_INGEST_TOKEN"):
        env.pop(var, None)
    url = pg_cluster.url(schema=shared)
    store.open_db(url).close()  # migrated once (the two processes would also agree on who migrates)
    procs = [_serve(url, tmp_path / f"serve{i}.log", env) for i in range(2)]
    try:
        answers, errors = [], []

        def sender(port, events):
            try:
                for i in range(0, len(events), 100):
                    answers.append(_post(port, events[i:i + 100]))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))
        for i in range(0, len(partial), 100):  # streaming snapshots first: the full copies then replace them
            answers.append(_post(procs[0][1], partial[i:i + 100]))
        # both processes get every batch at the same moment, two senders each: the same calls race
        threads = [threading.Thread(target=sender, args=(port, [e for b in batches[half::2] for e in b]))
                   for _p, port in procs for half in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(10)
    sent = len(partial) + 2 * len(unique)
    assert sum(a["accepted"] for a in answers) == len(unique)  # each call accepted once, by one process
    assert sum(a["accepted"] + a["deduped"] for a in answers) == sent
    db = store.open_db(url)
    ref = store.open_db(pg_cluster.url(schema=single))
    for batch in [partial] + batches * 2:  # one process, one batch after the other
        store.ingest(ref, batch)
    got, want = _state(db), _state(ref)
    assert got["events"] == want["events"] and len(got["events"]) == len(unique)
    assert got["rollups"] == want["rollups"]
    assert got["raw"] == want["raw"] == (sent, sent - len(unique))
    assert got["superseded"] == want["superseded"] == str(sent - len(unique))
    day = db.execute("SELECT SUM(calls), SUM(output) FROM rollups WHERE grain = 'day'").fetchone()
    assert day == (len(unique), sum(e["tokens"]["output"] for e in unique))


def test_migrate_sqlite_to_postgres_and_back_verifies_counts_and_totals(tmp_path, pg_url, capsys):
    src = tmp_path / "team.db"
    assert main(["ship", *BOTH, "--db", str(src), "--developer", "ana"]) == 0
    db = store.open_db(src)
    store.ingest(db, [good(tokens={"input": 10, "output": 1}), good(tokens={"input": 10, "output": 300})])
    key = store.create_tenant(db, "acme")
    store.ingest(db, [good(message_id="msg_acme")], tenant="acme")
    capsys.readouterr()
    assert main(["--json", "migrate", "--from", f"sqlite:///{src}", "--to", pg_url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verified"] and out["copied"]["events"] == 11 and out["copied"]["raw_events"] == 12
    assert out["copied"]["tenants"] == 1 and out["copied"]["api_keys"] == 1
    pg = store.open_db(pg_url)
    assert store.canonical_rows(pg) == store.canonical_rows(db)
    assert store.store_id(pg) == store.store_id(db)  # shippers see the same store
    assert store.tenant_for_key(pg, key) == "acme"
    # the copy is a working store: new raw ids follow the copied ones, new tenants get new ids
    assert store.ingest(pg, [good(message_id="msg_after")]) == (1, 0)
    assert pg.execute("SELECT MAX(id) FROM raw_events").fetchone()[0] == 13
    store.create_tenant(pg, "zeta")
    assert [t["name"] for t in store.list_tenants(pg)] == ["acme", "zeta"]
    # never into a store that already holds data
    assert main(["migrate", "--from", str(src), "--to", pg_url]) == 1
    assert "already holds" in capsys.readouterr().err
    # and back to SQLite
    back = tmp_path / "back.db"
    assert main(["--json", "migrate", "--from", pg_url, "--to", f"sqlite:///{back}"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"]
    assert store.canonical_rows(store.open_db(back)) == store.canonical_rows(pg)


def test_postgres_url_without_psycopg_is_one_line_and_nomira_imports(tmp_path):
    blocker = tmp_path / "blocked" / "psycopg"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('psycopg blocked for this test')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker.parent}{os.pathsep}{ROOT}", "XDG_DATA_HOME": str(tmp_path)}
    probe = ("import sys, nomira.ledger.store, nomira.ledger.rollups, nomira.collector.app, nomira.commands.serve, "
             "nomira.commands.migrate; print('psycopg' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
    for argv in (["serve", "--db", "postgresql://nomira@db.invalid/nomira"],
                 ["tenant", "list", "--db", "postgresql://nomira@db.invalid/nomira"],
                 ["migrate", "--from", str(tmp_path / "x.db"), "--to", "postgres://nomira@db.invalid/nomira"]):
        if argv[0] == "migrate":
            store.open_db(tmp_path / "x.db").close()
        r = subprocess.run([sys.executable, "-m", "nomira", *argv], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 1, (argv, r.stderr)
        assert r.stderr.count("\n") == 1 and "pip install 'nomira[postgres]'" in r.stderr, r.stderr


def test_nomira_db_may_name_a_postgres_store(pg_url, monkeypatch, capsys):
    monkeypatch.setenv("NOMIRA_DB", pg_url)
    assert main(["--json", "tenant", "create", "acme"]) == 0
    assert json.loads(capsys.readouterr().out)["tenant"] == "acme"
    assert [t["name"] for t in store.list_tenants(store.open_db(pg_url))] == ["acme"]


def test_statement_timeout_and_a_broken_pool_connection_is_replaced(pg_url, monkeypatch):
    monkeypatch.setenv("NOMIRA_PG_STATEMENT_TIMEOUT", "200")
    import psycopg
    db = store.open_db(pg_url)
    with pytest.raises(psycopg.errors.QueryCanceled):
        db.execute("SELECT pg_sleep(2)")
    from nomira.commands.serve import make_app
    app = make_app(pg_url, "127.0.0.1", db_pool=2)

    def get(path):
        out = {}
        body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "HTTP_HOST": "localhost",
                             "REMOTE_ADDR": "127.0.0.1", "wsgi.input": None},
                            lambda status, headers: out.setdefault("status", int(status.split()[0]))))
        return out["status"], body
    assert get("/healthz")[0] == 200
    # the server ends every connection of the collector (a restart, a failover)
    pids = [r[0] for r in db.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_stat_activity%'")]
    db.execute(f"SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[{','.join(map(str, pids)) or 'NULL'}]::int[])"
               " AS pid")
    status, body = get("/healthz")
    assert status in (200, 503) and b"Traceback" not in body
    assert get("/healthz")[0] == 200  # a fresh connection replaced the broken one
    assert app.pool.size == 2


def test_a_view_past_the_statement_timeout_is_a_422_not_an_outage(pg_url, monkeypatch):
    """A dashboard view that runs past the statement timeout says the view is too wide (422), not that the
    store is down (503, which a shipper would read as "retry later"); the pool's connection stays usable."""
    monkeypatch.setenv("NOMIRA_PG_STATEMENT_TIMEOUT", "300")
    from nomira.collector import queries
    from nomira.commands.serve import make_app
    app = make_app(pg_url, "127.0.0.1", db_pool=1)
    real = queries.totals

    def slow_totals(db, scope):
        db.execute("SELECT pg_sleep(3)")
        return real(db, scope)

    def get(path, accept="application/json"):
        out = {}
        body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "HTTP_HOST": "localhost",
                             "HTTP_ACCEPT": accept, "REMOTE_ADDR": "127.0.0.1", "wsgi.input": None},
                            lambda status, headers: out.setdefault("status", int(status.split()[0]))))
        return out["status"], body
    monkeypatch.setattr(queries, "totals", slow_totals)
    status, body = get("/index.json")
    assert status == 422 and b"statement timeout" in body and b"Traceback" not in body, body[:300]
    status, body = get("/", accept="text/html")
    assert status == 422 and b"shorter period" in body and b"Traceback" not in body
    monkeypatch.setattr(queries, "totals", real)
    assert get("/index.json")[0] == 200  # the one pooled connection was rolled back and lent again
    assert app.pool.size == 1


def test_concurrent_writers_replacing_the_same_calls_count_each_once(pg_url):
    """Two connections ingest the same final snapshots at the same instant, round after round:
    each replacement is counted once (the row is read locked, as it is after the other's commit)."""
    dbs = [store.open_db(pg_url) for _ in range(2)]
    rounds, per = 30, 20
    finals = [[good(message_id=f"m{r}_{i}", tokens={"input": 1, "output": 100 + i}) for i in range(per)]
              for r in range(rounds)]
    for batch in finals:
        store.ingest(dbs[0], [dict(e, tokens={"input": 1, "output": 1}) for e in batch])
    barrier, errors = threading.Barrier(2), []

    def writer(db):
        try:
            for batch in finals:
                barrier.wait(10)
                store.ingest(db, batch)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
            barrier.abort()
    threads = [threading.Thread(target=writer, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    want_output = sum(e["tokens"]["output"] for b in finals for e in b)
    assert dbs[0].execute("SELECT SUM(output) FROM events").fetchone()[0] == want_output
    for grain in store.GRAINS:
        assert dbs[0].execute("SELECT SUM(calls), SUM(output) FROM rollups WHERE grain = ?", (grain,)).fetchone() == (
            rounds * per, want_output), grain


def test_a_fold_committing_while_a_writer_replaces_its_calls_counts_each_once(pg_url):
    """Copies replacing calls still queued for the fold (0020), and another connection's fold committing
    just as the writer takes them out of the queue (its reads do not wait for the fold): a call the
    fold summed meanwhile is taken back, never counted twice in the folded grains (hour and tag rollups
    were over: the writer had read it queued)."""
    writer, folder = store.open_db(pg_url), store.open_db(pg_url)
    per = 15
    for output in (1, 2):  # (the second copies are queued call by call, each in place of the first)
        store.ingest(writer, [good(message_id=f"q{i}", tokens={"input": 1, "output": output}) for i in range(per)])
    real = writer.execute

    def execute(sql, *args):
        if sql.lstrip().startswith("DELETE FROM rollup_pending"):  # (the fold commits first)
            store.fold(folder)
        return real(sql, *args)
    writer.execute = execute
    store.ingest(writer, [good(message_id=f"q{i}", tokens={"input": 1, "output": 50 + i}) for i in range(per)])
    writer.execute = real
    store.fold(writer)
    want = writer.execute("SELECT COUNT(*), SUM(output) FROM events").fetchone()
    assert want == (per, sum(50 + i for i in range(per)))
    assert writer.execute("SELECT SUM(calls), SUM(output) FROM hour_rollups").fetchone() == want
    assert writer.execute("SELECT SUM(calls), SUM(output) FROM tag_rollups WHERE tag = 'source'").fetchone() == want


def test_new_calls_go_by_copy_and_a_conflicting_batch_by_staging(pg_url):
    """A batch of new calls is COPied straight into `events`; one that meets a stored key or repeats
    a key falls back (savepoint) to the staging INSERT ... ON CONFLICT: the same answers and totals."""
    db = store.open_db(pg_url)
    assert store.ingest(db, [good(message_id=f"c{i}") for i in range(5)]) == (5, 0)
    assert store.ingest(db, [good(message_id="c2"), good(message_id="c9"), good(message_id="c9")]) == (1, 2)
    assert store.ingest(db, [good(message_id="c10")]) == (1, 0)
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 7
    assert db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 9
    assert db.execute("SELECT COUNT(*) FROM superseded_events").fetchone()[0] == 2
    assert db.execute("SELECT SUM(calls) FROM rollups WHERE grain = 'day'").fetchone()[0] == 7


def test_a_temp_table_made_in_a_rolled_back_transaction_is_made_again(pg_url):
    db = store.open_db(pg_url)
    ddl = "CREATE TEMP TABLE IF NOT EXISTS t_once (a INTEGER)"
    db.execute("BEGIN")
    db.execute(ddl)
    db.execute("ROLLBACK")
    db.execute("BEGIN")
    db.execute("COMMIT")
    for _ in range(2):  # created by the first, skipped (no round trip) by the second
        db.execute("BEGIN")
        db.execute(ddl)
        db.execute("INSERT INTO t_once (a) VALUES (1)")
        db.execute("COMMIT")
    assert ddl in db.temp_tables
