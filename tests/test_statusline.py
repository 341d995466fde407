"""`nomira statusline` on Claude Code's statusline payload (tests/fixtures/statusline/payload.json follows
the documented shape, rate_limits as Claude Code >= 2.1.80 sends them) over transcripts in the real format."""
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nomira.ledger import limits
from nomira.commands import statusline

ROOT = Path(__file__).parent.parent
PAYLOAD = (ROOT / "tests/fixtures/statusline/payload.json").read_text()
SESSION = "5b2c9d1e-7a3f-4e60-9c11-2d3e4f5a6b7c"


def line(at: datetime, msg: str, session: str, inp=0, out=0, read=0, w5=0, w1=0) -> str:
    """An assistant line as Claude Code writes it (model claude-sonnet-4-5-20250929)."""
    return json.dumps({
        "parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": "/home/ana/src/shop",
        "sessionId": session, "version": "2.1.90", "gitBranch": "main", "type": "assistant", "uuid": f"u-{msg}",
        "timestamp": at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"), "requestId": f"req_{msg}",
        "message": {"id": f"msg_{msg}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                    "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": inp, "cache_creation_input_tokens": w5 + w1,
                              "cache_read_input_tokens": read,
                              "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
                              "output_tokens": out, "service_tier": "standard"}}}, separators=(",", ":")) + "\n"


def setup_history(home: Path):
    """Sonnet 4.5 at $3 in / $15 out / $0.30 cache read / $3.75 5m write / $6 1h write per MTok:
    A (11:00)  10k in $0.03 + 100k out $1.50 + 100k read $0.03 + 40k 5m write $0.15  = $1.710
    B (11:30)  20k in $0.06 + 200k out $3.00 + 60k read $0.018 + 50k 1h write $0.30  = $3.378
    C (3 days ago, same session) 40k out                                             = $0.600
    D (08:00, another session) 100k out                                              = $1.500
    session = A+B+C = $5.688; today = A+B+D = $6.588; the block opened at 08:00 (D) and holds A, B, D:
    $6.588 over 3.5 h of activity = $1.88/h, ending 13:00: 1 h left at noon."""
    now = datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    proj = home / ".claude" / "projects" / "-home-ana-src-shop"
    proj.mkdir(parents=True)
    transcript = proj / f"{SESSION}.jsonl"
    transcript.write_text(
        line(now - timedelta(days=3), "C", SESSION, out=40_000)
        + line(now - timedelta(hours=1), "A", SESSION, inp=10_000, out=100_000, read=100_000, w5=40_000)
        + line(now - timedelta(minutes=30), "B", SESSION, inp=20_000, out=200_000, read=60_000, w1=50_000))
    (proj / "9e8d7c6b-0000-4000-8000-000000000001.jsonl").write_text(
        line(now - timedelta(hours=4), "D", "9e8d7c6b-0000-4000-8000-000000000001", out=100_000))
    return transcript, now.astimezone(timezone.utc)


def render(payload: str, now, env=None) -> str:
    out = io.StringIO()
    assert statusline.main(io.BytesIO(payload.encode()), out, env or os.environ, now) == 0
    return out.getvalue()


def test_statusline_prices_the_session_itself(isolated_env):
    transcript, now = setup_history(isolated_env)
    payload = PAYLOAD.replace("TRANSCRIPT", str(transcript))
    expected = "Sonnet 4.5 · session $5.69 · today $6.59 · block $6.59, $1.88/h, 1 h left · 5h 42% · 7d 18%\n"
    assert render(payload, now) == expected
    assert render(payload, now) == expected  # from the result cache
    # the payload's rate limits are recorded for `nomira limits`
    saved = {s.window: s.used_percent for s in limits.load_state()}
    assert saved == {"five_hour": 42.3, "seven_day": 17.6}


def test_statusline_shows_claudes_estimate_only_when_it_differs(isolated_env):
    transcript, now = setup_history(isolated_env)
    payload = json.loads(PAYLOAD.replace("TRANSCRIPT", str(transcript)))
    payload["cost"]["total_cost_usd"] = 4.0
    assert "session $5.69 (Claude says $4.00) · today" in render(json.dumps(payload), now)


