"""fx usage-v2.json: per-model session totals from the Vercel AI Gateway's generation records; input includes the
cache reads and writes, output includes reasoning; the Gateway's charged cost kept beside; a copied session counts
once and a rewritten sidecar replaces its totals."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import fx
from nomira.sources.registry import collect

FX = FIXTURES / "fx"
A = "1787157077624-1787157077624725000-a1b2c3"
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 write; gpt-5: 1.25 / 10 / 0.125 read; zai/glm-4.6: 0.6 / 2.2 / 0.11 read.
# Uncached input = the Gateway's input total - cache reads - cache writes.
S = ((52000 - 40000 - 6000) * 3 + 1800 * 15 + 40000 * 0.30 + 6000 * 3.75) / 1e6
G = ((3400 - 1000) * 1.25 + 1500 * 10 + 1000 * 0.125) / 1e6
Z = ((9000 - 4000) * 0.6 + 700 * 2.2 + 4000 * 0.11) / 1e6


def test_totals_by_hand(run_json):
    c = collect(("fx",), [FX])
    got = sorted((e.model, e.provider, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.cache_write, e.tokens.reasoning, e.tokens.reported_input, e.aggregated,
                  e.occurred_at.isoformat()) for e in c.events)
    assert got == [("claude-sonnet-4.5", "anthropic", "ledger", 6000, 1800, 40000, 6000, 0, 52000, True,
                    "2026-08-19T16:39:43.543000+00:00"),
                   ("glm-4.6", "zai", "notes", 5000, 700, 4000, 0, 200, 9000, True, "2026-08-20T16:38:32+00:00"),
                   ("gpt-5", "openai", "ledger", 2400, 1500, 1000, 0, 600, 3400, True,
                    "2026-08-19T16:39:43.543000+00:00")]  # the all-zero gpt-5-mini entry is no call
    assert c.stats.malformed == 2  # the model entry that is not an object, the cut sidecar
    assert {e.session_id for e in c.events} == {A, "1787243000000-1787243000000120000-d4e5f6"}
    r = run_json("--path", FX)
    assert r["sources"] == ["fx"] and r["totals"]["calls"] == 3
    assert r["totals"]["cost_usd"] == pytest.approx(S + G + Z, abs=1e-12)
    models = {m["model"]: m for m in r["models"]}
    assert models["claude-sonnet-4.5"]["agent_cost_usd"] == pytest.approx(0.0681)


def test_default_location_override_and_copy_counts_once(isolated_env, tmp_path, monkeypatch):
    assert fx.default_paths() == []
    shutil.copytree(FX / "sessions", isolated_env / ".fx" / "sessions")
    assert fx.default_paths() == [isolated_env / ".fx" / "sessions"]
    assert len(collect(("fx",)).events) == 3
    shutil.copytree(FX / "sessions", tmp_path / "backup")
    monkeypatch.setenv("FX_SESSIONS_DIR", f"{isolated_env / '.fx' / 'sessions'},{tmp_path / 'backup'}")
    assert fx.default_paths() == [isolated_env / ".fx" / "sessions", tmp_path / "backup"]
    c = collect(("fx",))
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 3
    monkeypatch.delenv("FX_SESSIONS_DIR")
    monkeypatch.delenv("HOME")
    monkeypatch.setenv("USERPROFILE", str(isolated_env))  # Windows: fx's home is USERPROFILE
    assert fx.default_paths() == [isolated_env / ".fx" / "sessions"]


def test_rewritten_sidecar_replaces_its_totals(tmp_path):
    shutil.copytree(FX, tmp_path / "f")
    f = tmp_path / "f" / "sessions" / A / "usage-v2.json"
    before = {e.model: e.tokens.output for e in collect(("fx",), [tmp_path / "f"]).events}
    f.write_text(f.read_text().replace('"output_tokens":1800', '"output_tokens":2800'))
    after = {e.model: e.tokens.output for e in collect(("fx",), [tmp_path / "f"]).events}
    assert after["claude-sonnet-4.5"] == before["claude-sonnet-4.5"] + 1000
    assert after["gpt-5"] == before["gpt-5"]


def test_a_session_without_its_session_json_is_dated_at_its_last_checkpoint(tmp_path):
    import os
    shutil.copytree(FX / "sessions" / A, tmp_path / "sessions" / A)
    (tmp_path / "sessions" / A / "session.json").unlink()
    os.utime(tmp_path / "sessions" / A / "usage-v2.json", (1787160000, 1787160000))
    c = collect(("fx",), [tmp_path / "sessions"])
    assert [(e.occurred_at.isoformat(), e.project) for e in c.events] == [("2026-08-19T17:20:00+00:00", "unknown")] * 2
