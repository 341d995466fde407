"""Usage-only pipeline: schema guard, dedup key, store, ship (local/remote/spool), export, replay."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import FIXTURES
from nomira.ledger import store
from nomira.cli import main
from nomira.ledger.exchange import parse_export
from nomira.ledger.spool import Spool
from nomira.ledger.wire import SchemaError, assert_no_content, dedup_key

BOTH = ["--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "codex")]


def good(**over):
    e = {"schema_version": 1, "source": "claude_code", "provider": "anthropic", "model": "claude-opus-4-7",
         "occurred_at": "2025-11-03T14:22:07.913Z", "tokens": {"input": 10, "output": 20, "cache_read": 30},
         "cost_usd": 0.001, "cost_source": "bundled:2026-11-24", "regime": "subscription",
         "tags": {"developer": "ana", "project": "-home-ana-src-shop"}, "message_id": "msg_1",
         "session_id": "3f9a6c2e"}
    e.update(over)
    return e


@pytest.mark.parametrize("bad,field", [
    ({"prompt": "fix the tests"}, "prompt"),
    ({"content": "hello"}, "content"),
    ({"text": "hello"}, "text"),
    ({"messages": [{"role": "user"}]}, "messages"),
    ({"tool_input": {"command": "rm -rf /"}}, "tool_input"),
    ({"tags": {"project": "/home/ana/src/shop"}}, "tags.project"),
    ({"tags": {"feature": "C:\\\\Users\\\\ana\\\\secret.txt"}}, "tags.feature"),
    ({"tags": {"customer": "notes.md"}}, "tags.customer"),
    ({"tags": {"workflow": "x" * 65}}, "tags.workflow"),
    ({"tags": {"prompt": "hi"}}, "tags.prompt"),
    ({"tokens": {"input": 1, "completion_text": 3}}, "tokens.completion_text"),
    ({"tokens": {"input": -1}}, "tokens.input"),
    ({"session_id": "line one\nline two"}, "session_id"),
    ({"model": "x" * 200}, "model"),
    ({"regime": "free"}, "regime"),  # (a regime outside the three: its money was in neither KPI)
    ({"regime": "API"}, "regime"),
])
def test_content_fields_rejected(bad, field):
    with pytest.raises(SchemaError) as exc:
        assert_no_content(good(**bad))
    assert exc.value.field == field


def test_valid_event_passes():
    assert_no_content(good())
    assert_no_content(good(model="openai/gpt-5", tags={"developer": "ana", "env": "prod"}))
    for regime in ("subscription", "api", "mixed"):
        assert_no_content(good(regime=regime))


def test_dedup_key_priority_and_scope():
    base = good()
    assert dedup_key(base) == dedup_key(dict(base, cost_usd=9.99, cost_source="override"))  # re-pricing
    assert dedup_key(base) != dedup_key(dict(base, tags={"developer": "bob"}))
    assert dedup_key(base) != dedup_key(dict(base, tags={"developer": "ana", "tenant": "t2"}))
    with_tool = dict(base, tool_call_id="toolu_1")
    assert dedup_key(with_tool) == dedup_key(dict(with_tool, message_id="other"))  # tool id wins
    fp = dict(base, message_id=None)
    assert dedup_key(fp) == dedup_key(dict(fp, occurred_at="2025-11-03T14:22:07.913+00:00"))
    assert dedup_key(fp) != dedup_key(dict(fp, tokens={"input": 11, "output": 20, "cache_read": 30}))


@pytest.fixture
def db(store_target):
    return store.open_db(store_target)


def test_same_call_from_two_sources_counts_once_and_is_superseded_not_lost(db):
    log = good()
    hook = dict(good(), source="claude_code_hook", cost_usd=0.002, cost_source="override")
    assert store.ingest(db, [log]) == (1, 0)
    assert store.ingest(db, [hook]) == (0, 1)
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    # the hook (agent-native) copy wins over the transcript copy that arrived first; both raw rows stay
    assert db.execute("SELECT raw_id, source_channel, cost_usd FROM events").fetchall() == [(2, "hook", 0.002)]
    assert db.execute("SELECT raw_id, reason FROM superseded_events").fetchall() == [(1, "lower_priority")]
    assert db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 2


def test_later_streaming_snapshot_replaces_and_rollups_follow(db):
    partial = good(tokens={"input": 10, "output": 1}, cost_usd=0.0001)
    final = good(tokens={"input": 10, "output": 300}, cost_usd=0.0076)
    store.ingest(db, [partial])
    store.ingest(db, [final, partial])
    assert db.execute("SELECT output, cost_usd FROM events").fetchall() == [(300, 0.0076)]
    assert db.execute("SELECT calls, output, cost_usd FROM rollups WHERE grain = 'day'").fetchall() == [(1, 300, 0.0076)]


def test_ship_twice_same_row_count(store_target, capsys):
    dbp = store_target
    assert main(["--ship", *BOTH, "--db", str(dbp), "--developer", "ana"]) == 0
    n1 = store.open_db(dbp).execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert main(["ship", *BOTH, "--db", str(dbp), "--developer", "ana", "--no-cache"]) == 0
    db = store.open_db(dbp)
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == n1 == 9
    assert db.execute("SELECT grain, SUM(calls) FROM rollups GROUP BY grain ORDER BY grain").fetchall() == [
        (g, 9) for g in sorted(store.GRAINS)]
    # nothing in the store can hold content: no content-like column anywhere
    cols = {d[0] for t in ("events", "raw_events", "rollups") for d in db.execute(f"SELECT * FROM {t} LIMIT 0").description}
    assert not cols & {"prompt", "content", "text", "messages", "completion", "tool_input", "path"}


class FakeCollector:
    """A loopback collector that can be down; stores through nomira.ledger.store like the real one."""

    def __init__(self, tmp_path, port=0):
        self.db = store.open_db(tmp_path / "collector.db")
        self.mode = "up"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.mode == "503":
                    return self._send(503, {"error": "maintenance"})
                try:
                    for e in body["events"]:
                        assert_no_content(e)
                        if e["model"] == "reject-me":
                            raise SchemaError("model", "rejected for the test")
                except SchemaError as exc:
                    return self._send(400, {"error": str(exc), "field": exc.field})
                accepted, deduped = store.ingest(fake.db, body["events"])
                self._send(200, {"status": "accepted", "accepted": accepted, "deduped": deduped})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self):
        return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_collector_down_then_up_nothing_lost_nothing_duplicated(tmp_path, isolated_env):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
    s.close()  # nothing listens here: connection refused
    args = ["ship", *BOTH, "--developer", "ana", "--remote", f"http://127.0.0.1:{dead_port}"]
    import nomira.ledger.spool as spool_mod
    real_flush = spool_mod.Spool.flush
    spool_mod.Spool.flush = lambda self, post, **kw: real_flush(self, post, sleep=lambda s: None, **kw)
    try:
        assert main(args) == 1
        spool = Spool(isolated_env / ".local/state/nomira/spool")
        assert len(spool.batches()) == 1
        collector = FakeCollector(tmp_path, port=dead_port)  # the collector comes back
        try:
            assert main(args) == 0
            assert collector.count() == 9 and not spool.batches()
            assert main(args) == 0  # nothing new, nothing re-sent
            assert collector.count() == 9
            assert collector.db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 9
        finally:
            collector.close()
    finally:
        spool_mod.Spool.flush = real_flush


def test_spool_backoff_then_delivery_and_dead_letter(tmp_path):
    collector = FakeCollector(tmp_path)
    try:
        from nomira.ledger.ship import http_post
        spool = Spool(tmp_path / "spool")
        events = [good(message_id=f"msg_{i}") for i in range(5)] + [good(model="reject-me", message_id="msg_x")]
        spool.put(events)
        collector.mode = "503"
        delays = []
        r = spool.flush(http_post(collector.url, None), max_attempts=3, sleep=delays.append)
        assert r.delivered == 0 and r.pending_batches == 1 and "503" in r.error
        assert len(delays) == 2 and delays[1] > delays[0] * 0.6  # exponential, with jitter
        collector.mode = "up"
        r = spool.flush(http_post(collector.url, None), sleep=delays.append)
        assert (r.delivered, r.dead_lettered, r.pending_batches) == (5, 1, 0)
        assert collector.count() == 5
        dead = [json.loads(line) for line in spool.dead_letter.read_text().splitlines()]
        assert [d["event"]["message_id"] for d in dead] == ["msg_x"] and dead[0]["status"] == 400
    finally:
        collector.close()


def test_old_schema_db_migrated_in_place(store_target):
    path = store_target
    old = store.open_db(path, migrate_upto=1)
    old.execute("INSERT INTO raw_events (received_at, dedup_key, body) VALUES ('2025-11-01', 'k1', '{}')")
    old.execute("INSERT INTO events (dedup_key, developer, project, source, provider, model, occurred_at, day, "
                "input, output, cache_read, cache_write_5m, cache_write_1h, reasoning, cost_usd, regime) VALUES "
                "('k1', 'ana', 'shop', 'claude_code', 'anthropic', 'claude-opus-4-7', '2025-11-01T10:00:00+00:00', "
                "'2025-11-01', 1, 2, 3, 4, 5, 0, 0.5, 'subscription')")
    old.close()
    db = store.open_db(path)
    names = [r[0] for r in db.execute("SELECT name FROM _nomira_migrations ORDER BY name")]
    assert names == [m for m, _ in store.MIGRATIONS]
    assert db.execute("SELECT dedup_key, tenant, developer FROM events").fetchall() == [("k1", "", "ana")]
    assert db.execute("SELECT grain, calls, input, output, cost_usd FROM rollups ORDER BY grain").fetchall() == [
        (g, 1, 1, 2, 0.5) for g in sorted(store.GRAINS)]
    assert store.open_db(path).execute("SELECT COUNT(*) FROM _nomira_migrations").fetchone()[0] == len(
        store.MIGRATIONS)


def test_replay_reproduces_canonical_table_exactly(store_target, capsys):
    dbp = store_target
    main(["ship", *BOTH, "--db", str(dbp), "--developer", "ana"])
    db = store.open_db(dbp)
    store.ingest(db, [good(tokens={"input": 10, "output": 1}), good(tokens={"input": 10, "output": 300}), good()])
    before = store.canonical_rows(db)
    rollups = db.execute("SELECT * FROM rollups ORDER BY 1,2,3,4,5,6,7").fetchall()
    statuses = db.execute("SELECT * FROM superseded_events ORDER BY raw_id").fetchall()
    assert main(["--replay", "--db", str(dbp)]) == 0
    assert store.canonical_rows(db) == before
    assert db.execute("SELECT * FROM rollups ORDER BY 1,2,3,4,5,6,7").fetchall() == rollups
    assert db.execute("SELECT * FROM superseded_events ORDER BY raw_id").fetchall() == statuses


def test_export_import_roundtrip_and_tenant_forced(tmp_path, store_target, capsys):
    out = tmp_path / "events.json"
    assert main(["--export", str(out), *BOTH, "--tenant", "acme", "--developer", "ana"]) == 0
    events = parse_export(out.read_bytes())
    assert len(events) == 9 and all(e["tags"]["tenant"] == "acme" for e in events)
    assert main(["import", str(out), "--db", str(store_target), "--tenant", "zeta"]) == 0
    db = store.open_db(store_target)
    assert db.execute("SELECT DISTINCT tenant FROM events").fetchall() == [("zeta",)]


def test_an_export_files_calls_under_its_machines_days(tmp_path, store_target, capsys):
    """An export carries the exporting machine's zone (as a shipped batch does): imported, a developer's
    calls are filed under that zone's days, not UTC's; a file naming no zone, or a bad one, as before."""
    out = tmp_path / "events.json"
    assert main(["--export", str(out), *BOTH, "--developer", "ana", "--timezone", "Pacific/Kiritimati"]) == 0
    doc = json.loads(out.read_text())
    assert doc["day_zone"] == "Pacific/Kiritimati"
    assert main(["import", str(out), "--db", str(store_target)]) == 0
    db = store.open_db(store_target)
    assert db.execute("SELECT DISTINCT zone FROM day_zones").fetchall() == [("Pacific/Kiritimati",)]
    assert db.execute("SELECT DISTINCT day_zone FROM raw_events").fetchall() == [("Pacific/Kiritimati",)]
    out.write_text(json.dumps(dict(doc, day_zone="Mars/Olympus")))
    assert main(["import", str(out), "--db", str(tmp_path / "other.db")]) == 2
    assert "day_zone" in capsys.readouterr().err


def test_an_export_from_a_posix_zone_says_it_names_no_day_zone(tmp_path, capsys, monkeypatch):
    """TZ=IST-5:30 (a POSIX string: local reports use it, a store cannot be told it): the export names no
    day zone, and says so with what to do, instead of leaving it out in silence."""
    monkeypatch.setenv("TZ", "IST-5:30")
    out = tmp_path / "events.json"
    assert main(["--export", str(out), *BOTH]) == 0
    assert "day_zone" not in json.loads(out.read_text())
    err = capsys.readouterr().err
    assert "'IST-5:30' is no IANA zone name" in err and "--timezone" in err


def test_import_rejects_content_naming_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"events": [good(), dict(good(), prompt="secret")]}))
    assert main(["import", str(bad), "--db", str(tmp_path / "i.db")]) == 2
    assert "events[1].prompt" in capsys.readouterr().err

