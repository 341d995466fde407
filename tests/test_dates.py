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
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")  # (a POSIX rule: today's offset, as before)
    time_tzset()
    assert machine_zone().utcoffset(None) == datetime.now().astimezone().utcoffset()
    monkeypatch.delenv("TZ")
    time_tzset()


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
