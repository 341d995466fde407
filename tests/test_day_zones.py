"""Pinned day boundary (issue 28): the zone that decides a call's day is pinned per developer by the
first shipped batch that names one; a laptop in another zone is filed under the pinned day (said once);
re-shipping moves nothing; `--repin-day-zone` applies from then on; a bad zone is exit 2 / HTTP 400.

Every store test runs on SQLite and on PostgreSQL (`store_target`). The zones are chosen 25 hours apart
(UTC+14 and UTC-11), so every call falls on a different local day in the two; the expected days are
computed here with zoneinfo from the calls' own timestamps, never written down.
"""
import io
import json
import threading
import time
from datetime import datetime
from wsgiref.simple_server import WSGIRequestHandler, make_server
from zoneinfo import ZoneInfo

import pytest

from conftest import FIXTURES
from nomira import dirs
from nomira.cli import main
from nomira.commands.serve import ThreadingWSGIServer, make_app
from nomira.ledger import store
from nomira.ledger.ship import http_post
from nomira.ledger.spool import BATCH_FIELDS, Spool

EAST, WEST, THIRD = "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata"  # UTC+14, UTC-11, UTC+5:30
CLAUDE = ["--path", str(FIXTURES / "claude")]
CODEX = ["--path", str(FIXTURES / "codex")]


def day_in(zone: str, at: str) -> str:
    return datetime.fromisoformat(at).astimezone(ZoneInfo(zone)).date().isoformat()


def call(i, at="2026-06-01T23:30:00Z", developer="ana", output=2, **over):
    e = {"schema_version": 1, "source": "claude_code", "provider": "anthropic", "model": "claude-opus-4-7",
         "occurred_at": at, "tokens": {"input": 10, "output": output}, "cost_usd": 0.001,
         "tags": {"developer": developer, "project": "shop", "feature": "search"}, "message_id": f"msg_{i}",
         "session_id": f"s{i}"}
    e.update(over)
    return e


@pytest.fixture
def app(store_target, monkeypatch):
    for var in ("NOMIRA_INGEST_TOKEN", "NOMIRA_DASHBOARD_PASSWORD", "NOMIRA_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return make_app(store_target, "127.0.0.1")


def post(app, body, path="/v1/usage/events"):
    """The collector's WSGI app called in-process: (status, answer)."""
    data = json.dumps(body).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "CONTENT_LENGTH": str(len(data)),
               "CONTENT_TYPE": "application/json", "wsgi.input": io.BytesIO(data), "REMOTE_ADDR": "127.0.0.1",
               "HTTP_HOST": "127.0.0.1"}
    out = {}
    text = b"".join(app(environ, lambda status, headers: out.update(status=int(status.split()[0]))))
    return out["status"], json.loads(text)


def days(db) -> dict[str, int]:
    """Calls per day in the daily rollup (what every dashboard's day series reads)."""
    return {d: int(n) for d, n in db.execute("SELECT day, SUM(calls) FROM rollups WHERE grain = 'day' GROUP BY day")}


def snapshot(db) -> dict:
    """Everything a day keys: rollups, tag rollups, serving views, sessions, the events' days."""
    q = {"rollups": "SELECT grain, day, developer, model, calls, output FROM rollups ORDER BY 1, 2, 3, 4",
         "tags": "SELECT tag, value, day, calls, output FROM tag_rollups ORDER BY 1, 2, 3",
         "views": "SELECT view, day, name, calls, output FROM daily_views ORDER BY 1, 2, 3",
         "sessions": "SELECT tag, value, day, sessions FROM session_counts ORDER BY 1, 2, 3",
         "events": "SELECT dedup_key, day, output FROM events ORDER BY 1"}
    store.fold(db)  # the tag grains' pending rows (0020), as a view does
    return {k: [tuple(r) for r in db.execute(sql)] for k, sql in q.items()}


