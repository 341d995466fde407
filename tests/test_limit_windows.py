"""Limit snapshots shipped and stored (issue 17): the wire kind end to end, the collector's current
windows per developer, the /limits page and its twins, the hook path."""
import io
import json
import re
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nomira.ledger import limits, store
from nomira.cli import main
from nomira.ledger.limits import LimitSnapshot
from nomira.reports.limits import recent_pace
from nomira.ledger.wire import limit_to_wire

UTC = timezone.utc
FIXTURES = Path(__file__).parent / "fixtures"
CODEX = ["--path", str(FIXTURES / "codex")]
# tests/fixtures/codex: the last token_count line's rate_limits (2025-11-03T09:19:00Z)
CODEX_PRIMARY = ("codex", "primary", 25.0, 300, "2025-11-03T13:15:00+00:00")
CODEX_SECONDARY = ("codex", "secondary", 3.5, 10080, "2025-11-09T13:15:00+00:00")


def snap(used, observed, resets, window="five_hour", agent="claude_code", minutes=300, source="statusline"):
    return LimitSnapshot(agent, window, used, minutes, resets, source, observed)


def rec(used, observed, resets=datetime(2026, 1, 1, 15, 0, tzinfo=UTC), developer="ana", **kw):
    return limit_to_wire(snap(used, observed, resets, **kw), {"developer": developer})


def windows(path, tenant=None):
    db = store.open_db(path)
    try:
        return [(w.tenant, w.developer, w.snapshot.agent, w.snapshot.window, w.snapshot.used_percent,
                 w.snapshot.window_minutes, w.snapshot.resets_at.isoformat() if w.snapshot.resets_at else None,
                 w.snapshot.source) for w in limits.current(db, tenant)]
    finally:
        db.close()


def ship(capsys, *args):
    capsys.readouterr()
    rc = main(["ship", *CODEX, "--developer", "ana", *map(str, args)])
    return rc, capsys.readouterr().err


# --- the store ---------------------------------------------------------------------

def test_store_keeps_the_newest_per_window_and_is_idempotent(store_target):
    db = store.open_db(store_target)
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    first = [rec(40.0, t0), rec(10.0, t0, window="seven_day", minutes=10080,
                                  resets=datetime(2026, 1, 5, tzinfo=UTC))]
    assert [d for d, _ in limits.store_snapshots(db, first)] == [False, False]
    again = limits.store_snapshots(db, first)  # the same snapshots again: nothing changes
    assert [d for d, _ in again] == [True, True]
    assert limits.store_snapshots(db, [rec(30.0, t0 - timedelta(minutes=5))])[0][0] is True  # older: ignored
    rows = {(w.snapshot.window, w.snapshot.used_percent, w.prev_used_percent) for w in limits.current(db, None)}
    assert rows == {("five_hour", 40.0, None), ("seven_day", 10.0, None)}
    # 30 minutes later, 55%: the earlier snapshot of the same window period is the anchor of the recent pace
    limits.store_snapshots(db, [rec(55.0, t0 + timedelta(minutes=30))])
    five = [w for w in limits.current(db, None) if w.snapshot.window == "five_hour"][0]
    assert (five.snapshot.used_percent, five.prev_used_percent, five.prev_observed_at) == (55.0, 40.0, t0)
    # another 20 minutes: the anchor stays (it is less than an hour old)
    limits.store_snapshots(db, [rec(60.0, t0 + timedelta(minutes=50))])
    five = [w for w in limits.current(db, None) if w.snapshot.window == "five_hour"][0]
    assert (five.snapshot.used_percent, five.prev_used_percent) == (60.0, 40.0)
    # 70 minutes after the anchor: it moves up to the last stored snapshot
    limits.store_snapshots(db, [rec(62.0, t0 + timedelta(minutes=70))])
    five = [w for w in limits.current(db, None) if w.snapshot.window == "five_hour"][0]
    assert (five.prev_used_percent, five.prev_observed_at) == (60.0, t0 + timedelta(minutes=50))
    # the window rolled over (a new reset time): no anchor from the old period
    limits.store_snapshots(db, [rec(2.0, t0 + timedelta(hours=3), resets=datetime(2026, 1, 1, 20, 0, tzinfo=UTC))])
    five = [w for w in limits.current(db, None) if w.snapshot.window == "five_hour"][0]
    assert (five.snapshot.used_percent, five.prev_used_percent) == (2.0, None)
    # two developers and two tenants stay apart
    limits.store_snapshots(db, [rec(5.0, t0, developer="bo")], tenant="zeta")
    assert {(w.tenant, w.developer) for w in limits.current(db, None)} == {("", "ana"), ("zeta", "bo")}
    assert {(w.tenant, w.developer) for w in limits.current(db, "zeta")} == {("zeta", "bo")}


