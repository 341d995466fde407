"""Senpi: pi's v3 session files under ~/.senpi/agent/sessions, counted under Senpi's name; the fork copy
once, the cut line counted malformed, totals by hand (pi's fixture, see test_sources_pi)."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import senpi
from nomira.sources.registry import collect

PI = FIXTURES / "pi" / "sessions"
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 write; gpt-5: 1.25 / 10 / 0.125 read (pi-ai: input is cache-miss)
A1 = (12 * 3 + 400 * 15 + 20000 * 0.30 + 3000 * 3.75) / 1e6
A2 = (2000 * 1.25 + 6000 * 0.125 + 700 * 10) / 1e6


def test_by_hand_under_its_own_name(isolated_env, run_json):
    assert senpi.default_paths() == []
    home = isolated_env / ".senpi" / "agent" / "sessions"
    shutil.copytree(PI, home)
    assert senpi.default_paths() == [home]
    c = collect(("senpi",))
    alone = collect(("pi",), [PI])
    assert {e.source for e in c.events} == {"senpi"}
    assert [(e.model, e.project, e.tokens) for e in c.events] == [(e.model, e.project, e.tokens) for e in alone.events]
    assert c.stats.skipped["duplicate_call"] == 1 and c.stats.malformed == 1  # the fork's copy; the cut line
    r = run_json("--path", isolated_env / ".senpi")  # named like pi's files, classified by their folder
    assert r["sources"] == ["senpi"]
    assert r["totals"]["cost_usd"] == pytest.approx(A1 + A2, abs=1e-12)


def test_overrides(isolated_env, monkeypatch, tmp_path):
    shutil.copytree(PI, tmp_path / "agent" / "sessions")
    monkeypatch.setenv("SENPI_CODING_AGENT_DIR", str(tmp_path / "agent"))
    assert senpi.default_paths() == [tmp_path / "agent" / "sessions"]
    monkeypatch.setenv("SENPI_CODING_AGENT_SESSION_DIR", str(tmp_path / "elsewhere"))
    assert senpi.default_paths() == []