def pinned(db, developer="ana", tenant=""):
    return (store.day_zone_of(db, developer, tenant) or {}).get("zone")


# --- the collector (both engines) ---

def test_first_batch_pins_its_zone_and_files_its_calls_under_that_zones_day(app):
    at = "2026-06-01T23:30:00Z"
    status, body = post(app, {"events": [call(1, at)], "day_zone": EAST})
    assert status == 200 and "notes" not in body  # nothing to say: this laptop is where the pin is
    assert pinned(app.db) == EAST
    assert days(app.db) == {day_in(EAST, at): 1} and day_in(EAST, at) != at[:10]
    # every serving view keys by the same day
    snap = snapshot(app.db)
    assert {r[1] for r in snap["rollups"]} == {r[2] for r in snap["tags"]} == {r[1] for r in snap["views"]} == {
        r[2] for r in snap["sessions"]} == {day_in(EAST, at)}


def test_another_zone_is_filed_under_the_pinned_day_and_said_once(app):
    assert post(app, {"events": [call(1, "2026-05-20T20:00:00Z")], "day_zone": EAST})[0] == 200
    at = "2026-06-03T06:00:00Z"
    assert day_in(EAST, at) != day_in(WEST, at)
    status, body = post(app, {"events": [call(2, at)], "day_zone": WEST})
    assert status == 200 and len(body["notes"]) == 1
    note = body["notes"][0]
    assert EAST in note and WEST in note and "--repin-day-zone" in note
    assert days(app.db)[day_in(EAST, at)] == 1 and day_in(WEST, at) not in days(app.db)
    status, body = post(app, {"events": [call(3, at)], "day_zone": WEST})  # still there: not said again
    assert status == 200 and "notes" not in body
    assert days(app.db)[day_in(EAST, at)] == 2
    assert post(app, {"events": [call(4, at)], "day_zone": EAST})[1].get("notes") is None  # home again
    assert "notes" in post(app, {"events": [call(5, at)], "day_zone": WEST})[1]  # a new trip is said again
    assert pinned(app.db) == EAST
    # the legacy path answers the same way
    assert "notes" in post(app, {"events": [call(6, at)], "day_zone": THIRD}, path="/ingest")[1]


def test_reshipping_the_same_calls_moves_and_double_counts_nothing(app):
    batch = [call(i, f"2026-06-0{i}T{5 * i:02d}:15:00Z") for i in range(1, 5)]
    assert post(app, {"events": batch, "day_zone": EAST})[0] == 200
    before = snapshot(app.db)
    for zone in (WEST, THIRD, None, EAST):
        status, body = post(app, {"events": batch, **({"day_zone": zone} if zone else {})})
        assert status == 200 and body["accepted"] == 0 and body["deduped"] == len(batch)
    assert snapshot(app.db) == before
    assert sum(days(app.db).values()) == len(batch)


def test_repin_applies_from_then_on_and_days_already_filed_never_move(app):
    old_at, new_at = "2026-06-01T23:30:00Z", "2026-06-05T23:30:00Z"
    assert post(app, {"events": [call(1, old_at)], "day_zone": EAST})[0] == 200
    status, body = post(app, {"events": [call(2, new_at)], "day_zone": WEST, "repin_day_zone": True})
    assert status == 200 and len(body["notes"]) == 1 and "re-pinned" in body["notes"][0]
    assert pinned(app.db) == WEST
    ev = {r[0]: r[1] for r in app.db.execute("SELECT message_id, day FROM events")}
    assert ev == {"msg_1": day_in(EAST, old_at), "msg_2": day_in(WEST, new_at)}
    # a more complete copy of the old call (its final streaming snapshot) replaces it on its filed day
    status, body = post(app, {"events": [call(1, old_at, output=500)], "day_zone": WEST})
    assert status == 200 and body["deduped"] == 1
    assert app.db.execute("SELECT day, output FROM events WHERE message_id = 'msg_1'").fetchone() == (
        day_in(EAST, old_at), 500)
    assert days(app.db) == {day_in(EAST, old_at): 1, day_in(WEST, new_at): 1}
    # a batch from the old zone now is the one noted, and filed under the new pin
    body = post(app, {"events": [call(3, new_at)], "day_zone": EAST})[1]
    assert EAST in body["notes"][0] and app.db.execute(
        "SELECT day FROM events WHERE message_id = 'msg_3'").fetchone()[0] == day_in(WEST, new_at)
    # replay rebuilds every row from the raw rows: no day is recomputed in today's pin
    before = snapshot(app.db)
    r = store.replay(app.db)
    assert r["changed"] == r["added"] == r["removed"] == 0 and snapshot(app.db) == before