def test_statusline_sees_new_calls(isolated_env):
    transcript, now = setup_history(isolated_env)
    payload = PAYLOAD.replace("TRANSCRIPT", str(transcript))
    render(payload, now)
    with open(transcript, "a") as fh:  # one more call: 100k output = $1.50
        fh.write(line(now - timedelta(minutes=10), "E", SESSION, out=100_000))
    text = render(payload, now)  # Claude's $5.688 is now stale, and shown beside
    assert "session $7.19 (Claude says $5.69) · today $8.09 · block $8.09" in text


def test_statusline_sees_another_sessions_new_calls_and_new_files(isolated_env):
    """Today's total follows every transcript touched today, from the one stat per file each render takes
    (a kept result is keyed by a digest of those files' sizes and mtimes)."""
    transcript, now = setup_history(isolated_env)
    payload = PAYLOAD.replace("TRANSCRIPT", str(transcript))
    assert "today $6.59" in render(payload, now)
    other = transcript.parent / "9e8d7c6b-0000-4000-8000-000000000001.jsonl"
    with open(other, "a") as fh:  # D's session: 100k output more = $1.50
        fh.write(line(now - timedelta(hours=2), "F", "9e8d7c6b-0000-4000-8000-000000000001", out=100_000))
    assert "session $5.69 · today $8.09" in render(payload, now)
    new = transcript.parent / "9e8d7c6b-0000-4000-8000-000000000002.jsonl"
    new.write_text(line(now - timedelta(hours=3), "G", "9e8d7c6b-0000-4000-8000-000000000002", out=200_000))
    assert "session $5.69 · today $11.09" in render(payload, now)
    new.unlink()
    assert "session $5.69 · today $8.09" in render(payload, now)


