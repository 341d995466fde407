"""Budgets and alerts: thresholds, windows, one webhook per threshold and window."""
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class Hook:
    """A local webhook receiver on 127.0.0.1; `fail` answers 500 that many times first."""

    def __init__(self, fail=0):
        self.bodies, self.fail = [], fail
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.fail:
                    hook.fail -= 1
                    self.send_response(500)
                else:
                    hook.bodies.append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def wire(dev, project, at, usd, n):
    return {"schema_version": 1, "source": "claude_code", "provider": "anthropic", "model": "claude-sonnet-4-5",
            "occurred_at": at.isoformat(), "message_id": f"m-{dev}-{n}", "tokens": {"input": 100, "output": 10},
            "cost_usd": usd, "tags": {"developer": dev, "project": project}}


def run_cli(*argv):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TZ": "UTC"}
    return subprocess.run([sys.executable, "-m", "nomira", *argv], cwd=ROOT, env=env, capture_output=True,
                          timeout=60)


def test_crossing_80_percent_sends_one_webhook_and_none_on_the_next_run(tmp_path, hook):
    from nomira.ledger import store
    db = tmp_path / "team.db"
    con = store.open_db(db)
    now = datetime.now(timezone.utc) - timedelta(seconds=5)
    store.ingest(con, [wire("ana", "shop", now, 3.0, 1), wire("ana", "shop", now, 5.5, 2),
                       wire("bo", "shop", now, 40.0, 3)])  # bo's spend is not ana's budget
    con.close()
    assert run_cli("budget", "set", "ana-day", "--developer", "ana", "--usd", "10", "--window", "day",
                   "--webhook", hook.url).returncode == 0
    first = run_cli("budget", "check", "--db", str(db), "--json", "--timezone", "UTC")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["budgets"][0]["spent_usd"] == pytest.approx(8.5) and doc["budgets"][0]["crossed"] == [50, 80]
    assert len(hook.bodies) == 1  # 50% and 80% were both passed since the last check: one alert, at 80%
    body = hook.bodies[0]
    assert body["text"].startswith("Nomira: budget ana-day: $8.50 of $10.00 today (85%), 80% threshold reached")
    assert body["nomira"]["threshold"] == 80
    again = run_cli("budget", "check", "--db", str(db), "--json", "--timezone", "UTC")
    assert json.loads(again.stdout)["alerts"] == [] and len(hook.bodies) == 1
    listed = run_cli("budget", "list", "--db", str(db), "--timezone", "UTC")
    assert "ana-day: $8.50 of $10.00 today (85%)" in listed.stdout.decode()
    assert len(hook.bodies) == 1  # list never sends


def _status(budget, spent, now):
    from nomira.alerts.budgets import window_bounds
    from nomira.alerts.evaluate import Status
    start, end, key = window_bounds(budget.window, now, timezone.utc)
    return Status(budget, key, start, end, spent)


def test_windows_roll_over_and_thresholds_fire_once_each(hook):
    from nomira.alerts.budgets import Budget, window_bounds
    from nomira.alerts.notify import fire
    b = Budget("m", window="month", usd=100.0)
    nov = datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)
    dec = datetime(2026, 12, 1, 0, 30, tzinfo=timezone.utc)
    no_sleep = lambda s: None  # noqa: E731
    assert fire([_status(b, 55, nov)], hook.url, now=nov, sleep=no_sleep)[0]["threshold"] == 50
    assert fire([_status(b, 60, nov)], hook.url, now=nov, sleep=no_sleep) == []
    assert fire([_status(b, 101, nov)], hook.url, now=nov, sleep=no_sleep)[0]["threshold"] == 100
    assert fire([_status(b, 51, dec)], hook.url, now=dec, sleep=no_sleep)[0]["window_key"] == "month:2026-12"
    assert [x["nomira"]["threshold"] for x in hook.bodies] == [50, 100, 50]
    # window edges: a week starts on Monday, a day at local midnight, a block where `nomira blocks` starts it
    from zoneinfo import ZoneInfo
    paris = ZoneInfo("Europe/Paris")
    start, end, key = window_bounds("week", datetime(2026, 12, 2, 12, tzinfo=timezone.utc), paris)
    assert (start.isoformat(), end.isoformat(), key) == ("2026-11-30T00:00:00+01:00", "2026-12-07T00:00:00+01:00",
                                                          "week:2026-W49")
    start, end, key = window_bounds("day", datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc), paris)
    assert key == "day:2026-03-29" and (end - start) == timedelta(hours=24) and end.utcoffset() == timedelta(hours=2)
    blk = datetime(2026, 12, 2, 9, tzinfo=timezone.utc)
    assert window_bounds("block", blk + timedelta(hours=1), timezone.utc, blk)[2] == "block:2026-12-02T09:00Z"