def test_a_final_snapshot_logged_past_midnight_files_the_call_under_its_own_day(app):
    """A call shipped mid-stream (its first snapshot at 23:59:58 in the pinned zone) and again once
    finished (its final snapshot at 00:00:03): the more complete copy is the call, on its own time's day,
    as the laptop's reports date it (by the snapshot they keep); every serving view moves with it, the old
    day holds nothing of it, and replay rebuilds the same."""
    first, final = "2026-06-01T09:59:58Z", "2026-06-01T10:00:03Z"  # (23:59:58 and 00:00:03 at UTC+14)
    assert day_in(EAST, first) != day_in(EAST, final)
    assert post(app, {"events": [call(1, first, output=3)], "day_zone": EAST})[0] == 200
    status, body = post(app, {"events": [call(1, final, output=400)], "day_zone": EAST})
    assert status == 200 and body["deduped"] == 1
    assert app.db.execute("SELECT day, output FROM events").fetchall() == [(day_in(EAST, final), 400)]
    assert days(app.db) == {day_in(EAST, first): 0, day_in(EAST, final): 1}  # (the old day's rows emptied)
    snap = snapshot(app.db)
    assert {r[1] for r in snap["rollups"] if r[4]} == {r[2] for r in snap["tags"] if r[3]} == {
        r[1] for r in snap["views"] if r[3]} == {day_in(EAST, final)}
    r = store.replay(app.db)
    assert r["changed"] == r["added"] == r["removed"] == 0 and snapshot(app.db) == snap


def test_pins_are_per_developer_and_tenant(app):
    at = "2026-06-01T23:30:00Z"
    post(app, {"events": [call(1, at, developer="ana")], "day_zone": EAST})
    post(app, {"events": [call(2, at, developer="bo")], "day_zone": WEST})
    status, body = post(app, {"events": [call(3, at, developer="ana"), call(4, at, developer="bo"),
                                         call(5, at, developer="cy")], "day_zone": THIRD})
    assert status == 200 and len(body["notes"]) == 2  # ana's and bo's pins; cy's is new: pinned, not noted
    got = {r[0]: r[1] for r in app.db.execute("SELECT message_id, day FROM events")}
    assert got == {"msg_1": day_in(EAST, at), "msg_2": day_in(WEST, at), "msg_3": day_in(EAST, at),
                   "msg_4": day_in(WEST, at), "msg_5": day_in(THIRD, at)}
    assert pinned(app.db, "cy") == THIRD and pinned(app.db, "ana", "acme") is None


@pytest.mark.parametrize("bad", ["Mars/Base", "../../etc/passwd", "/usr/share/zoneinfo/UTC", "localtime", "",
                                 "Europe/Paris\n", 42, ["UTC"], "x" * 100, "sk-ant-api03-" + "a" * 40])
def test_a_zone_that_is_no_iana_name_is_400_naming_the_field(app, bad):
    status, body = post(app, {"events": [call(1)], "day_zone": bad})
    assert status == 400 and body["field"] == "day_zone" and body["status"] == "error"
    assert "sk-ant" not in json.dumps(body)  # the value is never echoed
    assert days(app.db) == {} and pinned(app.db) is None  # nothing stored, nothing pinned


