"""OpenCode storage: SQLite (v1.2+) and legacy JSON, step-finish parts, reasoning semantics."""
import pytest

from conftest import FIXTURES
from nomira.sources import opencode
from nomira.sources.registry import collect

OC = FIXTURES / "opencode"
# Sonnet 4.5: 3 / 15 / read 0.30 / write 3.75; GPT-5: 1.25 / cached 0.125 / 10; Gemini 2.5 Pro: 1.25 / 10;
# Haiku 4.5: 1 / 5 (USD per MTok)
P1 = (20 * 3 + 40 * 15 + 2000 * 3.75) / 1e6
P2 = (30 * 3 + 60 * 15 + 1000 * 0.3) / 1e6
M2 = (1000 * 1.25 + 4000 * 0.125 + 500 * 10) / 1e6      # reasoning 200 is inside output 500
M3 = (1000 * 1.25 + (300 + 700) * 10) / 1e6             # Gemini: reasoning 700 billed on top of output 300
L1 = (100 * 1 + 100 * 5) / 1e6


def test_step_finish_parts_are_the_calls():
    evs = [e for e in collect(("opencode",), [OC]).events if e.message_id.split(":")[0] == "msg_M1"]
    assert [(e.request_id, e.tokens.input, e.tokens.output, e.tokens.cache_write_5m) for e in evs] == [
        ("prt_1", 20, 40, 2000), ("prt_2", 30, 60, 0)]


def test_database_wins_over_legacy_copy_and_bad_rows_counted():
    c = collect(("opencode",), [OC])
    assert sorted(e.message_id for e in c.events) == ["msg_L1", "msg_M1:prt_1", "msg_M1:prt_2", "msg_M2", "msg_M3"]
    assert c.stats.skipped["duplicate_call"] == 1 and c.stats.malformed == 1


def test_legacy_copy_without_its_parts_does_not_count_a_database_message_again(tmp_path):
    """A message the database holds (with its step parts) also left as legacy JSON whose part/ folder
    is gone: the legacy copy is keyed by the message alone, the rows by their steps; the message id
    decides (as ccusage does: the database's entries win by id)."""
    import shutil
    import sqlite3
    root = tmp_path / "opencode"
    shutil.copytree(OC, root)
    with sqlite3.connect(root / "opencode.db") as db:
        data = db.execute("SELECT data FROM message WHERE id = 'msg_M1'").fetchone()[0]
    (root / "storage" / "message" / "ses_A" / "msg_M1.json").write_text(data[:-1] + ',"id":"msg_M1","sessionID":"ses_A"}')
    c = collect(("opencode",), [root])
    assert sorted(e.message_id for e in c.events) == ["msg_L1", "msg_M1:prt_1", "msg_M1:prt_2", "msg_M2", "msg_M3"]
    assert c.stats.skipped["duplicate_call"] == 2


def test_totals_by_hand(run_json):
    r = run_json("--path", OC)
    assert r["totals"]["cost_usd"] == pytest.approx(P1 + P2 + M2 + M3 + L1, abs=1e-12)
    models = {m["model"]: m for m in r["models"]}
    assert models["gemini-2.5-pro"]["tokens"]["output"] == 1000
    assert models["gpt-5"]["tokens"]["output"] == 500 and models["gpt-5"]["tokens"]["reasoning"] == 200
    assert r["regime"] == "api" and r["value_label"] == "cost"


def test_source_flag_and_default_location(run_json, isolated_env):
    import shutil
    shutil.copytree(OC, isolated_env / ".local/share/opencode")
    r = run_json("--source", "opencode", "daily", "--timezone", "UTC")
    assert {d["date"]: round(d["cost_usd"], 9) for d in r["daily"]} == {
        "2025-11-04": round(L1, 9), "2025-11-05": round(P1 + P2 + M2 + M3, 9)}