def test_recent_pace_is_hand_computed():
    reset = datetime(2026, 1, 1, 15, 0, tzinfo=UTC)
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    # 40% -> 55% in 30 min: 0.5%/min, so the last 45% take 90 min: 100% at 14:00, 1 h before the 15:00
    # reset; at the reset the pace reaches 55% + 0.5 x 150 min = 130%
    s = snap(55.0, t0 + timedelta(minutes=30), reset)
    p = recent_pace(s, 40.0, t0, now=t0 + timedelta(minutes=31))
    assert p.status == "will_hit" and p.hit_at == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)
    assert p.at_reset_percent == pytest.approx(130.0)
    # 40% -> 42% in 60 min: 2%/h, 2 h left (13:00 -> 15:00): 46% at the reset
    p = recent_pace(snap(42.0, t0 + timedelta(hours=1), reset), 40.0, t0, now=t0 + timedelta(hours=1))
    assert p.status == "wont_hit" and p.at_reset_percent == pytest.approx(46.0)
    assert recent_pace(s, 40.0, s.observed_at - timedelta(minutes=4), now=s.observed_at) is None  # span too short
    assert recent_pace(s, 70.0, t0, now=s.observed_at) is None  # went down: not one period
    assert recent_pace(s, None, None, now=s.observed_at) is None
    assert recent_pace(s, 40.0, t0, now=reset + timedelta(seconds=1)).status == "reset"


def test_codex_allowances_on_usage_events_fill_in(tmp_path):
    """A store fed only usage events (no limit snapshots) still shows Codex windows, without a reset time."""
    db = store.open_db(tmp_path / "s.db")
    assert main(["ship", *CODEX, "--developer", "ana", "--db", str(tmp_path / "x.db")]) == 0
    events = [json.loads(b) for (b,) in store.open_db(tmp_path / "x.db").execute("SELECT body FROM raw_events")]
    store.ingest(db, events)
    got = {(w.snapshot.window, w.snapshot.used_percent, w.snapshot.window_minutes, w.snapshot.resets_at,
            w.snapshot.source) for w in limits.current(db, None)}
    # the last call's allowance (a later token_count line without usage carries newer figures: no event)
    assert got == {("primary", 14.0, 300, None, "event"), ("secondary", 3.0, 10080, None, "event")}


# --- nomira ship: local store and remote collector -----------------------------------

def test_ship_to_a_local_store_carries_limit_snapshots_once(tmp_path, capsys, isolated_env):
    db = tmp_path / "local.db"
    # what `nomira statusline` saved for Claude Code (the state file) ships too
    observed = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    limits.save_state([snap(42.0, observed, observed + timedelta(hours=2))])
    rc, err = ship(capsys, "--db", db)
    assert rc == 0 and "(and 3 limit snapshot(s))" in err
    assert windows(db) == [("", "ana", "claude_code", "five_hour", 42.0, 300,
                            (observed + timedelta(hours=2)).isoformat(), "statusline"),
                           ("", "ana", *CODEX_PRIMARY, "log"), ("", "ana", *CODEX_SECONDARY, "log")]
    rc, err = ship(capsys, "--db", db)  # nothing new: the ledger knows these snapshots were sent
    assert rc == 0 and "limit snapshot" not in err and "0 new events" in err
    raw = store.open_db(db).execute("SELECT COUNT(*) FROM raw_events").fetchone()[0]
    assert raw == 4  # usage events only: a limit snapshot is no call


def test_ship_remote_through_the_spool_and_the_collector_dedups(collector, capsys):
    url, path = collector
    rc, err = ship(capsys, "--remote", url)
    assert rc == 0 and "(and 2 limit snapshot(s))" in err and "delivered 6" in err  # 4 calls + 2 windows
    assert windows(path) == [("", "ana", *CODEX_PRIMARY, "log"), ("", "ana", *CODEX_SECONDARY, "log")]
    rc, err = ship(capsys, "--remote", url)
    assert rc == 0 and "limit snapshot" not in err
    # the same record sent again (a re-shipped spool batch): accepted as a duplicate, nothing changes
    record = limit_to_wire(LimitSnapshot("codex", "primary", 25.0, 300, datetime(2025, 11, 3, 13, 15, tzinfo=UTC),
                                         "log", datetime(2025, 11, 3, 9, 19, tzinfo=UTC)), {"developer": "ana"})
    status, doc = post(url + "/v1/usage/events", {"events": [record]})
    assert status == 200 and doc["deduped"] == 1 and doc["events"][0]["deduped"] is True
    assert windows(path)[0][4] == 25.0