def test_webhook_retries_then_gives_up_without_marking_sent():
    from nomira.alerts.budgets import Budget
    from nomira.alerts.notify import fire, post
    flaky = Hook(fail=2)
    try:
        assert post(flaky.url, {"text": "x"}, sleep=lambda s: None) is None and len(flaky.bodies) == 1
        flaky.fail = 10
        now = datetime(2026, 12, 2, tzinfo=timezone.utc)
        b = Budget("d", window="day", usd=1.0)
        out = fire([_status(b, 0.9, now)], flaky.url, now=now, sleep=lambda s: None)
        assert out[0]["error"] == "HTTP 500" and flaky.fail == 7  # three attempts, then it stops
        flaky.fail = 0
        assert fire([_status(b, 0.9, now)], flaky.url, now=now, sleep=lambda s: None)[0]["error"] is None
    finally:
        flaky.close()


def test_report_and_statusline_show_the_budget(tmp_path):
    from nomira.alerts.budgets import Budget, Config, save
    save(Config([Budget("everything", window="month", usd=0.01)]))
    fixtures = ROOT / "tests" / "fixtures" / "claude"
    r = run_cli("report", "--path", str(fixtures), "--no-cache")
    assert r.returncode == 0
    # fixture calls are old: this month's spend is $0.00, and the line sits under the totals
    out = r.stdout.decode()
    assert "budget everything: $0.00 of $0.01 this month (0%)" in out
    assert out.index("budget everything") > out.index("Total ")
    from nomira.dirs import state_home
    (state_home() / "budgets_status.json").write_text(json.dumps(
        [{"name": "everything", "percent": 82.4, "crossed": [50, 80], "end": "2999-01-01T00:00:00+00:00"},
         {"name": "old", "percent": 120, "crossed": [100], "end": "2001-01-01T00:00:00+00:00"}]))
    from nomira.commands.statusline import budget_segment
    assert budget_segment(os.environ, datetime.now(timezone.utc)) == ["budget everything 82%"]


def test_bad_budgets_file_is_one_line():
    from nomira.dirs import config_home
    config_home().mkdir(parents=True, exist_ok=True)
    (config_home() / "budgets.toml").write_text('[[budget]]\nname = "x"\nusd = 5\nwindow = "fortnight"\n')
    r = run_cli("budget", "list")
    assert r.returncode == 2 and r.stderr.decode().count("\n") == 1 and "window must be one of" in r.stderr.decode()


def test_store_budgets_by_tag_tenant_and_active_block(tmp_path):
    from nomira.ledger import store
    from nomira.alerts.budgets import Budget
    from nomira.alerts.evaluate import from_store
    now = datetime(2026, 12, 2, 12, 30, tzinfo=timezone.utc)
    con = store.open_db(tmp_path / "t.db")
    old = wire("ana", "shop", now - timedelta(hours=7), 9.0, 1)  # before the active block
    a = dict(wire("ana", "shop", now - timedelta(hours=2, minutes=10), 2.0, 2), tags={"developer": "ana",
                                                                                    "feature": "checkout"})
    b = dict(wire("bo", "web", now - timedelta(minutes=20), 1.0, 3), cost_usd=None)
    store.ingest(con, [old, a, b], tenant="acme")
    budgets = [Budget("blk", window="block", usd=4.0), Budget("feat", scope="tag", match="feature=checkout",
                                                               window="day", usd=4.0),
               Budget("acme", scope="tenant", match="acme", window="week", usd=100.0)]
    blk, feat, acme = from_store(budgets, con, now + timedelta(seconds=1), timezone.utc)
    assert blk.window_key == "block:2026-12-02T10:00Z" and blk.spent == 2.0 and blk.unpriced_calls == 1
    assert feat.spent == 2.0 and feat.crossed == [50]
    assert acme.spent == 11.0 and acme.unpriced_calls == 1 and acme.percent == pytest.approx(11.0)
