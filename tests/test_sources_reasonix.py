"""Reasonix stats/YYYY-MM-DD.jsonl: one row per provider call, cache hits apart from misses (writes inside misses),
reasoning inside completion; turn markers, compaction rows and request-only rows are no calls; a torn line is
counted; a copied stats folder counts once."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import reasonix
from nomira.sources.registry import collect

RX = FIXTURES / "reasonix" / ".reasonix"
# deepseek-v4-flash: 0.30 / 1.20 / 0.006 read; deepseek-v4-pro: 1.32 / 3.96 / 0.044 read; claude-sonnet-4-5: 3 / 15 /
# 0.30 read (bundled table); mimo-v2-pro: not in the table.
FLASH = (2000 * 0.30 + 800 * 1.20 + 10000 * 0.006) / 1e6
PRO = ((5000 - 4000) * 1.32 + 400 * 3.96 + 4000 * 0.044) / 1e6  # hits but no misses: the rest of the prompt
SONNET = (10000 * 3 + 1200 * 15 + 20000 * 0.30) / 1e6


def test_totals_by_hand(run_json):
    c = collect(("reasonix",), [RX])
    got = [(e.model, e.provider, e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.reasoning,
            e.tokens.reported_input, e.aggregated, e.occurred_at.isoformat()[:19], e.session_id) for e in c.events]
    assert got == [("deepseek-v4-flash", "deepseek", 2000, 800, 10000, 300, 12000, False, "2026-08-04T09:10:11",
                    "stats/2026-08-04"),
                   ("deepseek-v4-pro", "deepseek", 1000, 400, 4000, 0, 5000, False, "2026-08-04T09:12:40",
                    "stats/2026-08-04"),
                   ("claude-sonnet-4-5", "anthropic", 10000, 1200, 20000, 0, 30000, True, "2026-08-04T10:05:30",
                    "stats/2026-08-04"),  # two attempts folded into one row
                   ("mimo-v2-pro", "mimo", 3000, 100, 0, 0, 3000, False, "2026-08-05T01:00:00",
                    "stats/2026-08-05")]  # no hit/miss split: the whole prompt uncached
    assert c.stats.malformed == 1  # the torn line (Reasonix closes it before its next append)
    assert c.events[0].agent_cost_usd == pytest.approx(0.00162)
    r = run_json("--path", RX)
    assert r["sources"] == ["reasonix"] and r["totals"]["calls"] == 4
    assert r["totals"]["cost_usd"] == pytest.approx(FLASH + PRO + SONNET, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["mimo-v2-pro"] is False  # never guessed


def test_default_locations_overrides_and_copy_counts_once(isolated_env, monkeypatch, tmp_path):
    assert reasonix.default_paths() == []
    shutil.copytree(RX, isolated_env / ".reasonix")
    assert reasonix.default_paths() == [isolated_env / ".reasonix" / "stats"]
    assert len(collect(("reasonix",)).events) == 4
    shutil.copytree(RX, tmp_path / "state")
    monkeypatch.setenv("REASONIX_HOME", str(tmp_path / "home-only"))
    assert reasonix.default_paths() == []  # the override replaces ~/.reasonix
    monkeypatch.setenv("REASONIX_STATE_HOME", str(tmp_path / "state"))  # the state root wins over REASONIX_HOME
    assert reasonix.default_paths() == [tmp_path / "state" / "stats"]
    both = reasonix.find_files([isolated_env / ".reasonix" / "stats", tmp_path / "state" / "stats"])
    c = collect(("reasonix",), found={"reasonix": both})
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 4
    monkeypatch.delenv("REASONIX_STATE_HOME")
    monkeypatch.delenv("REASONIX_HOME")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))  # Windows
    shutil.copytree(RX, tmp_path / "Roaming" / "reasonix")
    assert reasonix.default_paths()[-1] == tmp_path / "Roaming" / "reasonix" / "stats"


def test_appended_rows_resume_where_the_last_scan_stopped(tmp_path):
    src = RX / "stats" / "2026-08-04.jsonl"
    data = src.read_bytes()
    cut = data.index(b'{"ts":"2026-08-04T18:05:30')
    live = tmp_path / ".reasonix" / "stats" / src.name
    live.parent.mkdir(parents=True)
    live.write_bytes(data[:cut])
    recs, state, end, _ = reasonix.scan_file(live)
    live.write_bytes(data)
    more, _state, _end, _ = reasonix.scan_file(live, end, state)
    assert recs + more == reasonix.scan_file(src)[0] and len(more) == 1
