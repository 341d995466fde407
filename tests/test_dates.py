"""The machine's own zone: a history filed under the days its daylight-saving rules give."""


def test_the_machines_zone_keeps_its_rules_not_todays_offset(monkeypatch):
    """Without --timezone a history is filed under the machine's zone with its daylight-saving rules: a
    call at 22:30 UTC on 31 March 2026 is 1 April in Berlin (summer time), whatever today's offset."""
    from datetime import datetime, timezone

    from nomira.dates import local_tz, machine_zone
    at = datetime(2026, 3, 31, 22, 30, tzinfo=timezone.utc)
    for tz, day in (("Europe/Berlin", 1), ("America/Los_Angeles", 31), ("Asia/Kolkata", 1), ("UTC", 31)):
        monkeypatch.setenv("TZ", tz)
        time_tzset()
        assert at.astimezone(local_tz(None)).day == day, tz
        assert str(machine_zone()) == tz
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")  # (a POSIX rule: the C library's zone, its rules kept)
    time_tzset()
    assert at.astimezone(machine_zone()).day == 1 and str(machine_zone()) == "CET-1CEST,M3.5.0,M10.5.0/3"
    monkeypatch.delenv("TZ")
    time_tzset()


def test_a_posix_tz_rule_keeps_its_summer_time_through_the_history(monkeypatch):
    """TZ="PST8PDT,M3.2.0,M11.1.0" (a POSIX rule, no tz database name): each instant gets the offset the
    rule gives it, as America/Los_Angeles would (a July call at 07:30 UTC is 00:30 on that day, not 23:30
    the day before at December's offset), the repeated hour's two halves and the skipped hour included."""
    import random
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from nomira.dates import machine_zone
    monkeypatch.setenv("TZ", "PST8PDT,M3.2.0,M11.1.0")
    time_tzset()
    try:
        zone, ref = machine_zone(), ZoneInfo("America/Los_Angeles")
        rng = random.Random(7)
        start = datetime(2025, 1, 1, tzinfo=timezone.utc)
        instants = [start + timedelta(seconds=rng.randint(0, 2 * 365 * 86_400)) for _ in range(3000)]
        instants += [datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc), datetime(2026, 11, 1, 9, 30, tzinfo=timezone.utc),
                     datetime(2026, 3, 8, 9, 59, 59, tzinfo=timezone.utc), datetime(2026, 3, 8, 10, tzinfo=timezone.utc),
                     datetime(2026, 7, 15, 7, 30, tzinfo=timezone.utc)]
        for u in instants:
            mine, theirs = u.astimezone(zone), u.astimezone(ref)
            assert (mine.replace(tzinfo=None), mine.utcoffset(), mine.tzname(), mine.fold) == \
                   (theirs.replace(tzinfo=None), theirs.utcoffset(), theirs.tzname(), theirs.fold), u
            assert mine.astimezone(timezone.utc) == u
        for wall in (datetime(2026, 3, 8, 2, 30), datetime(2026, 11, 1, 1, 30), datetime(2026, 11, 1, 1, 30, fold=1)):
            assert wall.replace(tzinfo=zone).astimezone(timezone.utc) == wall.replace(tzinfo=ref).astimezone(timezone.utc)
    finally:
        monkeypatch.delenv("TZ")
        time_tzset()


def test_timezone_names_as_ccusage_takes_them():
    """`-z local` is the machine's zone; a tz database name in another case is that zone."""
    import pytest
    from zoneinfo import ZoneInfo

    from nomira.dates import local_tz, machine_zone
    assert str(local_tz("local")) == str(machine_zone()) and str(local_tz("LOCAL")) == str(machine_zone())
    assert local_tz("america/los_angeles") == ZoneInfo("America/Los_Angeles")
    with pytest.raises(ValueError):
        local_tz("Mars/Olympus_Mons")


def time_tzset():
    import time
    if hasattr(time, "tzset"):
        time.tzset()


def test_daily_files_a_summer_night_under_its_own_day(tmp_path):
    """The command line, TZ=Europe/Berlin and no --timezone (the default every user runs)."""
    import json
    import os
    import subprocess
    import sys
    proj = tmp_path / "claude" / "projects" / "-w-p"
    proj.mkdir(parents=True)
    line = {"type": "assistant", "sessionId": "s1", "cwd": "/w/p", "requestId": "req_1", "timestamp": "2026-03-31T22:30:00.000Z",
            "message": {"id": "msg_1", "model": "claude-sonnet-4-5-20250929", "role": "assistant",
                        "usage": {"input_tokens": 10, "output_tokens": 20}}}
    (proj / "s1.jsonl").write_text(json.dumps(line) + "\n")
    env = dict(os.environ, TZ="Europe/Berlin", CLAUDE_CONFIG_DIR=str(tmp_path / "claude"), HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-m", "nomira", "daily", "--json", "--source", "claude"], env=env,
                         capture_output=True, text=True, timeout=120)
    doc = json.loads(out.stdout)
    assert [d["date"] for d in doc["daily"]] == ["2026-04-01"] and doc["timezone"] == "Europe/Berlin"
