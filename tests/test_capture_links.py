"""One Claude call reported by telemetry (OTLP `claude_code.api_request`: request id, no message id) and by
its transcript (hook or log: message id + request id) is one event, in every arrival order; so is a Codex
call by telemetry (`codex.sse_event`, no id) and by its rollout (notify hook or log); two different calls
with identical usage are never merged (store._link_copies, migration 0013).

The copies are the wire events Nomira itself makes of each channel (capture/otlp.py for telemetry,
the Claude Code transcript reader for hook and log), so the fields are the ones each channel carries."""
import itertools
import json

import pytest

from nomira.ledger import store

SESSION = "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"


def transcript(channel=None, **over):
    """A transcript copy: `message.id` and `requestId` of the assistant line, cache writes split by TTL."""
    e = {"schema_version": 1, "source": "claude_code", "provider": "anthropic",
         "model": "claude-sonnet-4-5-20250929", "occurred_at": "2025-11-03T14:22:06.120Z",
         "tokens": {"input": 4, "output": 312, "cache_read": 41211, "cache_write_5m": 830, "cache_write_1h": 1000},
         "cost_usd": 0.0301, "cost_source": "bundled:2026-11-24", "regime": "subscription",
         "tags": {"developer": "ana", "project": "shop"}, "session_id": SESSION,
         "message_id": "msg_01XFDUDYJgAACzvnptvVoYEL", "request_id": "req_011CUkq3Zx9"}
    if channel:
        e["source_channel"] = channel
    e.update(over)
    return e


def telemetry(**over):
    """The telemetry copy of the same call: event.timestamp at the end of the request, one cache-write count,
    no message id, tags from the OTLP resource only."""
    e = {"schema_version": 1, "source": "claude_code", "provider": "anthropic",
         "model": "claude-sonnet-4-5-20250929", "occurred_at": "2025-11-03T14:22:07.913Z",
         "tokens": {"input": 4, "output": 312, "cache_read": 41211, "cache_write_5m": 1830},
         "cost_usd": 0.0285, "cost_source": "bundled:2026-11-24", "regime": "subscription",
         "tags": {}, "session_id": SESSION, "message_id": None, "request_id": "req_011CUkq3Zx9",
         "source_channel": "otlp"}
    e.update(over)
    return e


COPIES = {"otlp": telemetry, "hook": lambda **o: transcript("hook", **o), "jsonl": transcript}


def counted(db) -> tuple[int, int, int, int]:
    """(canonical rows, raw rows, superseded rows, calls in the day rollup)."""
    return (db.execute("SELECT COUNT(*) FROM events").fetchone()[0],
            db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0],
            db.execute("SELECT COUNT(*) FROM superseded_events").fetchone()[0],
            db.execute("SELECT COALESCE(SUM(calls), 0) FROM rollups WHERE grain = 'day'").fetchone()[0])


@pytest.mark.parametrize("order", list(itertools.permutations(COPIES)))
def test_one_call_by_otlp_hook_and_log_in_any_order_is_one_event(order, store_target):
    db = store.open_db(store_target)
    for channel in order:
        store.ingest(db, [COPIES[channel]()])
    assert counted(db) == (1, 3, 2, 1)
    # agent-native first (hook, otlp) over the log; between the two, the copy with the message id (TTL split)
    row = db.execute("SELECT source_channel, message_id, cache_write_5m, cache_write_1h FROM events").fetchone()
    assert row == ("hook", "msg_01XFDUDYJgAACzvnptvVoYEL", 830, 1000)
    reasons = sorted(r[0] for r in db.execute("SELECT reason FROM superseded_events"))
    assert "lower_priority" in reasons  # the log copy
    # the same three again (a re-export, a re-run hook): still one event
    for channel in order:
        store.ingest(db, [COPIES[channel]()])
    assert counted(db)[0::3] == (1, 1)
    before = db.execute("SELECT * FROM events").fetchall()
    store.replay(db)  # the raw rows keep the key each copy was filed under: replay decides the same
    assert db.execute("SELECT * FROM events").fetchall() == before


