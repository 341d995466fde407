"""Poolside trajectories: one call per inference.end, the model of its inference.start, copies once."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import poolside
from nomira.sources.registry import collect

PS = FIXTURES / "poolside"
S = (1200 * 3 + 300 * 15 + 5000 * 0.30 + 2000 * 3.75) / 1e6  # claude-sonnet-4-5; laguna-m.1 is unpriced


def test_inferences_by_hand(run_json):
    c = collect(("poolside",), [PS])
    got = [(e.occurred_at.isoformat(), e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write_5m) for e in c.events]
    assert got == [("2025-11-06T13:00:04+00:00", "poolside/laguna-m.1", "shop", 800, 40, 300, 0),
                   ("2025-11-06T13:00:09+00:00", "claude-sonnet-4-5", "shop", 1200, 300, 5000, 2000)]
    assert c.stats.malformed == 2  # the payload that is not an object, the cut line
    r = run_json("--path", PS)
    assert r["totals"]["cost_usd"] == pytest.approx(S, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["poolside/laguna-m.1"] is False


def test_locations_and_copy_counts_once(isolated_env, tmp_path):
    shutil.copytree(PS, isolated_env / ".local" / "state" / "poolside")
    assert poolside.default_paths() == [isolated_env / ".local" / "state" / "poolside"]
    shutil.copytree(PS, tmp_path / "copy")
    c = collect(("poolside",), [isolated_env / ".local" / "state" / "poolside", tmp_path / "copy"])
    assert len(c.events) == 2 and c.stats.skipped["duplicate_call"] == 2
