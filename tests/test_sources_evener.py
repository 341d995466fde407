"""Evener's semantic transcripts (v2): per assistant turn, Evener's normalised usage (input uncached, cache reads and
5-minute / 1-hour writes apart, reasoning inside output); a fork's replayed turns count once."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import evener
from nomira.sources.registry import collect

EV = FIXTURES / "evener"
# claude-sonnet-4-5: 3 in / 15 out / 0.30 read / 3.75 5m write / 6.00 1h write; gpt-4.1: 2 / 8 / 0.50 read (bundled).
T1 = (1200 * 3 + 300 * 15 + 20000 * 0.30 + 3000 * 3.75 + 1000 * 6.00) / 1e6
T2 = (500 * 3 + 150 * 15 + 23000 * 0.30) / 1e6
T3 = (800 * 2 + 100 * 8 + 4000 * 0.50) / 1e6
T4 = (300 * 3 + 80 * 15 + 21000 * 0.30) / 1e6  # the fork's own turn: no response model, the header's (assumed)


def test_turns_by_hand(run_json):
    c = collect(("evener",), [EV])
    got = [(e.session_id, e.model, e.model_is_fallback, e.project, e.tokens.input, e.tokens.output,
            e.tokens.cache_read, e.tokens.cache_write_5m, e.tokens.cache_write_1h, e.tokens.reasoning)
           for e in c.events]
    assert got == [
        ("ses_01JD4Q8ZV9", "claude-sonnet-4-5-20250929", False, "shop", 1200, 300, 20000, 3000, 1000, 40),
        ("ses_01JD4Q8ZV9", "claude-sonnet-4-5-20250929", False, "shop", 500, 150, 23000, 0, 0, 0),
        ("ses_01JD4Q8ZV9", "gpt-4.1", False, "shop", 800, 100, 4000, 0, 0, 0),
        ("ses_01JD4R2M7K", "claude-sonnet-4-5", True, "shop", 300, 80, 21000, 0, 0, 0)]
    assert c.stats.skipped["duplicate_call"] == 1  # the fork's replay of its parent's first answer
    assert c.stats.malformed == 1  # the torn last line
    r = run_json("--path", EV)
    assert r["sources"] == ["evener"]
    assert r["totals"]["cost_usd"] == pytest.approx(T1 + T2 + T3 + T4, abs=1e-12)


def test_locations_and_state_dir_override(isolated_env, monkeypatch, tmp_path):
    assert evener.default_paths() == []
    shutil.copytree(EV, isolated_env / ".local" / "state" / "evener")
    assert evener.default_paths() == [isolated_env / ".local" / "state" / "evener" / "projects"]
    assert len(collect(("evener",)).events) == 4
    bucket = tmp_path / "bucket"  # EVENER_STATE_DIR: one bucket, sessions/ directly under it
    shutil.copytree(EV / "projects" / "p-7f3a9c21e4b8", bucket)
    monkeypatch.setenv("EVENER_STATE_DIR", str(bucket))
    assert evener.default_paths() == [bucket]
    assert len(collect(("evener",)).events) == 4
    monkeypatch.delenv("EVENER_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    shutil.copytree(EV, tmp_path / "xdg" / "evener")
    assert evener.default_paths() == [tmp_path / "xdg" / "evener" / "projects",
                                      isolated_env / ".local" / "state" / "evener" / "projects"]


def test_appended_turn_read_incrementally_and_old_format_refused(tmp_path):
    from nomira.sources import scancache
    src = tmp_path / "sessions"
    shutil.copytree(EV / "projects" / "p-7f3a9c21e4b8" / "sessions", src)
    f = src / "ses_01JD4R2M7K.transcript.jsonl"
    cache = scancache.ScanCache(tmp_path / "scan.sqlite")
    assert len(collect(("evener",), [src], cache=cache).events) == 4
    with open(f, "a") as fh:  # the agent appends a new answer; the cached prefix is not re-read
        fh.write('{"kind":"entry","seq":4,"turn":{"kind":"ASSISTANT","timestamp":"2026-11-20T10:05:00Z","usage":'
                 '{"input_tokens":10,"output_tokens":5,"total_tokens":15},"response_id":"msg_new",'
                 '"response_model":"gpt-4.1"}}\n')
    again = collect(("evener",), [src], cache=cache)
    assert len(again.events) == 5 and again.events[-1].tokens.input == 10
    old = tmp_path / "old" / "sessions"
    old.mkdir(parents=True)
    (old / "s.transcript.jsonl").write_text('{"kind":"header","format_version":1,"session_id":"s"}\n' + (
        '{"kind":"entry","seq":0,"turn":{"kind":"ASSISTANT","timestamp":"2026-11-20T10:05:00Z","usage":'
        '{"input_tokens":10,"output_tokens":5}}}\n'))
    c = collect(("evener",), [old])
    assert c.events == [] and c.stats.skipped["evener_unsupported_format"] == 1
