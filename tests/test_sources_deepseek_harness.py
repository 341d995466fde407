"""DeepSeek Harness: one call per (turn, step) and per compaction; a fork's seeded copies skipped; zstd logs need
a decoder (counted unreadable without one, decoded with it)."""
import os
import shutil
import time

import pytest

from conftest import FIXTURES
from nomira.sources import compressed, deepseek_harness as dsh
from nomira.sources.registry import collect

DSH = FIXTURES / "dsh"
SESSIONS = DSH / "sessions"

# deepseek-chat and deepseek-reasoner: 0.28 / 0.42 / 0.028 read (per MTok).
CHAT = ((1200 + 8000 + 300) * 0.28 + (300 + 400 + 80) * 0.42 + (6400 + 8100) * 0.028) / 1e6
REASONER = (500 * 0.28 + 900 * 0.42 + 7600 * 0.028) / 1e6


def test_by_hand_steps_compaction_fork_and_zstd_unreadable(run_json, no_zstd):
    c = collect(("deepseek_harness",), [DSH])
    got = sorted((e.session_id[-2:], e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.reasoning) for e in c.events)
    assert got == [("a1", "deepseek-chat", "shop", 1200, 300, 6400, 0),  # chunk and message of one step: once
                   ("a1", "deepseek-chat", "shop", 8000, 400, 0, 0),  # the compaction call
                   ("a1", "deepseek-reasoner", "shop", 500, 900, 7600, 600),  # an interrupted step's usage chunk
                   ("b2", "deepseek-chat", "shop", 300, 80, 8100, 0)]  # the fork's own call only
    assert c.stats.skipped["duplicate_call"] == 1
    assert c.stats.skipped[compressed.ZSTD_MISSING] == 1
    assert c.stats.malformed == 1
    r = run_json("--path", DSH)
    assert r["sources"] == ["deepseek_harness"] and r["totals"]["calls"] == 4
    assert r["totals"]["cost_usd"] == pytest.approx(CHAT + REASONER, abs=1e-12)


def test_zstd_log_is_read_with_a_decoder():
    """The real frame of the fixture, decoded by Python 3.14's codec or the zstandard package."""
    c = collect(("deepseek_harness",), [SESSIONS / "_no-cwd"])
    assert [(e.session_id, e.model, e.tokens.input, e.tokens.output) for e in c.events] == [
        ("s-2025-11-10-c3", "deepseek-chat", 900, 40)]
    assert compressed.ZSTD_MISSING not in c.stats.skipped


def test_zstd_log_grown_by_a_frame_is_read_whole_not_resumed(tmp_path):
    """dsh appends frames to its log: a cached scan of the grown file counts each call once."""
    from conftest import zstd_compress
    d = tmp_path / "sessions" / "_no-cwd"
    shutil.copytree(SESSIONS / "_no-cwd", d)
    log = next(d.rglob("session.jsonl.zstd"))
    text = compressed.decompress(log.read_bytes())
    from nomira.sources.scancache import ScanCache
    cache = ScanCache(tmp_path / "cache" / "scan.sqlite")
    assert len(collect(("deepseek_harness",), [d], cache=cache).events) == 1
    extra = text.splitlines()[-1].replace(b'"step":', b'"step":9').replace(b'"turn":', b'"turn":9')
    assert extra != text.splitlines()[-1]
    with open(log, "ab") as fh:
        fh.write(zstd_compress(extra + b"\n"))
    os.utime(log, ns=(time.time_ns(), time.time_ns() + 10**9))
    c = collect(("deepseek_harness",), [d], cache=cache)
    cache.close()
    assert len(c.events) == 2 and "duplicate_call" not in c.stats.skipped


def test_fork_without_seed_would_count_twice(tmp_path):
    """The seedLength skip is what keeps a fork's copied step from counting again."""
    d = tmp_path / "sessions"
    shutil.copytree(SESSIONS / "--home-ana-src-shop--", d / "--home-ana-src-shop--")
    b = d / "--home-ana-src-shop--" / "s-2025-11-10-b2" / "session.jsonl"
    collect_b = collect(("deepseek_harness",), [b])
    assert len(collect_b.events) == 1
    b.write_text(b.read_text().replace('"seedLength":7,', "", 1))
    assert len(collect(("deepseek_harness",), [b]).events) == 2  # the parent's step 1, counted under the fork


def test_default_locations_and_overrides(isolated_env, tmp_path, monkeypatch):
    assert dsh.default_paths() == []
    shutil.copytree(SESSIONS, isolated_env / ".dsh" / "sessions")
    assert dsh.default_paths() == [isolated_env / ".dsh" / "sessions"]
    assert len(collect(("deepseek_harness",)).events) >= 4
    monkeypatch.setenv("DSH_HOME", str(tmp_path / "dh"))
    assert dsh.default_paths() == []
    shutil.copytree(SESSIONS, tmp_path / "dh" / "sessions")
    assert dsh.default_paths() == [tmp_path / "dh" / "sessions"]
    monkeypatch.setenv("DEEPSEEK_HARNESS_SESSIONS_DIR", str(tmp_path / "x"))
    assert dsh.default_paths() == []


def test_unsupported_version_is_counted_not_guessed(tmp_path):
    d = tmp_path / "--p--" / "s1"
    d.mkdir(parents=True)
    src = SESSIONS / "--home-ana-src-shop--" / "s-2025-11-10-a1" / "session.jsonl"
    (d / "session.jsonl").write_text(src.read_text().replace('"version":0', '"version":1', 1))
    c = collect(("deepseek_harness",), [d / "session.jsonl"])
    assert c.events == [] and c.stats.skipped["unreadable:unsupported_version"] == 1