@pytest.mark.parametrize("order", list(itertools.permutations(COPIES)))
def test_without_request_ids_the_usage_fingerprint_links_them(order, store_target):
    """Older Claude Code builds send no request_id: same session, model, exact tokens, seconds apart."""
    copies = {"otlp": telemetry(request_id=None), "hook": transcript("hook", request_id=None),
              "jsonl": transcript(request_id=None)}
    db = store.open_db(store_target)
    for channel in order:
        store.ingest(db, [copies[channel]])
    assert counted(db) == (1, 3, 2, 1)


def test_a_telemetry_batch_and_a_transcript_batch_of_many_calls(tmp_path):
    """Both directions in whole batches: half the calls arrive by transcript first, half by telemetry."""
    db = store.open_db(tmp_path / "s.db")
    calls = [dict(request_id=f"req_{n:04d}", occurred_at=f"2025-11-03T14:{n // 60:02d}:{n % 60:02d}.000Z",
                  tokens={"input": 4, "output": 100 + n, "cache_read": 1000 * n, "cache_write_5m": 50})
             for n in range(120)]
    store.ingest(db, [transcript("hook", message_id=f"msg_{n:04d}", **c) for n, c in enumerate(calls[:60])])
    store.ingest(db, [telemetry(**c) for c in calls])
    store.ingest(db, [transcript(message_id=f"msg_{n:04d}", **c) for n, c in enumerate(calls)])
    assert counted(db)[0::3] == (120, 120)
    assert db.execute("SELECT SUM(output) FROM events").fetchone()[0] == sum(100 + n for n in range(120))


def test_identical_usage_in_another_session_or_minutes_later_stays_two_calls(store_target):
    db = store.open_db(store_target)
    tokens = {"input": 8, "output": 20, "cache_read": 0, "cache_write_5m": 0}  # a tiny call, easily repeated
    store.ingest(db, [telemetry(request_id=None, tokens=tokens)])
    store.ingest(db, [
        transcript(request_id=None, tokens=tokens, session_id="0b1c2d3e-aaaa-4bbb-8ccc-9ddd0eee1fff"),
        transcript(request_id=None, tokens=tokens, message_id="msg_later", occurred_at="2025-11-03T14:40:00Z"),
        transcript(request_id=None, tokens=dict(tokens, output=21), message_id="msg_other"),
        transcript(request_id=None, tokens=tokens, model="claude-haiku-4-5-20251001", message_id="msg_haiku"),
    ])
    assert counted(db)[0] == 5
    # the reverse order too: transcripts stored, then telemetry of calls they do not hold
    store.ingest(db, [telemetry(request_id=None, tokens=tokens, session_id="ffff0000-1111-4222-8333-444455556666",
                                occurred_at="2025-11-03T14:22:09.020Z"),
                      telemetry(request_id=None, tokens=tokens, occurred_at="2025-11-03T16:00:00Z")])
    assert counted(db)[0] == 7


def test_different_request_ids_or_tenants_are_never_merged(store_target):
    db = store.open_db(store_target)
    store.ingest(db, [telemetry(request_id="req_A")])
    store.ingest(db, [transcript(request_id="req_B")])  # same usage, same second, another request
    assert counted(db)[0] == 2
    store.ingest(db, [transcript(message_id="msg_T2", request_id="req_T2")], tenant="acme")
    store.ingest(db, [telemetry(request_id="req_T2")], tenant="globex")  # same id, another tenant
    store.ingest(db, [telemetry(request_id="req_T2")], tenant="acme")
    assert counted(db)[0] == 4
    assert sorted(r[0] for r in db.execute("SELECT tenant FROM events WHERE request_id = 'req_T2'")) == [
        "acme", "globex"]


