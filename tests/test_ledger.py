"""The usage ledger (issue 24): immutable raw rows, canonical columns, source priority, replay,
the /v1/usage/events contract, redaction, the spool's records and serving views."""
import hashlib
import io
import itertools
import json
import re
import shutil
import sqlite3
import uuid

import pytest

from conftest import FIXTURES
from nomira.ledger import engine, store
from nomira.cli import main

MAIN_STORE = FIXTURES / "stores" / "main-0008.db"  # made by main before the ledger (see make_main_0008.py)


def call(**over):
    e = {"schema_version": 1, "source": "claude_code", "provider": "anthropic",
         "model": "claude-sonnet-4-5-20250929", "occurred_at": "2025-11-03T14:22:07.913Z",
         "tokens": {"input": 12, "output": 340, "cache_read": 20480, "cache_write_5m": 512},
         "cost_usd": 0.0123, "cost_source": "bundled:2026-11-24", "regime": "subscription",
         "tags": {"developer": "ana", "project": "shop"}, "message_id": "msg_01XFDUDYJgAACzvnptvVoYEL",
         "session_id": "3f9a6c2e-1b7d-4c55-9a0e-2f1d3c4b5a69"}
    e.update(over)
    return e


def table_hash(db) -> str:
    return hashlib.sha256(json.dumps(store.canonical_rows(db)).encode()).hexdigest()


def test_raw_rows_cannot_be_updated_or_deleted(tmp_path, store_target):
    db = store.open_db(store_target)
    store.ingest(db, [call()])
    for sql in ("UPDATE raw_events SET body = '{}'", "UPDATE raw_events SET source_channel = 'hook'",
                "DELETE FROM raw_events"):
        with pytest.raises(engine.errors(), match="raw_events"):  # SQLite: RAISE(ABORT); PostgreSQL: plpgsql
            db.execute(sql)
    assert json.loads(db.execute("SELECT body FROM raw_events").fetchone()[0])["message_id"] == call()["message_id"]


def test_raw_row_carries_its_provenance(tmp_path, store_target):
    db = store.open_db(store_target)
    store.ingest(db, [call()])
    rid, system, channel, version, digest, workspace, session, body = db.execute(
        "SELECT raw_event_id, source_system, source_channel, source_schema_version, source_payload_hash, "
        "workspace, agent_session_id, body FROM raw_events").fetchone()
    assert uuid.UUID(rid).version == 4 and (system, channel, version) == ("claude_code", "jsonl", "1")
    assert digest == hashlib.sha256(body.encode()).hexdigest()
    assert (workspace, session) == ("shop", call()["session_id"])


