"""pi-format agents under their own names: OpenClaw (agents/<agent>/sessions), Oh My Pi, Prime Agent."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import openclaw
from nomira.sources.registry import collect

OC = FIXTURES / "openclaw"
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 write; gpt-4.1: 2 / 8 / 0.50 read (pi-ai: input is cache-miss).
C1 = (800 * 3 + 350 * 15 + 12000 * 0.30 + 2500 * 3.75) / 1e6
C2 = (3000 * 2 + 500 * 8 + 1000 * 0.50) / 1e6


def test_openclaw_by_hand_fork_copy_once(run_json):
    c = collect(("openclaw",), [OC])
    got = [(e.source, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write_5m, e.agent_cost_usd) for e in c.events]
    assert got == [("openclaw", "claude-sonnet-4-5", "shop", 800, 350, 12000, 2500, 0.020625),
                   ("openclaw", "gpt-4.1", "shop", 3000, 500, 1000, 0, 0.0105)]
    assert c.stats.skipped["duplicate_call"] == 1  # the research agent's session copied c1a00001
    assert c.stats.malformed == 1
    r = run_json("--path", OC)
    assert r["totals"]["cost_usd"] == pytest.approx(C1 + C2, abs=1e-12)
    assert r["sources"] == ["openclaw"]


def test_default_locations(isolated_env, monkeypatch, tmp_path, run_json):
    shutil.copytree(OC / "agents", isolated_env / ".openclaw" / "agents")
    pi_sessions = FIXTURES / "pi" / "sessions"
    shutil.copytree(pi_sessions, isolated_env / ".omp" / "agent" / "sessions")
    shutil.copytree(pi_sessions, isolated_env / ".prime" / "agent" / "sessions")
    assert openclaw.default_paths() == [isolated_env / ".openclaw" / "agents"]
    omp = collect(("omp",))
    alone = collect(("pi",), [pi_sessions])
    assert {e.source for e in omp.events} == {"oh_my_pi"}
    assert sorted(e.tokens.total for e in omp.events) == sorted(e.tokens.total for e in alone.events)
    assert {e.source for e in collect(("prime",)).events} == {"prime_agent"}
    assert run_json("--path", isolated_env / ".omp")["sources"] == ["oh_my_pi"]  # by folder, not read as pi
    assert run_json("--path", isolated_env / ".prime")["sources"] == ["prime_agent"]
    monkeypatch.setenv("OPENCLAW_DIR", str(tmp_path))
    assert openclaw.default_paths() == [tmp_path]


def test_qclaw_openclaw_format_under_its_own_name(isolated_env, monkeypatch, tmp_path, run_json):
    from nomira.sources import qclaw
    assert qclaw.default_paths() == []
    shutil.copytree(OC / "agents", isolated_env / ".qclaw" / "agents")
    assert qclaw.default_paths() == [isolated_env / ".qclaw" / "agents"]
    c = collect(("qclaw",))
    alone = collect(("openclaw",), [OC])
    assert {e.source for e in c.events} == {"qclaw"}
    assert [(e.model, e.project, e.tokens) for e in c.events] == [(e.model, e.project, e.tokens) for e in alone.events]
    assert c.stats.skipped["duplicate_call"] == 1 and c.stats.malformed == 1
    r = run_json("--path", isolated_env / ".qclaw")  # named like OpenClaw's files, classified by their folder
    assert r["sources"] == ["qclaw"]
    assert r["totals"]["cost_usd"] == pytest.approx(C1 + C2, abs=1e-12)
    monkeypatch.setenv("QCLAW_DIR", str(tmp_path))
    assert qclaw.default_paths() == [tmp_path]