def post(url, doc, token=None):
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST", headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_collector_allowlist_tenant_and_answers_in_order(collector, tmp_path):
    url, path = collector
    now = datetime.now(UTC).replace(microsecond=0)
    good = rec(10.0, now, resets=now + timedelta(hours=1))
    for bad, field in (({**good, "prompt": "hi"}, "events[0].prompt"),
                       ({**good, "tags": {"developer": "ana", "project": "x"}}, "events[0].tags.project"),
                       ({**good, "observed_at": "2019-01-01T00:00:00Z"}, "events[0].observed_at"),
                       ({**good, "used_percent": "50"}, "events[0].used_percent")):
        status, doc = post(url + "/ingest", {"events": [bad]})
        assert status == 400 and doc["field"] == field, doc
    assert windows(path) == []
    usage = {"schema_version": 1, "source": "codex", "provider": "openai", "model": "gpt-5",
             "occurred_at": now.isoformat(), "tokens": {"input": 10, "output": 5}, "tags": {"developer": "ana"},
             "message_id": "m1"}
    status, doc = post(url + "/v1/usage/events", {"events": [good, usage, good, usage]})
    assert status == 200 and [a["deduped"] for a in doc["events"]] == [False, False, True, True]
    assert doc["events"][1]["event_id"] == doc["events"][3]["event_id"] != doc["events"][0]["event_id"]
    # a tenant key: the tenant is forced, a claim of another tenant is refused
    db = store.open_db(path)
    key = store.create_tenant(db, "acme")
    status, doc = post(url + "/ingest", {"events": [{**good, "tags": {"developer": "bo", "tenant": "zeta"}}]}, key)
    assert status == 403
    status, doc = post(url + "/ingest", {"events": [{**good, "tags": {"developer": "bo"}}]}, key)
    assert status == 200 and doc["accepted"] == 1
    assert {(w[0], w[1]) for w in windows(path)} == {("", "ana"), ("acme", "bo")}


def test_hashed_developers_hash_limit_snapshots_alike(tmp_path):
    db = store.open_db(tmp_path / "h.db")
    store.enable_identifier_hashing(db)
    now = datetime.now(UTC)
    limits.store_snapshots(db, [rec(10.0, now, resets=now + timedelta(hours=1), developer="ana@example.com")])
    from nomira.ledger.wire import to_wire  # noqa: F401 - the same hash as usage events get
    dev = limits.current(db, None)[0].developer
    assert dev.startswith("h-") and "ana" not in dev
    assert dev == store._hash_identifiers({"tags": {"developer": "ana@example.com"}},
                                          store.setting_value(db, "identifier_hash_key"))["tags"]["developer"]


# --- the hook path -------------------------------------------------------------------

def test_codex_hook_queues_limit_snapshots_with_the_session(tmp_path, isolated_env, monkeypatch):
    from nomira.capture import destination, hook
    from nomira.commands.spool import open_spool
    monkeypatch.setattr(hook, "spawn_flush", lambda env=None: None)  # no detached flusher in a test
    destination.save({"remote": "http://127.0.0.1:9", "developer": "ana"})
    rollout = next((FIXTURES / "codex").rglob("rollout-*.jsonl"))
    result, _events = hook.ship_files([rollout], "codex")
    assert result["queued"] and result["limit_snapshots"] == 2
    queued = [e for p in open_spool().batches() for e in json.loads(p.read_text())["payload"]]
    snaps = sorted((e["window"], e["used_percent"]) for e in queued if e.get("kind") == "limit_snapshot")
    assert snaps == [("primary", 25.0), ("secondary", 3.5)]
    result, _events = hook.ship_files([rollout], "codex")  # the next turn: nothing new to queue
    assert not result["queued"] and result["limit_snapshots"] == 0


# --- the /limits page ---------------------------------------------------------------

def get(app, path, token=None):
    route, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": route, "QUERY_STRING": query, "wsgi.input": io.BytesIO(),
               "REMOTE_ADDR": "127.0.0.1", **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {})}
    got = {}
    body = b"".join(app(environ, lambda status, headers: got.update(status=status, headers=dict(headers))))
    return int(got["status"].split()[0]), got["headers"], body.decode()


