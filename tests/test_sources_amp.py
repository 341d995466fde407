"""Amp threads: per-message usage (Anthropic terms), legacy usage ledger, credits kept beside the cost."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import amp
from nomira.sources.registry import collect

AMP = FIXTURES / "amp"
# Bundled rates (USD per MTok): claude-sonnet-4-5 3 in / 15 out / 0.30 read / 3.75 5m-write;
# claude-haiku-4-5 1 / 5 / 0.10 read.
M1 = (10 * 3 + 500 * 15 + 2000 * 3.75 + 30000 * 0.30) / 1e6
M3 = (200 * 1 + 100 * 5 + 5000 * 0.10) / 1e6
L1 = (1000 * 3 + 100 * 15) / 1e6  # ledger-only call: no cache split known


def test_calls_and_projects():
    evs = collect(("amp",), [AMP]).events
    assert len(evs) == 3
    m1 = next(e for e in evs if e.message_id == "T-3f1c2a9e-7b4d-4e21-9a0c-5d6e7f809a1b:1")
    t = m1.tokens
    assert (t.input, t.cache_write_5m, t.cache_read, m1.agent_cost_usd) == (10, 2000, 30000, 0.09)
    assert {e.project for e in evs} == {"shop", "billing"}


def test_totals_by_hand_with_the_agents_credits(run_json):
    r = run_json("--path", AMP)
    assert r["totals"]["cost_usd"] == pytest.approx(M1 + M3 + L1, abs=1e-12)
    assert r["regime"] == "api"
    sonnet = next(m for m in r["models"] if m["model"] == "claude-sonnet-4-5-20250929")
    assert sonnet["agent_cost_usd"] == pytest.approx(0.09 + 0.0045)


def test_truncated_thread_counted_and_copy_counted_once(tmp_path):
    shutil.copytree(AMP, tmp_path / "a")
    shutil.copytree(AMP, tmp_path / "b")
    c = collect(("amp",), [tmp_path / "a", tmp_path / "b"])
    assert len(c.events) == 3
    assert c.stats.skipped["duplicate_call"] == 3 and c.stats.malformed == 2


def test_default_location(run_json, isolated_env):
    shutil.copytree(AMP / "threads", isolated_env / ".local/share/amp/threads")
    assert amp.default_paths() == [isolated_env / ".local/share/amp/threads"]
    r = run_json("--source", "amp", "daily", "--timezone", "UTC")
    assert {d["date"]: round(d["cost_usd"], 9) for d in r["daily"]} == {"2025-11-05": round(L1, 9),
                                                                         "2025-11-06": round(M1 + M3, 9)}


def test_warm_run_reuses_unchanged_threads_and_rereads_a_rewritten_one(fixture_copy, run_json):
    import json
    import os
    threads = fixture_copy / "amp" / "threads"
    cold = run_json("--path", threads)
    assert run_json("--path", threads) == cold
    f = threads / "T-0a1b2c3d-4e5f-4061-8899-aabbccddeeff.json"
    doc = json.loads(f.read_text())
    doc["usageLedger"]["events"][0]["tokens"]["output"] = 1100  # Amp rewrites the thread whole
    f.write_text(json.dumps(doc, indent=2))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert run_json("--path", threads)["totals"]["cost_usd"] == pytest.approx(M1 + M3 + L1 + 1000 * 15 / 1e6)
