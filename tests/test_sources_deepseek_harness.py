"""DeepSeek Harness: one call per (turn, step) and per compaction; a fork's seeded copies skipped; zstd logs need
Python 3.14 (counted unreadable before, decoded with it)."""
import shutil
import subprocess
import sys
import types

import pytest

from conftest import FIXTURES
from nomira.sources import deepseek_harness as dsh
from nomira.sources.registry import collect

DSH = FIXTURES / "dsh"
SESSIONS = DSH / "sessions"
HAS_STDLIB_ZSTD = sys.version_info >= (3, 14)

# deepseek-chat and deepseek-reasoner: 0.28 / 0.42 / 0.028 read (per MTok).
CHAT = ((1200 + 8000 + 300) * 0.28 + (300 + 400 + 80) * 0.42 + (6400 + 8100) * 0.028) / 1e6
REASONER = (500 * 0.28 + 900 * 0.42 + 7600 * 0.028) / 1e6


@pytest.mark.skipif(HAS_STDLIB_ZSTD, reason="the zstd log is readable on 3.14")
def test_by_hand_steps_compaction_fork_and_zstd_unreadable(run_json):
    c = collect(("deepseek_harness",), [DSH])
    got = sorted((e.session_id[-2:], e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.reasoning) for e in c.events)
    assert got == [("a1", "deepseek-chat", "shop", 1200, 300, 6400, 0),  # chunk and message of one step: once
                   ("a1", "deepseek-chat", "shop", 8000, 400, 0, 0),  # the compaction call
                   ("a1", "deepseek-reasoner", "shop", 500, 900, 7600, 600),  # an interrupted step's usage chunk
                   ("b2", "deepseek-chat", "shop", 300, 80, 8100, 0)]  # the fork's own call only
    assert c.stats.skipped["duplicate_call"] == 1
    assert c.stats.skipped[dsh.ZSTD_MISSING] == 1
    assert c.stats.malformed == 1
    r = run_json("--path", DSH)
    assert r["sources"] == ["deepseek_harness"] and r["totals"]["calls"] == 4
    assert r["totals"]["cost_usd"] == pytest.approx(CHAT + REASONER, abs=1e-12)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd tool to stand in for compression.zstd")
def test_zstd_log_is_read_when_python_can_decode_it(monkeypatch):
    """The decode path, with Python 3.14's module stood in for by the zstd tool on the real frame."""
    if not HAS_STDLIB_ZSTD:
        fake = types.ModuleType("compression.zstd")
        fake.decompress = lambda data: subprocess.run(["zstd", "-d", "-c"], input=data, capture_output=True,
                                                      check=True).stdout
        monkeypatch.setitem(sys.modules, "compression", types.ModuleType("compression"))
        monkeypatch.setitem(sys.modules, "compression.zstd", fake)
        sys.modules["compression"].zstd = fake
    c = collect(("deepseek_harness",), [SESSIONS / "_no-cwd"])
    assert [(e.session_id, e.model, e.tokens.input, e.tokens.output) for e in c.events] == [
        ("s-2025-11-10-c3", "deepseek-chat", 900, 40)]
    assert dsh.ZSTD_MISSING not in c.stats.skipped


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