def test_wal_file_is_fingerprinted_not_parsed(tmp_path):
    import shutil
    shutil.copy(OC / "opencode.db", tmp_path / "opencode.db")
    (tmp_path / "opencode.db-wal").write_bytes(b"")
    files = opencode.find_files([tmp_path])
    assert [f.name for f in files] == ["opencode.db", "opencode.db-wal"]
    records, _, end, _ = opencode.scan_file(tmp_path / "opencode.db-wal")
    assert records == [] and end == 0


def test_subscription_agents_next_to_api_usage_are_never_called_a_bill(run_json):
    r = run_json("--path", OC, "--path", FIXTURES / "codex")
    assert r["regime"] == "mixed" and r["value_label"] == "API-equivalent value + cost"
    monthly = run_json("monthly", "--path", OC, "--path", FIXTURES / "codex", "--timezone", "UTC")
    assert monthly["value_label"] == "Value+Cost"
    assert set(monthly["monthly"][0]["value_vs_plan"]) == {"codex"}  # plans cover subscription agents only


def _store(root, sessions, messages, parts=(), name="opencode.db"):
    """An OpenCode v1.2+ database (the real tables' columns) with these rows."""
    import json
    import sqlite3
    root.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(root / name) as db:
        db.execute("CREATE TABLE session (id TEXT PRIMARY KEY, project_id TEXT, parent_id TEXT, slug TEXT, directory TEXT,"
                   " title TEXT, version TEXT, time_created INTEGER, time_updated INTEGER)")
        db.execute("CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER, "
                   "time_updated INTEGER, data TEXT)")
        db.execute("CREATE TABLE part (id TEXT PRIMARY KEY, message_id TEXT, session_id TEXT, time_created INTEGER, "
                   "time_updated INTEGER, data TEXT)")
        for sid, version in sessions:
            db.execute("INSERT INTO session VALUES (?, 'prj', NULL, 's', '/w/p', 't', ?, 1, 1)", (sid, version))
        for mid, sid, data in messages:
            db.execute("INSERT INTO message VALUES (?, ?, 1, 1, ?)", (mid, sid, json.dumps(data)))
        for pid, mid, sid, data in parts:
            db.execute("INSERT INTO part VALUES (?, ?, ?, 1, 1, ?)", (pid, mid, sid, json.dumps(data)))
    return root


def _assistant(model, provider, tokens, created=1780000000000):
    return {"role": "assistant", "time": {"created": created, "completed": created + 5000}, "parentID": "msg_u",
            "modelID": model, "providerID": provider, "mode": "build", "agent": "build",
            "path": {"cwd": "/w/p", "root": "/w/p"}, "cost": 0, "tokens": tokens, "finish": "stop"}


def test_reasoning_apart_from_output_since_v1_3_16(tmp_path):
    """From OpenCode v1.3.16 `output` no longer holds the reasoning, for every provider (#21047): the
    call was billed for both. `tokens.total` tells the releases apart (a v1.3.15 total holds the
    reasoning once, inside output); without it the session's version; without either, the older
    releases' rule (apart only for Google's models)."""
    def tok(out, reasoning, total=None):
        t = {"input": 1000, "output": out, "reasoning": reasoning, "cache": {"read": 4000, "write": 0}}
        return t if total is None else dict(t, total=total)
    messages = [
        ("msg_a", "ses_new", _assistant("gpt-5", "openai", tok(500, 1500, 1000 + 500 + 1500 + 4000))),  # new, total
        ("msg_b", "ses_new", _assistant("gpt-5", "openai", tok(500, 1500))),                          # new, no total
        ("msg_c", "ses_old", _assistant("gpt-5", "openai", tok(2000, 1500, 1000 + 2000 + 4000))),    # old, total
        ("msg_d", "ses_old", _assistant("gpt-5", "openai", tok(2000, 1500))),                         # old, no total
        ("msg_e", "ses_old", _assistant("gemini-2.5-pro", "google", tok(500, 1500))),                 # old, Google
        ("msg_f", "ses_none", _assistant("gpt-5", "github-copilot", tok(500, 1500, 7000))),           # no version
        ("msg_g", "ses_new", _assistant("gpt-5", "openai", tok(0, 0))),                               # steps below
    ]
    parts = [("prt_1", "msg_g", "ses_new", {"type": "step-finish", "reason": "tool-calls", "cost": 0,
                                             "tokens": tok(100, 300, 1000 + 100 + 300 + 4000)}),
             ("prt_2", "msg_g", "ses_new", {"type": "step-finish", "reason": "stop", "cost": 0, "tokens": tok(50, 0)})]
    root = _store(tmp_path / "opencode", [("ses_new", "1.18.31"), ("ses_old", "1.3.15")], messages, parts)
    got = {e.message_id: (e.tokens.output, e.tokens.reasoning) for e in collect(("opencode",), [root]).events}
    assert got == {"msg_a": (2000, 1500), "msg_b": (2000, 1500), "msg_c": (2000, 1500), "msg_d": (2000, 1500),
                   "msg_e": (2000, 1500), "msg_f": (2000, 1500), "msg_g:prt_1": (400, 300), "msg_g:prt_2": (50, 0)}