def test_canonical_row_has_the_design_columns(tmp_path, store_target):
    db = store.open_db(store_target)
    store.ingest(db, [call(model="us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
                      call(message_id=None, tool_call_id="toolu_01A09q90qw90lq917835lq9", tool_name="Bash",
                           tokens={"input": 5, "output": 7}, total_tokens=12, requests=2)])
    ids = [r[0] for r in db.execute("SELECT event_id FROM events")]
    rows = {r["event_type"]: r for r in (store.canonical_event(db, i) for i in ids)}
    msg, tool = rows["message_usage"], rows["tool_usage"]
    assert msg["event_id"] == str(uuid.uuid5(store.EVENT_ID_NAMESPACE, msg["dedup_key"]))
    assert (msg["model_raw"], msg["model_canonical"], msg["model_lineage"]) == (
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5")
    assert msg["total_tokens"] == 12 + 340 + 20480 + 512 and msg["requests"] == 1  # inferred when missing
    assert (msg["status"], msg["agent"], msg["workspace"]) == ("ok", "claude_code", "shop")
    assert msg["normalization_version"] == store.NORMALIZATION_VERSION
    assert msg["raw_event_id"] == db.execute("SELECT raw_event_id FROM raw_events WHERE id = ?",
                                             (msg["raw_id"],)).fetchone()[0]
    assert (tool["tool_name"], tool["total_tokens"], tool["requests"]) == ("Bash", 12, 2)


@pytest.mark.parametrize("order", list(itertools.permutations(["hook", "jsonl", "derived"])))
def test_one_call_by_three_channels_in_any_order_keeps_the_agent_native_copy(tmp_path, order, store_target):
    copies = {  # the same call; the channels disagree about its usage (the estimate least of all)
        "hook": call(source_channel="hook", tokens={"input": 12, "output": 340, "cache_read": 20480}, cost_usd=0.02),
        "jsonl": call(tokens={"input": 12, "output": 355, "cache_read": 20480}, cost_usd=0.03),
        "derived": call(source_channel="derived", tokens={"input": 12, "output": 900, "cache_read": 20480},
                        cost_usd=0.09),
    }
    db = store.open_db(store_target)
    for channel in order:
        store.ingest(db, [copies[channel]])
    assert db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 3
    assert db.execute("SELECT source_channel, status, output, cost_usd FROM events").fetchall() == [
        ("hook", "ok", 340, 0.02)]
    losers = db.execute("SELECT r.source_channel FROM superseded_events s JOIN raw_events r ON r.id = s.raw_id "
                        "ORDER BY 1").fetchall()
    assert losers == [("derived",), ("jsonl",)]
    (calls, output, cost), = db.execute("SELECT calls, output, cost_usd FROM rollups WHERE grain = 'day'")
    assert (calls, output, cost) == (1, 340, pytest.approx(0.02, abs=1e-12))
    # one batch carrying all three, in this order, decides the same
    db2 = store.open_db(tmp_path / "batch.db")
    store.ingest(db2, [copies[c] for c in order])
    assert db2.execute("SELECT source_channel, output FROM events").fetchall() == [("hook", 340)]
    assert db2.execute("SELECT COUNT(*) FROM superseded_events").fetchone()[0] == 2


def test_same_priority_keeps_the_more_complete_copy(tmp_path, store_target):
    db = store.open_db(store_target)
    store.ingest(db, [call(tokens={"input": 12, "output": 1}), call(), call(tokens={"input": 12, "output": 1})])
    assert db.execute("SELECT output FROM events").fetchall() == [(340,)]
    assert sorted(r[0] for r in db.execute("SELECT reason FROM superseded_events")) == ["duplicate", "less_complete"]


def _totals(db):
    return db.execute("SELECT tenant, day, model, COUNT(*), SUM(input), SUM(output), SUM(cache_read), "
                      "SUM(cache_write_5m), SUM(COALESCE(cost_usd, 0)) FROM events "
                      "GROUP BY tenant, day, model ORDER BY 1, 2, 3").fetchall()


def _rollup_totals(db):
    return db.execute("SELECT grain, tenant, day, developer, project, model, regime, calls, input, output, cache_read, "
                      "cache_write_5m, cost_usd, unpriced_calls FROM rollups ORDER BY 1, 2, 3, 4, 5, 6, 7"
                      ).fetchall()


def test_store_made_by_main_migrates_in_place_with_equal_totals(tmp_path):
    path = tmp_path / "team.db"
    shutil.copy(MAIN_STORE, path)
    old = sqlite3.connect(path)
    assert [r[0] for r in old.execute("SELECT name FROM _nomira_migrations ORDER BY name")][-1] == \
        "0008_store_identity"
    before, rollups_before = _totals(old), _rollup_totals(old)
    raw_before = old.execute("SELECT id, received_at, dedup_key, body FROM raw_events ORDER BY id").fetchall()
    superseded_before = [r[0] for r in old.execute("SELECT id FROM raw_events WHERE status = 'superseded'")]
    old.close()
    assert len(before) > 20 and superseded_before

    db = store.open_db(path)
    assert _totals(db) == before and _rollup_totals(db) == rollups_before  # every total, to the cent
    assert db.execute("SELECT id, received_at, dedup_key, body FROM raw_events ORDER BY id").fetchall() == raw_before
    assert [r[0] for r in db.execute("SELECT raw_id FROM superseded_events ORDER BY raw_id")] == superseded_before
    assert db.execute("SELECT COUNT(*) FROM canonical_events WHERE event_id IS NULL OR raw_event_id IS NULL "
                      "OR total_tokens IS NULL OR normalization_version != 1").fetchone()[0] == 0
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("UPDATE raw_events SET body = '{}'")
    # new usage lands on the migrated store as on a new one
    assert store.ingest(db, [call()]) == (1, 0)
    # replay re-derives under the current rules and says what changed: the hook copies main had
    # superseded by token count now win by priority (their cost differs), nothing is lost
    hooks_lost = db.execute("SELECT COUNT(*) FROM superseded_events s JOIN raw_events r ON r.id = s.raw_id "
                            "WHERE r.source_system = 'claude_code_hook'").fetchone()[0]
    report = store.replay(db)
    assert report["previous_versions"] == [1, store.NORMALIZATION_VERSION]
    assert (report["added"], report["removed"]) == (0, 0)
    assert report["columns"]["normalization_version"] == sum(r[3] for r in before)
    assert hooks_lost and report["columns"]["source_channel"] == report["columns"]["cost_usd"] == hooks_lost
    assert db.execute("SELECT COUNT(*) FROM superseded_events").fetchone()[0] == len(superseded_before)


def test_replay_twice_gives_a_byte_identical_canonical_table(tmp_path, store_target):
    db = store.open_db(store_target)
    store.ingest(db, [call(), call(source_channel="hook", cost_usd=0.02), call(message_id="msg_2"),
                      call(message_id="msg_3", tokens={"input": 1, "output": 1}), call(message_id="msg_3")])
    store.ingest(db, [call(message_id="msg_4", source_channel="derived")], tenant="acme")
    first = table_hash(db)
    r1 = store.replay(db)
    assert table_hash(db) == first and r1["changed"] == r1["added"] == r1["removed"] == 0
    rollups = _rollup_totals(db)
    store.replay(db)
    assert table_hash(db) == first and _rollup_totals(db) == rollups


def test_bumping_the_normalization_version_rederives_and_reports(tmp_path, monkeypatch, capsys):
    dbp = tmp_path / "s.db"
    db = store.open_db(dbp)
    store.ingest(db, [call(), call(message_id="msg_2", model="anthropic/claude-opus-4-7")])
    from nomira.pricing import table
    real = table.canonical_model
    monkeypatch.setattr(store, "NORMALIZATION_VERSION", store.NORMALIZATION_VERSION + 1)
    monkeypatch.setattr(store, "canonical_model", lambda m: ("claude-opus-4-7", "claude-opus-4-7")
                        if "opus" in m else real(m))  # a new rule for one model's canonical name
    assert main(["replay", "--db", str(dbp), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["normalization_version"] == store.NORMALIZATION_VERSION
    assert report["changed"] == 2 and report["columns"] == {"normalization_version": 2}  # same canonical names
    monkeypatch.setattr(store, "canonical_model", lambda m: ("opus", "opus") if "opus" in m else real(m))
    report = store.replay(db)
    assert report["changed"] == 1 and report["columns"] == {"model_canonical": 1, "model_lineage": 1}
    assert db.execute("SELECT model_canonical FROM events WHERE message_id = 'msg_2'").fetchone() == ("opus",)


# --- POST /v1/usage/events: the design's contract ---

def doc_example(n=0) -> dict:
    """The n-th JSON example of docs/API.md: the documentation is what is tested."""
    text = (FIXTURES.parent.parent / "docs" / "API.md").read_text()
    return json.loads(re.findall(r"```json\n(.*?)\n```", text, re.S)[n])


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.delenv("NOMIRA_INGEST_TOKEN", raising=False)
    monkeypatch.delenv("NOMIRA_DASHBOARD_PASSWORD", raising=False)
    from nomira.commands.serve import make_app
    return make_app(tmp_path / "collector.db", "127.0.0.1")


def post(app, path, body, token=None):
    data = json.dumps(body).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "CONTENT_LENGTH": str(len(data)),
               "CONTENT_TYPE": "application/json", "wsgi.input": io.BytesIO(data), "REMOTE_ADDR": "127.0.0.1",
               "HTTP_HOST": "127.0.0.1", **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {})}
    out = {}
    text = b"".join(app(environ, lambda status, headers: out.update(status=int(status.split()[0]))))
    return out["status"], json.loads(text)


def test_the_design_example_is_accepted_and_a_duplicate_answers_the_first_event_id(app):
    example = doc_example(0)
    status, first = post(app, "/v1/usage/events", example)
    assert status == 200 and first["status"] == "accepted" and first["deduped"] is False
    assert uuid.UUID(first["event_id"]) and first["store_id"] == store.store_id(app.db)
    status, again = post(app, "/v1/usage/events", example)
    assert status == 200 and again["deduped"] is True and again["event_id"] == first["event_id"]
    row = store.canonical_event(app.db, first["event_id"])
    assert (row["source_system"], row["source_channel"], row["account_id"], row["workspace"], row["project"],
            row["turn_id"], row["event_type"], row["input"], row["cache_read"]) == (
        "claude_code", "hook", "org-7c1d", "shop", "shop", "turn-0007", "message_usage", 12, 20480)
    raw = app.db.execute("SELECT source_system, source_channel, source_schema_version, workspace, agent_session_id "
                         "FROM raw_events ORDER BY id").fetchall()
    assert raw == [("claude_code", "hook", "2025-11-01", "shop", example["session_id"])] * 2


def test_a_batch_mixes_envelopes_and_wire_events_with_one_answer_each(app):
    wire_event = doc_example(1)
    batch = [doc_example(0), wire_event, dict(wire_event, message_id="msg_2"), wire_event]
    status, body = post(app, "/v1/usage/events", {"events": batch})
    assert status == 200 and (body["accepted"], body["deduped"]) == (3, 1)
    assert [e["deduped"] for e in body["events"]] == [False, False, False, True]
    assert body["events"][3]["event_id"] == body["events"][1]["event_id"] != body["events"][2]["event_id"]
    status, body = post(app, "/v1/usage/events", batch[:2])  # a bare list is a batch too
    assert status == 200 and [e["deduped"] for e in body["events"]] == [True, True]
    status, body = post(app, "/ingest", {"events": [dict(wire_event, message_id="msg_3")]})
    assert status == 200 and body == {"status": "accepted", "accepted": 1, "deduped": 0,
                                      "store_id": store.store_id(app.db)}  # /ingest keeps its shape


@pytest.mark.parametrize("change,field", [
    (lambda d: d.pop("source_channel"), "source_channel"),
    (lambda d: d.update(source_channel="carrier-pigeon"), "source_channel"),
    (lambda d: d.update(occurred_at="yesterday"), "occurred_at"),
    (lambda d: d.update(provider_id="anthropic/../etc"), "provider_id"),
    (lambda d: d.update(prompt="fix the tests"), "prompt"),
    (lambda d: d.update(workspace_id="/home/ana/src/shop"), "workspace_id"),
    (lambda d: d["payload"].pop("model"), "payload.model"),
    (lambda d: d["payload"].update(completion="hello"), "payload.completion"),
    (lambda d: d["payload"]["tokens"].update(input=-1), "payload.tokens.input"),
    (lambda d: d["payload"]["tags"].update(project="notes.docx"), "payload.tags.project"),
    (lambda d: d["payload"].update(event_type="chat"), "payload.event_type"),
    (lambda d: d["payload"].update(requests=True), "payload.requests"),
])
def test_a_malformed_envelope_is_400_naming_the_field(app, change, field):
    bad = doc_example(0)
    change(bad)
    status, body = post(app, "/v1/usage/events", bad)
    assert status == 400 and body["field"] == field, body
    status, body = post(app, "/v1/usage/events", {"events": [doc_example(0), bad]})
    assert status == 400 and body["field"] == f"events[1].{field}"
    assert app.db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 0


def test_envelopes_need_a_key_and_a_tenant_key_writes_only_its_tenant(app):
    key = store.create_tenant(app.db, "acme")
    assert post(app, "/v1/usage/events", doc_example(0))[0] == 401
    assert post(app, "/v1/usage/events", doc_example(0), token="nmr_wrong")[0] == 401
    other = doc_example(0)
    other["payload"]["tags"]["tenant"] = "globex"
    status, body = post(app, "/v1/usage/events", other, token=key)
    assert status == 403 and body["field"] == "payload.tags.tenant"
    status, body = post(app, "/v1/usage/events", doc_example(0), token=key)
    assert status == 200 and app.db.execute("SELECT tenant FROM events").fetchall() == [("acme",)]


# --- redaction at the boundary ---

CREDENTIALS = ["sk-ant-api03-" + "Xy7_Qw2-" * 4, "sk-proj-" + "Ab3dEf6hIj9k" * 3, "sk-" + "T3BlbkFJ" * 5,
               "ghp_" + "a1B2c3D4e5" * 4, "gho_" + "Z9y8X7w6V5" * 4, "github_pat_11ABCDEFG0" + "_x1Y2z3" * 4,
               "AKIAIOSFODNN7EXAMPLE", "Bearer nmr_4fT9xQ2LkP0", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEifQ.c2ln",
               "sessionid=8f2k1q;"]
# every string a wire event or an envelope can carry, tags and ids included
WIRE_STRINGS = ["source", "provider", "model", "regime", "cost_source", "session_id", "turn_id", "message_id",
                "request_id", "tool_call_id", "account_id", "workspace_id", "source_schema_version", "tool_name",
                "agent", "tags.developer", "tags.project", "tags.feature", "tags.workflow", "tags.tier",
                "tags.customer", "tags.env", "tags.tenant", "modifiers.speed"]
ENVELOPE_STRINGS = ["source_system", "source_schema_version", "workspace_id", "session_id", "turn_id", "message_id",
                    "tool_call_id", "request_id", "provider_id", "account_id", "agent", "payload.model",
                    "payload.cost_source", "payload.regime", "payload.tool_name", "payload.tags.developer",
                    "payload.tags.project", "payload.tags.customer", "payload.modifiers.service_tier"]


def _set(doc, dotted, value):
    *parents, last = dotted.split(".")
    for p in parents:
        doc = doc.setdefault(p, {})
    doc[last] = value


@pytest.mark.parametrize("field", WIRE_STRINGS + [f"envelope:{f}" for f in ENVELOPE_STRINGS])
def test_a_credential_in_any_field_is_refused_and_never_stored(app, tmp_path, field):
    from nomira.ledger.ship import validated
    envelope = field.startswith("envelope:")
    name = field.split(":")[-1]
    i = (WIRE_STRINGS + ENVELOPE_STRINGS).index(name) if not envelope else len(WIRE_STRINGS) + ENVELOPE_STRINGS.index(
        name)
    secret = CREDENTIALS[i % len(CREDENTIALS)]
    event = doc_example(0) if envelope else call()
    _set(event, name, secret)
    status, body = post(app, "/v1/usage/events", {"events": [event]})
    assert status == 400 and body["field"] == f"events[0].{name}" and "credential" in body["error"], body
    assert secret not in json.dumps(body)  # the answer names the field, never echoes the value
    assert app.db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 0
    app.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert secret.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("collector.db*"))
    if not envelope:  # ship and export hold it back on the laptop: it is never spooled nor written
        ok, refused = validated([event, call(message_id="msg_clean")])
        assert [e["message_id"] for e in ok] == ["msg_clean"] and "credential" in next(iter(refused))


def test_identifiers_can_be_stored_as_keyed_hashes(tmp_path):
    db = store.open_db(tmp_path / "s.db")
    assert store.enable_identifier_hashing(db) and not store.enable_identifier_hashing(db)
    email = "ana.lima@example.com"
    store.ingest(db, [call(tags={"developer": email, "project": "shop"}, account_id="org-7c1d"),
                      call(message_id="msg_2", tags={"developer": email, "project": "web"})])
    devs = {r[0] for r in db.execute("SELECT developer FROM events")}
    assert len(devs) == 1 and next(iter(devs)).startswith("h-")  # one person, one (unreadable) name
    assert db.execute("SELECT account_id FROM events WHERE account_id != ''").fetchone()[0].startswith("h-")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert email.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
    other = store.open_db(tmp_path / "other.db")  # another store, another key: no cross-store join
    store.enable_identifier_hashing(other)
    store.ingest(other, [call(tags={"developer": email})])
    assert other.execute("SELECT developer FROM events").fetchone()[0] not in devs


# --- the spool: records, dead letters, `nomira spool status | retry | drop` ---

@pytest.fixture
def collector(tmp_path, monkeypatch):
    """A real collector app on loopback; while `old` is set it refuses events carrying `tool_name`
    (as a collector from before the ledger would), until the fix (an upgrade) arrives."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from nomira.commands.serve import ThreadingWSGIServer
    monkeypatch.delenv("NOMIRA_INGEST_TOKEN", raising=False)
    monkeypatch.delenv("NOMIRA_DASHBOARD_PASSWORD", raising=False)
    from nomira.commands.serve import make_app
    real = make_app(tmp_path / "collector.db", "127.0.0.1")
    state = {"old": True}

    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if state["old"] and b'"tool_name"' in body:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"status": "error", "error": "events[0].tool_name: not in the usage event schema", '
                    b'"field": "events[0].tool_name"}']
        environ["wsgi.input"] = io.BytesIO(body)
        return real(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass
    httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", real, state
    httpd.shutdown()
    httpd.server_close()


def spool_cli(capsys, *args):
    capsys.readouterr()
    rc = main(["spool", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_a_dead_lettered_batch_is_resent_after_the_fix_and_stored_exactly_once(collector, capsys):
    from nomira.commands.spool import open_spool
    from nomira.ledger.ship import http_post
    url, app_, state = collector
    post = http_post(url, None)
    events = [call(message_id=f"msg_{i}") for i in range(4)] + [
        call(message_id=None, tool_call_id=f"toolu_{i}", tool_name="Bash") for i in range(2)]
    spool = open_spool()
    spool.put(events, destination=post.destination)
    r = spool.flush(post, destination=post.destination, sleep=lambda s: None)
    assert (r.delivered, r.dead_lettered, r.pending_batches) == (4, 2, 0)
    rc, status = spool_cli(capsys, "status")
    assert status["dead_letters"] == 2 and status["pending_batches"] == 0
    errors = status["dead_letter_errors"]
    assert list(errors.values()) == [2] and "tool_name" in next(iter(errors))
    dead = spool.dead_letters()
    assert {d["destination"]["url"] for d in dead} == {post.url} and all(d["spool_id"] for d in dead)

    rc, retried = spool_cli(capsys, "retry", "--remote", url)  # still refused: back to the dead letters
    assert rc == 0 and (retried["requeued"], retried["delivered"], retried["dead_lettered"]) == (2, 0, 2)
    state["old"] = False  # the fix: the collector is upgraded
    rc, retried = spool_cli(capsys, "retry", "--remote", url)
    assert rc == 0 and (retried["requeued"], retried["delivered"], retried["dead_lettered"]) == (2, 2, 0)
    assert app_.db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 6  # each call stored exactly once
    assert app_.db.execute("SELECT COUNT(*), SUM(event_type = 'tool_usage') FROM events").fetchone() == (6, 2)
    rc, again = spool_cli(capsys, "retry", "--remote", url)
    assert (again["requeued"], again["delivered"]) == (0, 0) and spool_cli(capsys, "status")[1]["dead_letters"] == 0
    assert app_.db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 6


def test_a_spool_record_carries_its_id_attempts_and_last_error(isolated_env, capsys):
    import socket
    from nomira.commands.spool import open_spool
    from nomira.ledger.ship import http_post
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens: connection refused
    post = http_post(f"http://127.0.0.1:{port}", "nmr_secret_key_value")
    spool = open_spool()
    spool.put([call(), call(message_id="msg_2", source_channel="hook", source="claude_code")],
              destination=post.destination)
    delays = []
    r = spool.flush(post, destination=post.destination, max_attempts=3, sleep=delays.append)
    assert r.pending_batches == 1 and len(delays) == 2
    record = json.loads(spool.batches()[0].read_text())
    assert uuid.UUID(record["spool_id"]) and record["created_at"].startswith("20")
    assert (record["source_system"], record["source_channel"]) == ("claude_code", "mixed")
    assert record["attempt"] == 3 and "no connection" in record["last_error"] and len(record["payload"]) == 2
    assert record["destination"]["credential_sha256"] and "nmr_secret_key_value" not in json.dumps(record)
    rc, status = spool_cli(capsys, "status")
    assert status["oldest"]["spool_id"] == record["spool_id"] and status["oldest"]["attempt"] == 3
    assert status["pending_events"] == 2 and "no connection" in status["oldest"]["last_error"]
    rc, dropped = spool_cli(capsys, "drop", "--pending")
    assert dropped == {"schema_version": 1, "dropped_dead_letters": 0, "dropped_batches": 1, "dropped_events": 2}
    assert not spool.batches()


def test_spool_files_of_the_previous_format_are_delivered_or_reported(collector, capsys):
    from nomira.commands.spool import open_spool
    from nomira.ledger.ship import http_post
    from nomira.ledger.spool import _tag
    url, app_, state = collector
    post = http_post(url, None)
    spool = open_spool()
    # a pending batch exactly as the previous version wrote it, and two of its dead letters
    (spool.pending_dir / f"batch-00000000000000000001-1-00000001-{_tag(post.destination)}.json").write_text(
        json.dumps({"destination": post.destination, "events": [call(message_id="msg_old")]}))
    spool.dead_letter.write_text("".join(json.dumps({"status": 400, "response": "model: rejected", "event": e}) + "\n"
                                         for e in (call(message_id="msg_d1"), call(message_id="msg_d2"))))
    rc, status = spool_cli(capsys, "status")
    assert status["pending_events"] == 1 and status["dead_letters"] == 2
    assert status["dead_letter_errors"] == {"HTTP 400: model: rejected": 2}
    r = spool.flush(post, destination=post.destination, sleep=lambda s: None)
    assert r.delivered == 1 and not spool.batches()
    rc, retried = spool_cli(capsys, "retry")  # no destination recorded, none named: kept, said
    assert (retried["requeued"], retried["kept"]) == (0, 2)
    rc, retried = spool_cli(capsys, "retry", "--remote", url)  # named: bound to it and sent
    assert (retried["requeued"], retried["delivered"]) == (2, 2)
    assert app_.db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 3
    spool.dead_letter.write_text(json.dumps({"status": 400, "response": "x", "event": call()}) + "\nnot json\n")
    rc, dropped = spool_cli(capsys, "drop")
    assert dropped == {"schema_version": 1, "dropped_dead_letters": 2} and not spool.dead_letter.exists()


# --- serving views ---

def _view(db, name):
    return db.execute(f"SELECT tenant, day, {name}, calls, input, output, cache_read, cost_usd FROM "
                      f"usage_daily_by_{name} WHERE calls != 0 ORDER BY 1, 2, 3").fetchall()


def _group(db, col):
    return db.execute(f"SELECT tenant, day, COALESCE({col}, ''), COUNT(*), SUM(input), SUM(output), SUM(cache_read), "
                      f"SUM(COALESCE(cost_usd, 0)) FROM events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()


def _same(a, b):
    assert [r[:-1] for r in a] == [r[:-1] for r in b]
    assert [r[-1] for r in a] == pytest.approx([r[-1] for r in b], abs=1e-9)


def test_daily_views_by_provider_model_project_tool_follow_ingest(tmp_path, store_target):
    db = store.open_db(store_target)
    codex = call(source="codex", provider="openai", model="gpt-5-codex", message_id=None, turn_id="turn-1",
                 tags={"developer": "bo", "project": "api"},
                 allowance={"primary_used_percent": 12.0, "primary_window_minutes": 300,
                            "secondary_used_percent": 40.0, "secondary_window_minutes": 10080})
    later = dict(codex, turn_id="turn-2", occurred_at="2025-11-03T18:00:00Z",
                 allowance=dict(codex["allowance"], primary_used_percent=55.0))
    store.ingest(db, [call(), call(message_id="msg_2", tags={"developer": "ana", "project": "web"}), later])
    store.ingest(db, [codex, call(message_id=None, tool_call_id="toolu_1", tool_name="Bash"),
                      call(tokens={"input": 12, "output": 1})])  # an older snapshot, a tool call, a partial copy
    store.ingest(db, [call(source_channel="hook", tokens={"input": 12, "output": 999}, cost_usd=0.5)])  # wins
    for view, col in (("provider", "provider"), ("model", "model"), ("project", "project"), ("tool", "tool_name")):
        _same(_view(db, view), _group(db, col))
    assert ("", "2025-11-03", "Bash") in [r[:3] for r in _view(db, "tool")]
    assert db.execute("SELECT developer, provider, occurred_at, primary_used_percent FROM current_limits").fetchall() \
        == [("bo", "openai", "2025-11-03T18:00:00+00:00", 55.0)]  # the newest snapshot, whatever the order
    before = {v: _view(db, v) for v in ("provider", "model", "project", "tool")}
    store.replay(db)
    for view, rows in before.items():
        _same(_view(db, view), rows)


def test_views_of_a_migrated_store_match_its_events(tmp_path):
    path = tmp_path / "team.db"
    shutil.copy(MAIN_STORE, path)
    db = store.open_db(path)
    for view, col in (("provider", "provider"), ("model", "model"), ("project", "project"), ("tool", "tool_name")):
        _same(_view(db, view), _group(db, col))


def test_parse_timestamp_is_the_plain_rule():
    """The UTC shortcut gives what fromisoformat + astimezone(UTC) gives (the same object for `Z`)."""
    from datetime import datetime, timezone

    from nomira.ledger.events import parse_timestamp

    def plain(ts):
        try:
            dt = datetime.fromisoformat(ts)
            return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
        except (TypeError, ValueError, OverflowError):
            return None
    for ts in ("2026-03-10T06:00:05.000Z", "2026-03-10T06:00:05+00:00", "2026-03-10T06:00:05-00:00",
               "2026-03-10T06:00:05.123456+05:30", "2026-03-10T23:59:59-08:00", "2026-03-10T06:00:05",
               "2026-03-10", "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "not a time", "", None, 5):
        got, want = parse_timestamp(ts), plain(ts)
        assert got == want and (got is None or (got.tzinfo, got.utcoffset(), got.isoformat())
                                == (want.tzinfo, want.utcoffset(), want.isoformat())), ts