def test_a_store_without_telemetry_pays_one_probe_and_stores_no_links(tmp_path):
    db = store.open_db(tmp_path / "s.db")
    store.ingest(db, [transcript(message_id=f"msg_{n}", request_id=f"req_{n}") for n in range(50)])
    assert db.execute("SELECT COUNT(*) FROM call_links").fetchone()[0] == 0
    store.ingest(db, [telemetry(request_id="req_7"), telemetry(request_id="req_new")])
    links = db.execute("SELECT link, dedup_key FROM call_links ORDER BY link").fetchall()
    assert [link for link, _k in links] == ["req:claude_code:req_7", "req:claude_code:req_new"]
    raw = {json.loads(b)["request_id"]: k for b, k in db.execute("SELECT body, dedup_key FROM raw_events")}
    assert dict(links)["req:claude_code:req_7"] == raw["req_7"]  # filed under the transcript copy's key


# --- the real channels at the collector: `nomira hook claude`, OTLP /v1/logs, `nomira export` -> /ingest ---

from test_capture_live import FIX, api_request, app, call, claude_logs, events  # noqa: E402,F401


@pytest.mark.parametrize("order", list(itertools.permutations(["hook", "otlp", "log"])))
def test_the_same_calls_by_hook_otlp_and_log_count_once_in_every_order(app, order, tmp_path, monkeypatch, capsys):
    import io
    import shutil
    import sys

    from nomira.cli import main
    projects = tmp_path / "claude" / "projects"
    shutil.copytree(FIX / "claude" / "projects", projects)
    transcript_path = projects / "-home-ana-src-shop" / f"{SESSION}.jsonl"
    monkeypatch.setenv("NOMIRA_DB", str(app.db_path))

    def hook():
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps({
            "session_id": SESSION, "transcript_path": str(transcript_path), "cwd": "/home/ana/src/shop",
            "permission_mode": "default", "hook_event_name": "Stop", "stop_hook_active": False}).encode())))
        assert main(["hook", "claude"]) == 0

    def otlp():  # the transcript's msg_A1/req_A1 and msg_A2/req_A2 (2,000 one-hour cache writes)
        doc = claude_logs(api_request("req_A1", "2025-11-03T14:22:08.950Z", (4, 300, 0, 1000)),
                          api_request("req_A2", "2025-11-03T14:25:01.400Z", (10, 500, 1000, 2000)))
        assert call(app, "/v1/logs", doc)[0] == 200

    def log():
        capsys.readouterr()
        assert main(["export", "-", "--path", str(transcript_path)]) == 0
        assert call(app, "/ingest", {"events": json.loads(capsys.readouterr().out)["events"]})[0] == 200

    for channel in order:
        {"hook": hook, "otlp": otlp, "log": log}[channel]()
    rows = events(app)
    # one row per transcript call (the session's file and its subagents/), none for a telemetry copy
    assert all(r["message_id"] for r in rows) and len({r["message_id"] for r in rows}) == len(rows) == 4
    for request in ("req_A1", "req_A2"):
        assert len([r for r in rows if r["request_id"] == request]) == 1
    a2 = next(r for r in rows if r["request_id"] == "req_A2")
    # whichever copy is canonical, it has the transcript's attribution and TTL split, so the same cost
    assert (a2["message_id"], a2["developer"] != "", a2["cache_write_5m"], a2["cache_write_1h"]) == (
        "msg_A2", True, 0, 2000)
    assert a2["source_channel"] in ("hook", "otlp")


# --- Codex: telemetry (`codex.sse_event` response.completed, no id at all) and its rollout (no id either) ---

CONVERSATION = "0199a3b2-7c4d-7e10-9f21-3a4b5c6d7e8f"


def codex_copy(channel=None, **over):
    """A rollout `token_count` call as the Codex reader ships it (hook: the notify hook's copy)."""
    e = {"schema_version": 1, "source": "codex", "provider": "openai", "model": "gpt-5-codex",
         "occurred_at": "2025-11-03T09:15:31.660Z", "cost_usd": 0.0019, "regime": "subscription",
         "tokens": {"input": 200, "output": 100, "cache_read": 800, "reasoning": 40},
         "tags": {"developer": "ana", "project": "shop"}, "session_id": CONVERSATION}
    if channel:
        e["source_channel"] = channel
    e.update(over)
    return e


