"""Cherry Studio's agent sessions: Claude Code transcripts under its app data (v2 `Data/Agents/.claude`, v1
`.claude`), Claude Code's parser and dedup (a streamed call appended four times counts once), its own source name."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import cherry_studio
from nomira.sources.registry import collect

CS = FIXTURES / "cherry_studio"
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