def test_limits_page_scoping_escaping_stale_projection_and_twins(store_target, monkeypatch):
    from nomira.commands.serve import make_app
    monkeypatch.delenv("NOMIRA_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("NOMIRA_INGEST_TOKEN", raising=False)
    db = store.open_db(store_target)
    app = make_app(store_target, "127.0.0.1")
    status, _, html = get(app, "/limits")
    assert status == 200 and "No limit snapshots yet" in html and "nomira statusline" in html
    assert json.loads(get(app, "/limits.json")[2])["limits"] == []
    key_a, key_z = store.create_tenant(db, "acme"), store.create_tenant(db, "zeta")
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(minutes=30)
    resets = now + timedelta(hours=2)
    # ana (acme): 40% -> 55% over 30 min, 2 h to the reset: at 0.5%/min 100% comes in 90 min, 30 min early
    limits.store_snapshots(db, [rec(40.0, t0, resets=resets, developer="ana&<b>")], tenant="acme")
    limits.store_snapshots(db, [rec(55.0, now, resets=resets, developer="ana&<b>")], tenant="acme")
    # bo (zeta): a Codex weekly window seen 3 hours ago: stale
    limits.store_snapshots(db, [rec(12.0, now - timedelta(hours=3), resets=now + timedelta(days=2), developer="bob-zeta",
                                    agent="codex", window="secondary", minutes=10080, source="log")], tenant="zeta")
    status, _, html = get(app, "/limits?tenant=zeta", key_a)  # asks for zeta, gets acme
    assert status == 200 and "bob-zeta" not in html
    assert "ana&amp;&lt;b&gt;" in html and "ana&<b>" not in html
    assert "Claude 5-hour" in html and "55%" in html
    assert re.search(r"at the recent pace: 100% in 1 h (29|30) min, 30 min before the reset", html)  # page's clock
    assert 'href="/developer/ana%26%3Cb%3E' in html and "stale</b>" not in html
    doc = json.loads(get(app, "/limits.json", key_a)[2])
    (row,) = doc["limits"]
    assert row["tenant"] == "acme" and row["pace"] == "recent" and row["status"] == "will_hit"
    assert datetime.fromisoformat(row["hit_at"]) == now + timedelta(minutes=90)
    assert row["at_reset_percent"] == pytest.approx(115.0) and row["stale"] is False
    status, headers, text = get(app, "/limits.csv", key_z)
    lines = text.splitlines()
    assert status == 200 and headers["Content-Type"].startswith("text/csv") and len(lines) == 2
    assert lines[0].startswith("tenant,developer,agent,window") and "zeta,bob-zeta,codex,secondary" in lines[1]
    assert ",1,window average,wont_hit," in lines[1] and "acme" not in text  # stale, and only zeta's
    # the admin sees both tenants, with a tenant column; the weekly window is marked stale
    status, _, html = get(app, "/limits")
    assert "<th>Tenant</th>" in html and "ana&amp;&lt;b&gt;" in html and ">bob-zeta</a>" in html
    assert "stale</b>" in html and "Codex secondary (7 d)" in html
    assert json.loads(get(app, "/limits.json?developer=bob-zeta")[2])["limits"][0]["developer"] == "bob-zeta"
    _, _, home = get(app, "/", key_a)
    assert 'href="/limits' in home  # the nav links the page
    assert get(app, "/limits.xml")[0] == 404


# --- doctor: the last successful ship per destination (issue 17) ------------------------

def test_doctor_shows_the_last_successful_ship_per_destination(tmp_path, capsys, collector, monkeypatch):
    from nomira.ledger.spool import Spool
    real = Spool.flush
    monkeypatch.setattr(Spool, "flush", lambda self, post, **kw: real(self, post, **dict(kw, sleep=lambda s: None)))
    url, _path = collector
    capsys.readouterr()
    main(["--json", "doctor"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["last ship"]["detail"] == "nothing shipped yet"
    before = datetime.now(UTC).replace(microsecond=0)
    assert ship(capsys, "--db", tmp_path / "local.db")[0] == 0
    assert ship(capsys, "--remote", url)[0] == 0
    main(["--json", "doctor"])
    check = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}["last ship"]
    last = check["data"]["last_success"]
    assert set(last) == {str((tmp_path / "local.db").resolve()), url}
    assert all(before <= datetime.fromisoformat(at) <= datetime.now(UTC) for at in last.values())
    assert f"{url}: last successful ship" in check["detail"] and "(6 records that run)" in check["detail"]
    # a collector that is down: the last success stays the earlier one
    down = "http://127.0.0.1:9"
    assert ship(capsys, "--remote", down)[0] == 1
    main(["--json", "doctor"])
    last = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}["last ship"]["data"]["last_success"]
    assert down not in last