CODEX = {"otlp": lambda: codex_copy("otlp", occurred_at="2025-11-03T09:15:31.702Z", tags={}),
         "hook": lambda: codex_copy("hook"), "jsonl": codex_copy}


@pytest.mark.parametrize("order", list(itertools.permutations(CODEX)))
def test_a_codex_call_by_otlp_notify_and_rollout_in_any_order_is_one_event(order, store_target):
    db = store.open_db(store_target)
    for channel in order:
        store.ingest(db, [CODEX[channel]()])
    assert counted(db) == (1, 3, 2, 1)
    # the notify hook's copy: agent-native, and the agent's own record (developer, project) over telemetry
    assert db.execute("SELECT source_channel, developer, project FROM events").fetchall() == [("hook", "ana", "shop")]
    # the next call of the conversation, identical usage two minutes later, is another call
    store.ingest(db, [codex_copy("otlp", occurred_at="2025-11-03T09:17:40Z", tags={})])
    store.ingest(db, [codex_copy(occurred_at="2025-11-03T09:17:39.9Z")])
    assert counted(db)[0] == 2


def test_codex_otlp_and_the_rollout_through_the_collector(app, tmp_path, capsys):
    from nomira.cli import main
    from test_capture_live import i, s
    rollout = FIX / "codex" / "sessions" / "2025" / "11" / "03" / f"rollout-2025-11-03T09-15-00-{CONVERSATION}.jsonl"

    def sse(ts, nanos, tokens):  # codex.sse_event as Codex exports it (openai/codex PR #2103)
        return {"timeUnixNano": nanos, "attributes": [
            s("event.name", "codex.sse_event"), s("event.timestamp", ts), s("event.kind", "response.completed"),
            s("conversation.id", CONVERSATION), s("app.version", "0.53.0"), s("model", "gpt-5-codex"),
            i("input_token_count", tokens[0]), i("cached_token_count", tokens[1]),
            i("output_token_count", tokens[2]), i("reasoning_token_count", tokens[3])]}
    doc = claude_logs(sse("2025-11-03T09:15:31.702Z", "1762161331702000000", (1000, 800, 100, 40)),
                      sse("2025-11-03T09:18:00.311Z", "1762161480311000000", (500, 100, 50, 0)))
    capsys.readouterr()
    assert main(["export", "-", "--path", str(rollout)]) == 0
    logged = json.loads(capsys.readouterr().out)["events"]
    assert call(app, "/v1/logs", doc)[0] == 200  # telemetry first: 2 calls
    assert call(app, "/ingest", {"events": logged})[0] == 200  # then the rollout: 3 calls, 2 already in
    rows = events(app)
    assert len(rows) == len(logged) == 3
    assert sorted(r["output"] for r in rows) == sorted(e["tokens"]["output"] for e in logged)


def test_prune_drops_the_links_of_pruned_calls_and_keeps_the_markers(tmp_path):
    from datetime import datetime, timezone

    from nomira.ledger import retention
    db = store.open_db(tmp_path / "s.db")
    store.ingest(db, [telemetry(request_id=None), codex_copy("otlp", occurred_at="2026-11-30T10:00:00Z")])
    assert db.execute("SELECT COUNT(*) FROM call_links").fetchone()[0] == 3  # two links, one "fp" marker
    retention.prune(db, 30, 400, now=datetime(2027, 6, 1, tzinfo=timezone.utc))  # events before 2026-04-27
    assert sorted(r[0][:8] for r in db.execute("SELECT link FROM call_links")) == ["fp", "fp:codex"]
    store.ingest(db, [codex_copy(occurred_at="2026-11-30T10:00:01Z")])  # still linked after the prune
    assert counted(db)[0] == 1
