"""Mux session-usage.json: per-model workspace totals, disjoint buckets, Mux's own cost beside."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import mux
from nomira.sources.registry import collect

MX = FIXTURES / "mux"
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 write; gpt-5: 1.25 in / 10 out / 0.125 read. Mux's output excludes
# reasoning, billed as output too.
S = (2500 * 3 + 1800 * 15 + 40000 * 0.30 + 6000 * 3.75) / 1e6
G = (3000 * 1.25 + (900 + 600) * 10 + 1000 * 0.125) / 1e6


def test_totals_by_hand(run_json):
    c = collect(("mux",), [MX])
    got = [(e.model, e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write_5m,
            e.tokens.reasoning, e.aggregated, e.occurred_at.isoformat()) for e in c.events]
    got.sort()
    assert got == [("claude-sonnet-4-5", 2500, 1800, 40000, 6000, 0, True, "2025-11-06T10:00:00+00:00"),
                   ("gpt-5", 3000, 1500, 1000, 0, 600, True, "2025-11-06T10:00:00+00:00"),
                   ("qwen2.5-coder:7b", 500, 80, 0, 0, 0, True, "2025-11-06T10:00:00+00:00")]
    assert c.stats.malformed == 2  # the model entry that is not an object, the cut file
    r = run_json("--path", MX)
    assert r["totals"]["cost_usd"] == pytest.approx(S + G, abs=1e-12)
    models = {m["model"]: m for m in r["models"]}
    assert models["claude-sonnet-4-5"]["agent_cost_usd"] == pytest.approx(0.069)
    assert models["qwen2.5-coder:7b"]["priced"] is False


def test_default_location_override_and_copy_counts_once(isolated_env, tmp_path, monkeypatch):
    shutil.copytree(MX / "sessions", isolated_env / ".mux" / "sessions")
    assert mux.default_paths() == [isolated_env / ".mux" / "sessions"]
    shutil.copytree(MX / "sessions", tmp_path / "backup" / "sessions")
    c = collect(("mux",), [isolated_env / ".mux", tmp_path / "backup"])
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 3
    monkeypatch.setenv("MUX_ROOT", str(tmp_path / "backup"))
    assert mux.default_paths() == [tmp_path / "backup" / "sessions"]


def test_rewritten_file_replaces_its_totals(tmp_path):
    shutil.copytree(MX, tmp_path / "m")
    f = tmp_path / "m" / "sessions" / "a1b2c3d4e5" / "session-usage.json"
    before = {e.model: e.tokens.output for e in collect(("mux",), [tmp_path / "m"]).events}
    f.write_text(f.read_text().replace('"tokens": 1800', '"tokens": 2800'))
    after = {e.model: e.tokens.output for e in collect(("mux",), [tmp_path / "m"]).events}
    assert after["claude-sonnet-4-5"] == before["claude-sonnet-4-5"] + 1000


def test_xum_home_and_its_mux_link_read_once(isolated_env, monkeypatch):
    """Mux renamed Xum: ~/.xum is canonical and ~/.mux a link to it; the sessions count once."""
    shutil.copytree(MX / "sessions", isolated_env / ".xum" / "sessions")
    (isolated_env / ".mux").symlink_to(isolated_env / ".xum", target_is_directory=True)
    assert mux.default_paths() == [isolated_env / ".xum" / "sessions"]
    c = collect(("mux",))
    assert len(c.events) == 3 and "duplicate_call" not in c.stats.skipped
    monkeypatch.setenv("MUX_ROOT", str(isolated_env / "nowhere"))
    monkeypatch.setenv("XUM_ROOT", str(isolated_env / ".xum"))  # the canonical name wins over its alias
    assert mux.default_paths() == [isolated_env / ".xum" / "sessions"]


def test_rolled_up_child_still_on_disk_counts_once(tmp_path):
    """A deleted sub-agent workspace's usage is merged into its parent (rolledUpFrom); a child file left
    behind is skipped, so the merged tokens count once."""
    import json
    d = tmp_path / "sessions"
    shutil.copytree(MX / "sessions", d)
    parent = d / "a1b2c3d4e5" / "session-usage.json"
    child = d / "c0ffee0001" / "session-usage.json"
    child.parent.mkdir()
    kid = {"version": 1, "lastRequest": {"model": "anthropic:claude-sonnet-4-5", "timestamp": 1762423200000},
           "byModel": {"anthropic:claude-sonnet-4-5": {k: {"tokens": n} for k, n in
                                                       (("input", 500), ("cached", 4000), ("cacheCreate", 0),
                                                        ("output", 300), ("reasoning", 0))}}}
    child.write_text(json.dumps(kid))
    before = collect(("mux",), [d])
    assert len(before.events) == 4  # not rolled up yet: the child's own total counts
    doc = json.loads(parent.read_text())
    for k, n in (("input", 500), ("cached", 4000), ("output", 300)):  # the merge, as rollUpUsageIntoParent does
        doc["byModel"]["anthropic:claude-sonnet-4-5"][k]["tokens"] += n
    doc["rolledUpFrom"] = {"c0ffee0001": True}
    parent.write_text(json.dumps(doc))
    after = collect(("mux",), [d])
    assert len(after.events) == 3 and after.stats.skipped["mux_rolled_up_child"] == 1
    assert sum(e.tokens.total for e in after.events) == sum(e.tokens.total for e in before.events)