def test_repin_without_a_zone_or_not_a_boolean_is_400(app):
    assert post(app, {"events": [call(1)], "repin_day_zone": True})[1]["field"] == "repin_day_zone"
    status, body = post(app, {"events": [call(1)], "day_zone": EAST, "repin_day_zone": "yes"})
    assert (status, body["field"]) == (400, "repin_day_zone")
    assert days(app.db) == {}


def test_a_batch_without_a_zone_pins_nothing_and_follows_an_existing_pin(app):
    """An old spool record (or an import) names no zone: UTC days while the developer has no pin,
    the pinned zone's days once they have one; it never pins."""
    at = "2026-06-01T23:30:00Z"
    assert post(app, {"events": [call(1, at)]})[0] == 200
    assert pinned(app.db) is None and days(app.db) == {at[:10]: 1}
    post(app, {"events": [call(2, at)], "day_zone": EAST})
    assert post(app, {"events": [call(3, at)]})[1].get("notes") is None
    got = {r[0]: r[1] for r in app.db.execute("SELECT message_id, day FROM events")}
    assert got == {"msg_1": at[:10], "msg_2": day_in(EAST, at), "msg_3": day_in(EAST, at)}


def test_a_store_from_before_0017_keeps_its_days(store_target):
    names = [n for n, _ in store.MIGRATIONS]
    db = store.open_db(store_target, migrate_upto=names.index("0017_day_zones"))
    assert "day_zones" not in store.dialect_of(db).tables(db)
    db.close()
    db = store.open_db(store_target)
    assert store.migrate(db) == [] and "day_zones" in store.dialect_of(db).tables(db)
    at = "2026-06-01T23:30:00Z"
    store.ingest(db, [call(1, at)])  # a call filed before any pin: raw day_zone NULL, as 0017 leaves old rows
    assert days(db) == {at[:10]: 1}
    assert db.execute("SELECT day_zone FROM raw_events").fetchall() == [(None,)]
    assert store.ingest_batch(db, [call(1, at, output=9)], day_zone=EAST)[0] == [(True, store.event_id(
        db.execute("SELECT dedup_key FROM events").fetchone()[0]))]
    assert days(db) == {at[:10]: 1} and pinned(db) == EAST  # the old call kept its UTC day
    assert store.replay(db)["changed"] == 0


# --- nomira ship (both engines behind a real collector) ---

class Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def collector(store_target, monkeypatch):
    for var in ("NOMIRA_INGEST_TOKEN", "NOMIRA_DASHBOARD_PASSWORD", "NOMIRA_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    real = Spool.flush
    monkeypatch.setattr(Spool, "flush", lambda self, post, **kw: real(self, post, **dict(kw, sleep=lambda s: None)))
    app = make_app(store_target, "127.0.0.1")
    httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", app
    httpd.shutdown()
    httpd.server_close()


def ship(capsys, monkeypatch, zone, *args):
    capsys.readouterr()
    monkeypatch.setenv("TZ", zone)
    rc = main(["ship", "--developer", "ana", *map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def occurred(db, source) -> list[tuple[str, str]]:
    return [tuple(r) for r in db.execute("SELECT occurred_at, day FROM events WHERE source = ?", (source,))]


def test_ship_pins_the_laptops_zone_and_says_once_when_it_moves(collector, capsys, monkeypatch):
    url, app = collector
    rc, _, err = ship(capsys, monkeypatch, EAST, "--remote", url, *CLAUDE)
    assert rc == 0 and "day boundary" not in err and pinned(app.db) == EAST
    rc, out, err = ship(capsys, monkeypatch, WEST, "--remote", url, *CODEX, "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["day_zone"] == WEST and len(doc["notes"]) == 1 and EAST in doc["notes"][0]
    codex = occurred(app.db, "codex")
    assert codex and all(day == day_in(EAST, at) != day_in(WEST, at) for at, day in codex)
    before = snapshot(app.db)
    rc, _, err = ship(capsys, monkeypatch, WEST, "--remote", url, *CODEX, *CLAUDE)  # nothing new
    assert rc == 0 and "day boundary" not in err
    # the ship ledger lost: everything goes again, and the collector keeps every day as filed
    (dirs.state_home() / "shipped.sqlite").unlink()
    rc, _, err = ship(capsys, monkeypatch, THIRD, "--remote", url, *CODEX, *CLAUDE)
    assert rc == 0 and err.count("day boundary") == 1 and THIRD in err
    assert snapshot(app.db) == before


def test_ship_repin_day_zone_moves_the_pin_from_then_on(collector, capsys, monkeypatch):
    url, app = collector
    assert ship(capsys, monkeypatch, EAST, "--remote", url, *CLAUDE)[0] == 0
    before = snapshot(app.db)
    rc, _, err = ship(capsys, monkeypatch, WEST, "--remote", url, *CLAUDE, "--repin-day-zone")  # nothing new
    assert rc == 0 and "re-pinned to " + WEST in err and pinned(app.db) == WEST
    assert snapshot(app.db) == before  # the call re-sent to carry the re-pin moved nothing
    rc, _, err = ship(capsys, monkeypatch, WEST, "--remote", url, *CODEX)
    assert rc == 0 and "day boundary" not in err
    assert all(day == day_in(WEST, at) for at, day in occurred(app.db, "codex"))
    assert all(day == day_in(EAST, at) for at, day in occurred(app.db, "claude_code"))


def test_a_spooled_batch_keeps_the_zone_it_was_shipped_with(collector, capsys, monkeypatch, tmp_path):
    url, app = collector
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    rc, _, err = ship(capsys, monkeypatch, EAST, "--remote", closed, *CLAUDE)
    assert rc == 1 and "will retry" in err
    spool = Spool(tmp_path / "home/.local/state/nomira/spool")
    (path,) = spool.batches()
    record = json.loads(path.read_text())
    assert record["day_zone"] == EAST and "repin_day_zone" not in record
    # delivered later, from another zone, to the collector the record was queued for: the recorded zone pins
    post = http_post(closed, None)
    post.url = url + "/v1/usage/events"  # the same destination, now answering
    monkeypatch.setenv("TZ", WEST)
    r = spool.flush(post, destination=post.destination)
    assert r.delivered > 0 and pinned(app.db) == EAST
    assert all(day == day_in(EAST, at) for at, day in occurred(app.db, "claude_code"))


def test_an_old_spool_record_without_a_zone_still_ingests(collector, tmp_path):
    url, app = collector
    spool = Spool(tmp_path / "spool")
    post = http_post(url, None)
    at = "2026-06-01T23:30:00Z"
    spool.put([call(1, at)], destination=post.destination)
    (path,) = spool.batches()
    path.write_text(json.dumps({"destination": post.destination, "events": [call(1, at)]}))  # an older record
    r = spool.flush(post, destination=post.destination, sleep=lambda s: None)
    assert (r.delivered, r.error) == (1, None)
    assert pinned(app.db) is None and days(app.db) == {at[:10]: 1}


# --- nomira ship to a store, and locally ---

def test_ship_to_a_store_pins_too(store_target, capsys, monkeypatch):
    rc, out, _ = ship(capsys, monkeypatch, EAST, "--db", store_target, *CLAUDE, "--json")
    assert rc == 0 and json.loads(out)["day_zone"] == EAST
    db = store.open_db(store_target)
    assert pinned(db) == EAST and all(day == day_in(EAST, at) for at, day in occurred(db, "claude_code"))
    rc, out, _ = ship(capsys, monkeypatch, WEST, "--db", store_target, *CODEX, "--json")
    assert rc == 0 and len(json.loads(out)["notes"]) == 1
    assert all(day == day_in(EAST, at) for at, day in occurred(db, "codex"))
    rc, out, _ = ship(capsys, monkeypatch, "UTC", "--db", store_target, *CODEX, "--timezone", WEST, "--json")
    assert rc == 0 and json.loads(out)["notes"] == []  # --timezone names the zone: already noted


@pytest.mark.parametrize("how", [("TZ", "Mars/Base"), ("--timezone", "Not a zone"), ("TZ", "CET-1")])
def test_ship_with_a_zone_that_is_no_iana_name_is_exit_2_one_line(how, capsys, monkeypatch, tmp_path):
    db = tmp_path / "s.db"
    args = ["--db", db, *CLAUDE]
    zone = "UTC"
    if how[0] == "TZ":
        zone = how[1]
    else:
        args += ["--timezone", how[1]]
    rc, out, err = ship(capsys, monkeypatch, zone, *args)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1 and lines[0].startswith("nomira: ") and how[1] in lines[0]
    assert "Traceback" not in err and not db.exists()


def test_repin_needs_a_known_zone(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("nomira.dates.local_zone_name", lambda env=None: (None, "nowhere"))
    rc, _, err = ship(capsys, monkeypatch, "", "--db", tmp_path / "s.db", *CLAUDE, "--repin-day-zone")
    assert rc == 2 and "--timezone" in err and len(err.strip().splitlines()) == 1


def test_local_reports_are_unchanged_by_a_pin(tmp_path, capsys, monkeypatch, run_json):
    """`nomira daily` on one laptop groups by this laptop's zone, whatever a store pinned."""
    assert ship(capsys, monkeypatch, WEST, "--db", tmp_path / "s.db", *CLAUDE)[0] == 0
    monkeypatch.setenv("TZ", EAST)
    time.tzset()
    try:
        got = {d["date"] for d in run_json("daily", *CLAUDE)["daily"]}
        db = store.open_db(tmp_path / "s.db")
        want = {day_in(EAST, at) for at, _ in occurred(db, "claude_code")}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert got == want and got != {day for _, day in occurred(db, "claude_code")}


def test_the_zone_is_read_from_tz_then_the_system():
    from nomira.dates import local_zone_name
    assert local_zone_name({"TZ": "Europe/Paris"}) == ("Europe/Paris", "$TZ")
    assert local_zone_name({"TZ": ":/usr/share/zoneinfo/Asia/Tokyo"}) == ("Asia/Tokyo", "$TZ")
    assert local_zone_name({"TZ": "/usr/share/zoneinfo/America/New_York"}) == ("America/New_York", "$TZ")
    name, where = local_zone_name({})
    assert where in ("/etc/timezone", "/etc/localtime", "nowhere") and (name is None or isinstance(name, str))


def test_the_privacy_page_lists_the_batch_fields():
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "PRIVACY.md").read_text()
    section = text.split("## What a batch carries besides its events\n", 1)[1].split("\n## ", 1)[0]
    assert {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")} == set(BATCH_FIELDS)


def test_an_agents_hook_ships_the_laptops_zone_too(tmp_path, monkeypatch, capsys):
    import shutil

    from test_capture_hooks import FIX, SESSION, _claude_payload, _stdin
    projects = tmp_path / "claude" / "projects"
    shutil.copytree(FIX / "claude" / "projects", projects)
    db = tmp_path / "team.db"
    assert main(["hooks", "install", "--agent", "claude", "--db", str(db)]) == 0
    monkeypatch.setenv("TZ", EAST)
    _stdin(monkeypatch, _claude_payload(projects / "-home-ana-src-shop" / f"{SESSION}.jsonl"))
    assert main(["hook", "claude"]) == 0
    s = store.open_db(db)
    rows = occurred(s, "claude_code")
    assert rows and all(day == day_in(EAST, at) for at, day in rows)
    assert {r[0] for r in s.execute("SELECT zone FROM day_zones")} == {EAST}