def test_statusline_never_fails():
    for stdin in (b"", b"not json", b"[1, 2]", b'{"transcript_path": 7, "rate_limits": "x"}'):
        r = subprocess.run([sys.executable, "-m", "nomira", "statusline"], input=stdin, capture_output=True,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert r.returncode == 0 and r.stderr == b"", (stdin, r.stderr)
        assert r.stdout.decode().count("\n") == 1 and "Traceback" not in r.stdout.decode()
    missing = PAYLOAD.replace("TRANSCRIPT", "/nonexistent/x.jsonl")
    out = subprocess.run([sys.executable, "-m", "nomira.commands.statusline"], input=missing.encode(),
                         capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.returncode == 0 and out.stdout.decode() == "Sonnet 4.5 · 5h 42% · 7d 18%\n"  # no usage to show


def test_statusline_updates_the_scan_cache_without_pruning_it(isolated_env, monkeypatch, capsys):
    from nomira.sources import scancache
    from nomira.cli import main
    transcript, now = setup_history(isolated_env)
    old = isolated_env / ".claude" / "projects" / "-home-ana-src-shop" / "0a0a0a0a-0000-4000-8000-000000000009.jsonl"
    old.write_text(line(now - timedelta(days=30), "Z", old.stem, out=1000))
    os.utime(old, (now.timestamp() - 30 * 86400,) * 2)  # not read by the status line
    assert main(["daily"]) == 0  # a full run caches every file
    capsys.readouterr()
    with open(transcript, "a") as fh:
        fh.write(line(now - timedelta(minutes=10), "E", SESSION, out=100_000))
    monkeypatch.setattr(statusline, "PERSIST_BYTES", 0)  # persist even a small tail
    render(PAYLOAD.replace("TRANSCRIPT", str(transcript)), now)
    cache = scancache.ScanCache(scancache.default_path())
    entries = cache.load("claude")
    assert str(old) in entries  # kept, not pruned
    assert entries[str(transcript)].offset == transcript.stat().st_size  # the grown session, persisted


def test_statusline_does_not_wait_for_a_busy_scan_cache(isolated_env, monkeypatch):
    import sqlite3
    import time

    from nomira.sources import scancache
    transcript, now = setup_history(isolated_env)
    payload = PAYLOAD.replace("TRANSCRIPT", str(transcript))
    render(payload, now)  # creates the cache
    with open(transcript, "a") as fh:
        fh.write(line(now - timedelta(minutes=10), "E", SESSION, out=100_000))
    monkeypatch.setattr(statusline, "PERSIST_BYTES", 0)  # it will want to write
    other = sqlite3.connect(scancache.default_path(), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a long `nomira` run holding the write lock
    try:
        t0 = time.monotonic()
        text = render(payload, now)
        assert time.monotonic() - t0 < 5
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "session $7.19 (Claude says $5.69) · today $8.09" in text


def test_statusline_records_rate_limits_as_before_with_its_shortcut(isolated_env, monkeypatch):
    """The parts of unchanged figures are reused, but the state is written exactly when the plain
    check would write it: figures changed, the state file changed by another writer, or 5 minutes."""
    transcript, now = setup_history(isolated_env)
    payload = PAYLOAD.replace("TRANSCRIPT", str(transcript))
    saves = []
    real_save = limits.save_state
    monkeypatch.setattr(limits, "save_state", lambda snaps, env: saves.append(now) or real_save(snaps, env))
    loads = []
    real_load = limits.load_state
    monkeypatch.setattr(limits, "load_state", lambda env=os.environ: loads.append(1) or real_load(env))
    assert render(payload, now).endswith(" · 5h 42% · 7d 18%\n")
    assert len(saves) == 1
    assert render(payload, now + timedelta(minutes=1)).endswith(" · 5h 42% · 7d 18%\n")
    assert len(saves) == 1 and len(loads) == 2  # (save_state's own load) the shortcut: no snapshot read
    assert render(payload, now + timedelta(minutes=6)).endswith(" · 5h 42% · 7d 18%\n")
    assert len(saves) == 2  # the same figures, written again after 5 minutes
    changed = json.loads(payload)
    changed["rate_limits"]["five_hour"]["used_percentage"] = 50.0
    assert render(json.dumps(changed), now + timedelta(minutes=7)).endswith(" · 5h 50% · 7d 18%\n")
    assert len(saves) == 3
    assert {s.window: s.used_percent for s in real_load()} == {"five_hour": 50.0, "seven_day": 17.6}
    # another writer replaces the state file: the plain check runs (and the figures it finds current)
    state = limits.state_path()
    state.write_text(json.dumps({"snapshots": []}))
    render(json.dumps(changed), now + timedelta(minutes=8))
    assert len(saves) == 4
    assert {s.window: s.used_percent for s in real_load()} == {"five_hour": 50.0, "seven_day": 17.6}
    # within the 5 minutes of the plain check's own write, nothing is written twice
    loads.clear()
    render(json.dumps(changed), now + timedelta(minutes=9))
    assert len(saves) == 4 and loads == []


WARM_PROBE = """
import json, sys, time
minute = time.strftime("%H:%M")
from nomira.commands.statusline import main
main()
print(json.dumps({"minute": minute, "modules": sorted(m for m in sys.modules
                                                     if m.startswith("nomira") or m == "dataclasses")}))
"""


def test_statusline_warm_render_imports_only_what_it_reads(isolated_env):
    """A render with nothing new serves the last line: no pricing, scanning or snapshot modules
    (their imports were most of a warm render's own time)."""
    transcript, _now = setup_history(isolated_env)
    payload = PAYLOAD.replace("TRANSCRIPT", str(transcript)).encode()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _attempt in range(3):  # (the last line is kept per minute: both renders in one minute)
        runs = [subprocess.run([sys.executable, "-c", WARM_PROBE], input=payload, capture_output=True, cwd=ROOT,
                               env=env, timeout=60) for _ in range(2)]
        first, warm = (r.stdout.decode().splitlines() for r in runs)
        if json.loads(first[1])["minute"] == json.loads(warm[1])["minute"]:
            break
    assert first[0] == warm[0] and first[0].endswith("· 5h 42% · 7d 18%")
    assert "nomira.pricing.engine" in json.loads(first[1])["modules"]
    assert json.loads(warm[1])["modules"] == ["nomira", "nomira.commands", "nomira.commands.statusline",
                                              "nomira.digests", "nomira.dirs", "nomira.pricing",
                                              "nomira.pricing.stamp", "nomira.sources", "nomira.sources.paths"]


def test_statusline_block_of_a_long_run_of_calls(isolated_env, monkeypatch):
    """Calls every 20 minutes since 22:25 the day before: the active 5-hour window is fixed by where that
    run began (22:00, 03:00, then 08:00), before local midnight, where the status line read from (it
    showed the 10:00 window of its own making): the same block `nomira blocks` shows."""
    now = datetime(2026, 6, 1, 12, 5, tzinfo=timezone.utc)
    active, shown = _run_of_calls(isolated_env, monkeypatch, now, [now - timedelta(minutes=20 * k)
                                                                   for k in range(41, -1, -1)])
    assert active.start == datetime(2026, 6, 1, 8, tzinfo=timezone.utc) and active.tally.calls == 13
    assert "block $0.20," in shown, shown  # (13 calls of 1,000 output tokens at $15 per MTok)


def _run_of_calls(home, monkeypatch, now, times):
    """(the active block `periods.blocks` makes of calls at `times` in one transcript, the status line
    rendered at `now`), in UTC."""
    import time
    from nomira.ledger.events import TokenCounts, UsageEvent
    from nomira.reports import periods
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        proj = home / ".claude" / "projects" / "-home-ana-src-shop"
        proj.mkdir(parents=True)
        transcript = proj / f"{SESSION}.jsonl"
        transcript.write_text("".join(line(t, f"L{i}", SESSION, out=1000) for i, t in enumerate(times)))
        evs = [(UsageEvent("claude_code", "anthropic", "m", t, "s", "p", TokenCounts()), None) for t in times]
        (active,) = [b for b in periods.blocks(evs, timezone.utc) if b.is_active(now)]
        return active, render(PAYLOAD.replace("TRANSCRIPT", str(transcript)), now)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("every", [37, 61, 67, 240])
def test_statusline_block_of_an_hourly_job_running_for_days(isolated_env, monkeypatch, capsys, every):
    """A call every hour for six days, never a 5-hour gap: the active window is fixed where that run
    began, days back, past the status line's first look-back; it shows the block `nomira blocks` shows."""
    now = datetime(2026, 6, 7, 12, 5, tzinfo=timezone.utc)
    active, shown = _run_of_calls(isolated_env, monkeypatch, now, [now - timedelta(minutes=every * k)
                                                                   for k in range(6 * 24 * 60 // every, -1, -1)])
    from nomira.cli import main
    from nomira.reports.render import usd
    assert main(["blocks", "--json", "--no-cache", "-z", "UTC"]) == 0
    (block,) = [b for b in json.loads(capsys.readouterr().out)["blocks"] if b["start"] == active.start.isoformat()]
    left = f"{(active.end - now).total_seconds() / 60:.0f} min left" if active.end - now < timedelta(hours=1) else ""
    assert block["calls"] == active.tally.calls and f"block {usd(block['cost_usd'])}, " in shown and left in shown, \
        (active.start, shown)


def test_statusline_today_on_the_day_clocks_go_back(isolated_env, monkeypatch):
    """Europe/Berlin, 2026-10-25 (CEST until 03:00, then CET), at noon: a call at 00:30 local, in a file
    not written since, is today's (midnight is 22:00 UTC, at its own offset, not at noon's)."""
    import time
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        now = datetime(2026, 10, 25, 11, 0, tzinfo=timezone.utc)  # (12:00 CET)
        early = datetime(2026, 10, 24, 22, 30, tzinfo=timezone.utc)  # (00:30 CEST)
        proj = isolated_env / ".claude" / "projects" / "-home-ana-src-shop"
        proj.mkdir(parents=True)
        other = proj / "9e8d7c6b-0000-4000-8000-000000000001.jsonl"
        other.write_text(line(early, "E", "9e8d7c6b-0000-4000-8000-000000000001", out=100_000))
        os.utime(other, (early.timestamp(), early.timestamp()))
        transcript = proj / f"{SESSION}.jsonl"
        transcript.write_text(line(now - timedelta(minutes=5), "N", SESSION, out=1000))
        shown = render(PAYLOAD.replace("TRANSCRIPT", str(transcript)), now)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert "today $1.51 " in shown, shown  # (100,000 + 1,000 output tokens at $15 per MTok: $1.515)


def test_statusline_payload_oddities_stay_on_one_clean_line(isolated_env):
    """A model name with control characters is printed without them; 99.5% used reads 99%, not the
    limit's 100%; a rate-limit figure that is no finite number is left out, the rest of the line kept."""
    transcript, now = setup_history(isolated_env)
    doc = json.loads(PAYLOAD.replace("TRANSCRIPT", str(transcript)))
    doc["model"]["display_name"] = "Sonnet\n4.5\x1b[31m"
    doc["rate_limits"]["five_hour"]["used_percentage"] = 99.5
    doc["rate_limits"]["seven_day"]["used_percentage"] = 10 ** 400
    shown = render(json.dumps(doc), now)
    assert shown.count("\n") == 1 and "\x1b" not in shown
    assert shown.startswith("Sonnet4.5[31m · session $5.69") and shown.endswith(" · 5h 99%\n"), shown
