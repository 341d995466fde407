"""Cherry Studio's agent sessions: Claude Code transcripts under its app data (v2 `Data/Agents/.claude`, v1
`.claude`), Claude Code's parser and dedup (a streamed call appended four times counts once), its own source name."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import cherry_studio
from nomira.sources.registry import collect

CS = FIXTURES / "cherry_studio" / "CherryStudio"
# deepseek-v4-pro: 1.32 / 3.96 / 0.044 read; claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write (bundled table);
# kimi-k2-0905-preview: not in the table.
DS = (1200 * 1.32 + 300 * 3.96 + 8000 * 0.044) / 1e6
SONNET = (900 * 3 + 450 * 15 + 6000 * 0.30 + 2000 * 3.75) / 1e6


def home_with_cherry(root):
    shutil.copytree(CS, root / ".config" / "CherryStudio")
    return root / ".config" / "CherryStudio"


def test_totals_by_hand(run_json, tmp_path):
    app = home_with_cherry(tmp_path)
    c = collect(("cherry",), [app])
    got = sorted((e.source, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.cache_write_5m, e.occurred_at.isoformat()[:19]) for e in c.events)
    assert got == [("cherry_studio", "claude-sonnet-4-5-20250929", "api", 900, 450, 6000, 2000, "2026-04-27T13:59:09"),
                   ("cherry_studio", "deepseek-v4-pro", "api", 1200, 300, 8000, 0, "2026-04-27T13:59:02"),
                   ("cherry_studio", "kimi-k2-0905-preview", "docs", 2500, 200, 0, 0, "2026-01-12T08:00:04")]
    assert c.stats.skipped["duplicate_call"] == 4  # the DeepSeek call's three repeats, the Sonnet call's one
    assert c.stats.malformed == 1  # the truncated last line
    r = run_json("--path", app)  # classified by its folder, not as Claude Code's own history
    assert r["sources"] == ["cherry_studio"] and r["totals"]["calls"] == 3
    assert r["totals"]["cost_usd"] == pytest.approx(DS + SONNET, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["kimi-k2-0905-preview"] is False  # never guessed


def test_default_locations_v1_and_v2_and_override(isolated_env, monkeypatch, tmp_path):
    assert cherry_studio.default_paths() == []
    app = home_with_cherry(isolated_env)
    assert cherry_studio.default_paths() == [app / "Data" / "Agents" / ".claude" / "projects",
                                             app / ".claude" / "projects"]
    assert len(collect(("cherry",)).events) == 3
    assert collect(("claude",)).events == []  # not Claude Code's own history
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))  # Windows
    shutil.copytree(CS / ".claude", tmp_path / "Roaming" / "CherryStudio" / ".claude")
    assert cherry_studio.default_paths()[0] == tmp_path / "Roaming" / "CherryStudio" / ".claude" / "projects"
    c = collect(("cherry",))
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 4 + 1  # the v1 copy counts once
    monkeypatch.setenv("CHERRY_STUDIO_CLAUDE_DIR", str(tmp_path / "Roaming" / "CherryStudio" / ".claude" / "projects"))
    assert [e.model for e in collect(("cherry",)).events] == ["kimi-k2-0905-preview"]


# Cherry Studio's pi runtime: pi's own session files, flat under Data/Agents/.pi/sessions (pi's fixture).
PI_SESSIONS = FIXTURES / "pi" / "sessions" / "--home-ana-src-shop--"
PI_A1 = (12 * 3 + 400 * 15 + 20000 * 0.30 + 3000 * 3.75) / 1e6  # claude-sonnet-4-5 (pi-ai: input is cache-miss)
PI_A2 = (2000 * 1.25 + 6000 * 0.125 + 700 * 10) / 1e6  # gpt-5


def test_pi_sessions_by_hand_under_cherrys_name(isolated_env, run_json, tmp_path, monkeypatch):
    from nomira.sources import cherry_pi
    assert cherry_pi.default_paths() == []
    sessions = isolated_env / ".config" / "CherryStudio" / "Data" / "Agents" / ".pi" / "sessions"
    shutil.copytree(PI_SESSIONS, sessions)
    assert cherry_pi.default_paths() == [sessions]
    c, alone = collect(("cherry_pi",)), collect(("pi",), [PI_SESSIONS])
    assert {e.source for e in c.events} == {"cherry_studio_pi"}
    assert [(e.model, e.project, e.tokens) for e in c.events] == [(e.model, e.project, e.tokens) for e in alone.events]
    assert c.stats.skipped["duplicate_call"] == 1 and c.stats.malformed == 1  # the fork's copy; the cut line
    r = run_json("--path", isolated_env / ".config" / "CherryStudio")  # pi's file names, classified by the folder
    assert r["sources"] == ["cherry_studio_pi"]
    assert r["totals"]["cost_usd"] == pytest.approx(PI_A1 + PI_A2, abs=1e-12)
    shutil.copytree(PI_SESSIONS, tmp_path / "copy")
    monkeypatch.setenv("CHERRY_STUDIO_PI_DIR", f"{sessions},{tmp_path / 'copy'}")
    c = collect(("cherry_pi",))
    assert len(c.events) == 2 and c.stats.skipped["duplicate_call"] == 1 + 1 + 2  # each file's fork copy, the copy's 2