@pytest.mark.parametrize("version, want", [("1.3.16", (1, 3, 16)), ("v1.18.31-beta.2", (1, 18, 31)),
                                           ("0.0.0-dev", None), ("local", None), (None, None), ("1.3", None)])
def test_release_numbers(version, want):
    assert opencode.release(version) == want


def test_every_channels_database_is_read_and_a_call_in_two_counts_once(tmp_path, isolated_env):
    """OpenCode names its database by install channel: opencode.db (latest, beta, prod), else
    opencode-<channel>.db. A dev or local build beside a release keeps a history of its own."""
    tok = {"input": 1000, "output": 500, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    root = isolated_env / ".local" / "share" / "opencode"
    _store(root, [("ses_a", "1.18.31")], [("msg_a", "ses_a", _assistant("gpt-5", "openai", tok))])
    _store(root, [("ses_a", "1.18.31"), ("ses_b", "0.0.0-dev")],
           [("msg_a", "ses_a", _assistant("gpt-5", "openai", tok)),  # (a copy: counted once)
            ("msg_b", "ses_b", _assistant("gpt-5", "openai", tok))], name="opencode-dev.db")
    assert [f.name for f in opencode.find_files(opencode.default_paths())] == ["opencode-dev.db", "opencode.db"]
    for c in (collect(("opencode",)), collect(("opencode",), [root])):
        assert sorted(e.message_id for e in c.events) == ["msg_a", "msg_b"]
        assert c.stats.skipped["duplicate_call"] == 1


def test_a_database_a_writer_holds_locked_is_read_as_of_its_last_commit(tmp_path):
    """A store in rollback-journal mode under a writer's exclusive lock, its uncommitted pages already
    spilled into the file: read from a copy with the writer's hot journal, rolled back to the last
    commit (it used to read as no usage, after a 5 s wait)."""
    import sqlite3
    import time
    tok = {"input": 1000, "output": 500, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    root = _store(tmp_path / "opencode", [("ses_a", "1.18.31")],
                  [(f"msg_{i:03d}", "ses_a", _assistant("gpt-5", "openai", tok)) for i in range(200)])
    writer = sqlite3.connect(root / "opencode.db", isolation_level=None)
    writer.execute("PRAGMA journal_mode=DELETE")
    writer.execute("PRAGMA cache_size=1")  # (the writer spills its changed pages into the file before commit)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("UPDATE message SET data = replace(data, '\"output\": 500', '\"output\": 9')")
    writer.execute("DELETE FROM message WHERE id > 'msg_100'")
    try:
        assert (root / "opencode.db-journal").is_file()
        began = time.monotonic()
        c = collect(("opencode",), [root])
        assert time.monotonic() - began < 3
        assert len(c.events) == 200 and {e.tokens.output for e in c.events} == {500}
        assert not c.stats.skipped
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def _v2_store(root, v1_messages=(), v1_parts=(), v2_rows=()):
    """A store OpenCode 2.x has written to: the 1.x tables (kept), `session_v2` and `session_message`
    (drizzle `SessionMessageTable`: the role in `type`, `data` the message without id and type)."""
    import json
    import sqlite3
    _store(root, [("ses_1", "1.18.0")], v1_messages, v1_parts)
    with sqlite3.connect(root / "opencode.db") as db:
        db.execute("CREATE TABLE session_v2 (id TEXT PRIMARY KEY, project_id TEXT, directory TEXT, title TEXT, "
                   "time_created INTEGER, time_updated INTEGER)")
        db.execute("INSERT INTO session_v2 VALUES ('ses_1', 'prj', '/w/shop', 't', 1, 1)")
        db.execute("CREATE TABLE session_message (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, type TEXT NOT NULL, "
                   "seq INTEGER NOT NULL, time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL, data TEXT NOT NULL)")
        for seq, (mid, kind, data) in enumerate(v2_rows):
            db.execute("INSERT INTO session_message VALUES (?, 'ses_1', ?, ?, 1767312000001, 1767312000001, ?)",
                       (mid, kind, seq, json.dumps(data)))
    return root


V2_TOKENS = {"input": 1000, "output": 200, "reasoning": 50, "cache": {"read": 3000, "write": 400}}
V2_CALL = {"agent": "build", "model": {"id": "claude-sonnet-4-5", "providerID": "anthropic"},
           "content": [{"type": "text", "id": "evt_text1", "text": "done"}], "finish": "stop", "cost": 0.05,
           "tokens": V2_TOKENS, "time": {"created": 1767312000001, "completed": 1767312004001}}
V2_USER = {"text": "hello", "files": [], "agents": [], "references": [], "time": {"created": 1767312000000}}
V1_COPY = dict(_assistant("claude-sonnet-4-5", "anthropic", dict(V2_TOKENS, total=4650), created=1767312000001),
               cost=0.05)
# Sonnet 4.5: 3 / 15 / read 0.30 / write 3.75 per MTok; the reasoning billed on top of output
V2_USD = (1000 * 3 + (200 + 50) * 15 + 3000 * 0.3 + 400 * 3.75) / 1e6


def test_opencode_2_session_messages_are_the_calls(tmp_path, run_json):
    """OpenCode 2.x writes `session_message` only: one assistant row per API request; user rows and a
    request still running (no tokens) are not calls."""
    root = _v2_store(tmp_path / "opencode", v2_rows=[
        ("msg_u1", "user", V2_USER), ("msg_a1", "assistant", V2_CALL),
        ("msg_a2", "assistant", {k: v for k, v in V2_CALL.items() if k not in ("tokens", "cost", "finish")})])
    c = collect(("opencode",), [root])
    assert [(e.message_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.reasoning,
             e.tokens.cache_read, e.tokens.cache_write_5m, e.occurred_at.isoformat()) for e in c.events] == [
        ("msg_a1", "claude-sonnet-4-5", "shop", 1000, 250, 50, 3000, 400, "2026-01-02T00:00:00.001000+00:00")]
    assert run_json("--path", root)["totals"]["cost_usd"] == pytest.approx(V2_USD, abs=1e-12)


@pytest.mark.parametrize("copy_id", ["msg_a1", "evt_legacy_backfill_m_00000001_0123456789abcdef01234567"])
def test_opencode_2s_copy_of_a_1x_message_counts_once(tmp_path, copy_id):
    """2.x copies the 1.x history on its first start and keeps it: a copy under the same id, or under a
    new one (same session, time and tokens), counts once, from the 1.x rows and their step parts."""
    root = _v2_store(tmp_path / "opencode", v1_messages=[("msg_a1", "ses_1", V1_COPY)],
                     v2_rows=[(copy_id, "assistant", V2_CALL)])
    c = collect(("opencode",), [root])
    assert [e.message_id for e in c.events] == ["msg_a1"] and c.stats.skipped["duplicate_call"] == 1
    steps = [("prt_s1", "msg_a1", "ses_1", {"type": "step-finish", "reason": "tool-calls", "cost": 0.03, "tokens": {
        "total": 2620, "input": 600, "output": 100, "reasoning": 20, "cache": {"read": 1500, "write": 400}}}),
             ("prt_s2", "msg_a1", "ses_1", {"type": "step-finish", "reason": "stop", "cost": 0.02, "tokens": {
                 "total": 2030, "input": 400, "output": 100, "reasoning": 30, "cache": {"read": 1500, "write": 0}}})]
    root = _v2_store(tmp_path / "steps", v1_messages=[("msg_a1", "ses_1", V1_COPY)], v1_parts=steps,
                     v2_rows=[(copy_id, "assistant", V2_CALL)])
    evs = collect(("opencode",), [root]).events
    assert [e.message_id for e in evs] == ["msg_a1:prt_s1", "msg_a1:prt_s2"]
    assert sum(e.tokens.input for e in evs) == 1000 and sum(e.tokens.output for e in evs) == 250


def test_a_1x_call_and_a_2x_call_of_one_session_both_count(tmp_path):
    later = dict(V2_CALL, time={"created": 1767312099000, "completed": 1767312100000})
    root = _v2_store(tmp_path / "opencode", v1_messages=[("msg_a1", "ses_1", V1_COPY)],
                     v2_rows=[("msg_a1", "assistant", V2_CALL), ("msg_b2", "assistant", later)])
    assert [e.message_id for e in collect(("opencode",), [root]).events] == ["msg_a1", "msg_b2"]


def test_a_copy_taken_while_the_writer_moved_is_taken_again(tmp_path, monkeypatch):
    """The database and its journal are copied as one: when the writer changed either while they were
    copied (its pages and its journal from two moments), the copy is taken again."""
    from nomira.sources import sqlite_ro
    db = tmp_path / "opencode.db"
    db.write_bytes(b"x" * 100)
    journal = tmp_path / "opencode.db-journal"
    journal.write_bytes(b"j" * 10)
    copies, real = [], sqlite_ro.shutil.copyfile

    def copying(src, dst):
        copies.append(src)
        real(src, dst)
        if len(copies) == 1:  # (the writer commits while the first copy is taken)
            journal.unlink()
            db.write_bytes(b"y" * 100)
    monkeypatch.setattr(sqlite_ro.shutil, "copyfile", copying)
    copy = tmp_path / "c" / "opencode.db"
    copy.parent.mkdir()
    sqlite_ro._copy_still(db, copy)
    assert copy.read_bytes() == b"y" * 100 and not (copy.parent / "opencode.db-journal").exists()
    assert copies.count(db) == 2  # (taken again once)


def test_opencodes_own_cost_is_kept_beside_the_priced_one(tmp_path, run_json):
    """OpenCode's `cost` (a step part's, else the message's; ccusage reports this figure) is each call's
    `agent_cost_usd`, shown beside Nomira's pricing of the tokens, never instead of it."""
    steps = [("prt_s1", "msg_a1", "ses_1", {"type": "step-finish", "reason": "tool-calls", "cost": 0.03, "tokens": {
        "input": 600, "output": 100, "reasoning": 20, "cache": {"read": 1500, "write": 400}}}),
             ("prt_s2", "msg_a1", "ses_1", {"type": "step-finish", "reason": "stop", "tokens": {
                 "input": 400, "output": 100, "reasoning": 30, "cache": {"read": 1500, "write": 0}}})]
    later = dict(V2_CALL, time={"created": 1767312099000, "completed": 1767312100000})
    root = _v2_store(tmp_path / "opencode", v1_messages=[("msg_a1", "ses_1", V1_COPY)], v1_parts=steps,
                     v2_rows=[("msg_b1", "assistant", later)])
    evs = collect(("opencode",), [root]).events
    assert [(e.message_id, e.agent_cost_usd) for e in evs] == [
        ("msg_a1:prt_s1", 0.03), ("msg_a1:prt_s2", None), ("msg_b1", 0.05)]
    (model,) = run_json("--path", root)["models"]
    assert model["agent_cost_usd"] == pytest.approx(0.08) and model["cost_usd"] != pytest.approx(0.08)
