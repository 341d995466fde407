"""Limit snapshots: translation from each source, the state file, the projection rule, the wire kind."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from nomira.ledger import limits
from nomira.ledger.events import Allowance
from nomira.ledger.limits import LimitSnapshot
from nomira.reports.limits import describe, duration, project, render_text
from nomira.ledger.wire import SchemaError, assert_limit_snapshot, limit_to_wire

UTC = timezone.utc
RESET = datetime(2026, 1, 1, 15, 0, tzinfo=UTC)  # a 5-hour window that opened at 10:00


def snap(used, observed, window=300, resets=RESET, agent="claude_code", name="five_hour"):
    return LimitSnapshot(agent, name, used, window, resets, "statusline", observed)


def test_projection_hits_before_the_reset():
    # 50% used 2 h into the window: 25%/h, so 100% at 10:00 + 4 h = 14:00, 1 h before the 15:00 reset;
    # at the reset the pace would reach 50% * 5 h / 2 h = 125%.
    s = snap(50.0, datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    p = project(s, now=datetime(2026, 1, 1, 12, 5, tzinfo=UTC))
    assert p.status == "will_hit"
    assert p.hit_at == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)
    assert p.at_reset_percent == pytest.approx(125.0)
    assert describe(p, s, UTC) == "at this rate you reach 100% at 14:00, 1 h before the reset"


def test_projection_wont_hit():
    # 20% after 2 h: 100% would come at 10:00 + 10 h = 20:00, after the reset; 20% * 300 / 120 = 50% at the reset.
    s = snap(20.0, datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    p = project(s, now=datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    assert p.status == "wont_hit"
    assert p.hit_at == datetime(2026, 1, 1, 20, 0, tzinfo=UTC)
    assert p.at_reset_percent == pytest.approx(50.0)
    assert "won't hit it" in describe(p, s, UTC) and "50%" in describe(p, s, UTC)


def test_projection_weekly_window():
    # 7-day window resetting Jan 8 00:00 opened Jan 1 00:00; 30% after 1.5 days: 100% after 5 days = Jan 6 00:00.
    s = snap(30.0, datetime(2026, 1, 2, 12, 0, tzinfo=UTC), window=10080, resets=datetime(2026, 1, 8, tzinfo=UTC),
             name="seven_day")
    p = project(s, now=datetime(2026, 1, 2, 12, 0, tzinfo=UTC))
    assert (p.status, p.hit_at) == ("will_hit", datetime(2026, 1, 6, tzinfo=UTC))
    assert describe(p, s, UTC) == "at this rate you reach 100% at 00:00, 2 d before the reset"


def test_projection_edges():
    noon = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert project(snap(100.0, noon), noon).status == "reached"
    assert project(snap(0.0, noon), noon).status == "wont_hit"
    assert project(snap(5.0, datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)), noon).status == "unknown"  # 30 s in
    assert project(snap(5.0, noon, resets=None), noon).status == "unknown"
    assert project(snap(50.0, noon), datetime(2026, 1, 1, 15, 1, tzinfo=UTC)).status == "reset"


def test_duration_words():
    assert duration(timedelta(hours=2, minutes=10)) == "2 h 10 min"
    assert duration(timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"
    assert duration(timedelta(seconds=42)) == "42 s"
    assert duration(timedelta(minutes=-5)) == "0 s"


def test_render_text_shows_reset_age_and_projection():
    s = snap(50.0, datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    text = render_text([s], datetime(2026, 1, 1, 12, 50, tzinfo=UTC), UTC)
    assert "Claude 5-hour" in text and "50.0%" in text
    assert "resets in 2 h 10 min" in text and "seen 50 min ago" in text
    assert "reach 100% at 14:00" in text


def test_from_codex_allowance():
    a = Allowance(12.0, 300, 1762175700, 3.5, 10080, 1762694100, "plus")
    out = limits.from_allowance("2025-11-03T09:15:31.660Z", a)
    assert [(s.agent, s.window, s.used_percent, s.window_minutes) for s in out] == [
        ("codex", "primary", 12.0, 300), ("codex", "secondary", 3.5, 10080)]
    assert out[0].resets_at == datetime.fromtimestamp(1762175700, UTC)
    assert out[0].observed_at == datetime(2025, 11, 3, 9, 15, 31, 660000, tzinfo=UTC)
    assert limits.from_allowance("2025-11-03T09:15:31Z", Allowance()) == []


def test_state_file_keeps_newest_per_window(tmp_path):
    env = {"XDG_STATE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    old = snap(10.0, datetime(2026, 1, 1, 11, 0, tzinfo=UTC))
    new = snap(30.0, datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    weekly = snap(5.0, datetime(2026, 1, 1, 11, 0, tzinfo=UTC), window=10080, name="seven_day")
    limits.save_state([new, weekly], env)
    limits.save_state([old], env)  # older: does not replace
    assert limits.load_state(env) == [new, weekly]
    assert not list((tmp_path / "nomira").glob(".*tmp"))  # written atomically, no leftovers
    (tmp_path / "nomira" / "limits.json").write_text("{broken")
    assert limits.load_state(env) == []


def test_limits_command_reads_codex_logs(run_json):
    doc = run_json("limits", "--path", "tests/fixtures/codex")
    windows = {(r["agent"], r["window"]): r for r in doc["limits"]}
    assert ("codex", "primary") in windows and windows[("codex", "primary")]["source"] == "log"
    assert doc["errors"] == []


def test_limit_snapshot_wire_kind():
    s = snap(42.0, datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    w = limit_to_wire(s, {"developer": "ana", "project": "dropped: not a limit tag"})
    assert_limit_snapshot(w)
    assert w["kind"] == "limit_snapshot" and w["tags"] == {"developer": "ana"}
    json.dumps(w)
    for bad in ({**w, "prompt": "hello"}, {**w, "tags": {"developer": "/home/ana/.ssh/id"}},
                {**w, "used_percent": True}, {**w, "kind": "event"}, {**w, "source": "whatever"},
                {**w, "resets_at": "0002-01-01T00:00:00+00:00"}, {**w, "resets_at": "9998-01-01T00:00:00+00:00"}):
        with pytest.raises(SchemaError):
            assert_limit_snapshot(bad, now=datetime(2026, 1, 1, 12, 5, tzinfo=UTC))
    for source in ("log", "statusline", "api"):  # (the sources Nomira reads snapshots from)
        assert_limit_snapshot({**w, "source": source}, now=datetime(2026, 1, 1, 12, 5, tzinfo=UTC))


def test_a_dashboard_tenant_filter_longer_than_any_filter_is_refused():
    from nomira.collector.filters import MAX_VALUE, parse
    from nomira.collector.http import HTTPError
    assert parse({"tenant": "t" * MAX_VALUE}, admin=True, own_tenant=None).tenant == "t" * MAX_VALUE
    with pytest.raises(HTTPError):
        parse({"tenant": "t" * (MAX_VALUE + 1)}, admin=True, own_tenant=None)
