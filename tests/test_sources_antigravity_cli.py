"""Antigravity CLI: trajectory.json sidecars' generatorMetadata usage, one call per generation; placeholders unpriced."""
import json
import shutil

from conftest import FIXTURES
from nomira.sources import antigravity_cli
from nomira.sources.registry import collect

AG = FIXTURES / "antigravity_cli" / "antigravity-cli"
U1 = "3f6c2a10-8b1e-4c55-9d2a-71e0b4c1a001"

# gemini-2.5-pro: 1.25 / 10 / 0.125 read; gemini-2.5-flash: 0.30 / 2.50 (per MTok); placeholders unpriced.
PRO = (12000 * 1.25 + 900 * 10 + 30000 * 0.125) / 1e6
FLASH = (2000 * 0.30 + 300 * 2.50) / 1e6


def test_by_hand_generations(run_json):
    c = collect(("antigravity_cli",), [AG])
    got = sorted((e.occurred_at.isoformat(), e.session_id[-12:], e.model, e.project, e.tokens.input, e.tokens.output,
                  e.tokens.cache_read, e.tokens.reasoning) for e in c.events)
    assert got == [
        ("2025-11-08T09:00:02+00:00", "71e0b4c1a001", "gemini-2.5-pro", "shop", 12000, 900, 30000, 400),
        ("2025-11-08T09:00:40+00:00", "71e0b4c1a001", "MODEL_PLACEHOLDER_M26", "shop", 800, 150, 41000, 0),  # step time
        ("2025-11-08T10:00:01+00:00", "71e0b4c1a002", "gemini-2.5-flash", "unknown", 2000, 300, 0, 0)]
    assert {e.session_id for e in c.events} == {U1, "implicit-3f6c2a10-8b1e-4c55-9d2a-71e0b4c1a002"}
    assert c.stats.malformed == 1  # the truncated sidecar; the empty usage {} of a failed generation is no call
    r = run_json("--path", AG)
    assert r["sources"] == ["antigravity_cli"] and r["totals"]["calls"] == 3
    assert abs(r["totals"]["cost_usd"] - (PRO + FLASH)) < 1e-12
    assert [m["model"] for m in r["models"] if not m["priced"]] == ["MODEL_PLACEHOLDER_M26"]


def test_rewritten_sidecar_counts_each_generation_once(tmp_path):
    """agy-reader rewrites a sidecar as the session grows: the older copy's generations count once."""
    d = tmp_path / "antigravity-cli" / "conversations"
    shutil.copytree(AG / "conversations", d)
    doc = json.loads((d / f"{U1}.trajectory.json").read_text())
    doc["generatorMetadata"] = doc["generatorMetadata"][:1]  # the same sidecar, earlier
    (tmp_path / "older" / "conversations").mkdir(parents=True)
    (tmp_path / "older" / "conversations" / f"{U1}.trajectory.json").write_text(json.dumps(doc))
    c = collect(("antigravity_cli",), [d, tmp_path / "older"])
    assert len(c.events) == 2 and c.stats.skipped["duplicate_call"] == 1


def test_default_location_and_override(isolated_env, tmp_path, monkeypatch):
    assert antigravity_cli.default_paths() == []
    shutil.copytree(AG, isolated_env / ".gemini" / "antigravity-cli")
    assert antigravity_cli.default_paths() == [isolated_env / ".gemini" / "antigravity-cli"]
    assert len(collect(("antigravity_cli",)).events) == 3
    assert len(collect(("gemini",)).events) == 0  # not Gemini CLI's files
    monkeypatch.setenv("ANTIGRAVITY_CLI_DIR", str(tmp_path / "elsewhere"))
    assert antigravity_cli.default_paths() == []
