"""OpenClaude and Claude Cowork (Claude Code's transcripts), TraeX (Codex's rollouts): the parent's
parser and dedup, the agent's own source name and folders."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import cowork, openclaude, traex
from nomira.sources.registry import collect

OCL = FIXTURES / "openclaude"
# gpt-4.1: 2 in / 8 out / 0.50 read; claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write (bundled table).
GPT = (3000 * 2 + 500 * 8 + 1000 * 0.50) / 1e6
SONNET = (800 * 3 + 350 * 15 + 12000 * 0.30 + 2500 * 3.75) / 1e6


def test_openclaude_by_hand(run_json, tmp_path):
    shutil.copytree(OCL, tmp_path / ".openclaude")
    c = collect(("openclaude",), [tmp_path / ".openclaude"])
    got = [(e.source, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write_5m) for e in c.events]
    assert got == [("openclaude", "gpt-4.1", "shop", 3000, 500, 1000, 0),
                   ("openclaude", "claude-sonnet-4-5", "shop", 800, 350, 12000, 2500),
                   ("openclaude", "qwen2.5-coder:32b", "shop", 4000, 200, 0, 0)]
    assert c.stats.skipped["duplicate_call"] == 1  # the call's second content-block line
    assert c.stats.malformed == 1  # the truncated last line
    r = run_json("--path", tmp_path / ".openclaude")  # classified by its folder
    assert r["sources"] == ["openclaude"]
    assert r["totals"]["cost_usd"] == pytest.approx(GPT + SONNET, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["qwen2.5-coder:32b"] is False  # never guessed


def test_openclaude_locations(isolated_env, monkeypatch, tmp_path):
    assert openclaude.default_paths() == []
    shutil.copytree(OCL, isolated_env / ".openclaude")
    assert openclaude.default_paths() == [isolated_env / ".openclaude" / "projects"]
    assert len(collect(("openclaude",)).events) == 3
    assert collect(("claude",)).events == []  # not Claude Code's own history
    monkeypatch.setenv("OPENCLAUDE_CONFIG_DIR", str(tmp_path))
    (tmp_path / "projects").mkdir()
    assert openclaude.default_paths() == [tmp_path / "projects"]


def cowork_home(root):
    """A Cowork session: the metadata JSON beside its folder holding a Claude Code transcript."""
    ws = root / "org-1" / "ws-1"
    proj = ws / "local_5b1c" / ".claude" / "projects" / "-sessions-brave-otter"
    shutil.copytree(OCL / "projects" / "-home-ana-src-shop", proj)
    (ws / "local_5b1c.json").write_text('{"sessionId": "local_5b1c", "cliSessionId": "0199f3c4-5d6e-7f80-9a1b-'
                                        '2c3d4e5f6a7b", "title": "Fix the test", "createdAt": 1772445600000}')
    return proj


def test_cowork_default_location_copy_counts_once(isolated_env, tmp_path, run_json):
    assert cowork.default_paths() == []
    root = isolated_env / ".config" / "Claude" / "local-agent-mode-sessions"
    proj = cowork_home(root)
    assert cowork.default_paths() == [root]
    c = collect(("cowork",))
    assert [e.source for e in c.events] == ["claude_cowork"] * 3
    assert sum(e.tokens.total for e in c.events) == 3000 + 500 + 1000 + 800 + 350 + 12000 + 2500 + 4000 + 200
    shutil.copytree(proj, tmp_path / "copy" / "local-agent-mode-sessions" / "x" / ".claude" / "projects" / "p")
    c = collect(("cowork",), found={"cowork": cowork.find_files([root, tmp_path / "copy"])})
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 5  # the copy's 3 calls + each file's block line
    r = run_json("--source", "cowork")
    assert r["regime"] == "subscription"
    assert r["totals"]["cost_usd"] == pytest.approx(GPT + SONNET, abs=1e-12)


def test_traex_codex_rollouts_under_its_name(isolated_env, monkeypatch, tmp_path, run_json):
    assert traex.default_paths() == []
    shutil.copytree(FIXTURES / "codex" / "sessions", isolated_env / ".trae" / "cli" / "sessions")
    assert traex.default_paths() == [isolated_env / ".trae" / "cli" / "sessions"]
    mine, theirs = collect(("traex",)), collect(("codex",), [FIXTURES / "codex"])
    assert {e.source for e in mine.events} == {"traex"}
    assert [(e.model, e.tokens) for e in mine.events] == [(e.model, e.tokens) for e in theirs.events]
    assert mine.stats.malformed == theirs.stats.malformed
    assert run_json("--path", isolated_env / ".trae")["sources"] == ["traex"]
    monkeypatch.setenv("TRAEX_SESSIONS_DIR", str(tmp_path))
    assert traex.default_paths() == [tmp_path]


def test_qoder_claude_transcripts_under_its_name(isolated_env, monkeypatch, tmp_path, run_json):
    from nomira.sources import qoder
    assert qoder.default_paths() == []
    shutil.copytree(OCL / "projects", isolated_env / ".qoderwork" / "projects")
    assert qoder.default_paths() == [isolated_env / ".qoderwork" / "projects"]
    c = collect(("qoder",))
    assert [(e.source, e.model, e.tokens.total) for e in c.events] == [
        ("qoder", "gpt-4.1", 4500), ("qoder", "claude-sonnet-4-5", 15650), ("qoder", "qwen2.5-coder:32b", 4200)]
    assert c.stats.skipped["duplicate_call"] == 1 and c.stats.malformed == 1
    r = run_json("--path", isolated_env / ".qoderwork")
    assert r["sources"] == ["qoder"] and r["regime"] == "subscription"
    assert r["totals"]["cost_usd"] == pytest.approx(GPT + SONNET, abs=1e-12)
    monkeypatch.setenv("QODER_PROJECTS_DIR", str(tmp_path))
    assert qoder.default_paths() == [tmp_path]
