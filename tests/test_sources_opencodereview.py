"""Open Code Review's session JSONL: per llm_response, a prompt count that includes the cache (taken out here),
the raw HTTP captures beside it never read, a copied session counted once."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import opencodereview
from nomira.sources.registry import collect

OCR = FIXTURES / "opencodereview" / ".opencodereview"
SID = "0f8e2a61-3b7c-4d2e-9a15-6c1d8e4f2b90"
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 write; gpt-4.1: 2 / 8 (bundled). Input = prompt - cache read - write.
R1 = (1000 * 3 + 400 * 15 + 6000 * 3.75) / 1e6
R2 = (500 * 3 + 250 * 15 + 6000 * 0.30 + 800 * 3.75) / 1e6
R3 = (3000 * 2 + 120 * 8) / 1e6


def test_responses_by_hand(run_json):
    c = collect(("opencodereview",), [OCR / "sessions"])
    got = [(e.session_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write_5m, e.tokens.reported_input) for e in c.events]
    assert got == [(SID, "claude-sonnet-4-5", "shop", 1000, 400, 0, 6000, 7000),
                   (SID, "claude-sonnet-4-5", "shop", 500, 250, 6000, 800, 7300),
                   (SID, "gpt-4.1", "shop", 3000, 120, 0, 0, 3000)]
    assert c.stats.malformed == 1  # the torn response line
    r = run_json("--path", OCR)  # the whole folder: raw/'s capture is claimed but holds no session records
    assert r["sources"] == ["opencodereview"]
    assert r["totals"]["cost_usd"] == pytest.approx(R1 + R2 + R3, abs=1e-12)


def test_locations_raw_captures_not_read_and_copy_counts_once(isolated_env, monkeypatch, tmp_path):
    assert opencodereview.default_paths() == []
    shutil.copytree(OCR, isolated_env / ".opencodereview")
    assert opencodereview.default_paths() == [isolated_env / ".opencodereview" / "sessions"]
    c = collect(("opencodereview",))
    files = opencodereview.find_files(opencodereview.default_paths())
    assert len(c.events) == 3 and [p.name for p in files] == [f"{SID}.jsonl"]  # not raw/'s capture
    copy = isolated_env / ".opencodereview" / "sessions" / "home-ana-src-shop-copy"
    shutil.copytree(isolated_env / ".opencodereview" / "sessions" / "home-ana-src-shop", copy)
    c = collect(("opencodereview",))
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 3
    monkeypatch.setenv("OPENCODEREVIEW_DIR", str(tmp_path))
    assert opencodereview.default_paths() == [tmp_path]


def test_cache_above_prompt_read_as_disjoint(tmp_path):
    d = tmp_path / ".opencodereview" / "sessions" / "r"
    d.mkdir(parents=True)
    (d / "s.jsonl").write_text('{"type":"llm_response","uuid":"u1","sessionId":"s","timestamp":"2026-11-21T08:00:00Z",'
                               '"model":"gpt-4.1","usage":{"prompt_tokens":100,"completion_tokens":10,'
                               '"cache_read_tokens":400,"cache_write_tokens":0}}\n')
    c = collect(("opencodereview",), [tmp_path / ".opencodereview"])
    assert [(e.tokens.input, e.tokens.cache_read) for e in c.events] == [(100, 400)]
    assert c.stats.skipped["opencodereview_cache_outside_prompt"] == 1
