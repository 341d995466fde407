"""Copilot CLI's OTel file export: per-call chat spans (invoke_agent totals never read), and the session log's
shutdown total dropped for a run whose calls the spans hold, so nothing counts twice."""
import shutil

import pytest

import test_sources_copilot as logs
from conftest import FIXTURES
from nomira.sources import copilot
from nomira.sources.registry import collect

OTEL = FIXTURES / "copilot_otel" / ".copilot" / "otel"
SID = "5fedbe45-b06c-46ff-97b7-11f1f699020f"
# claude-sonnet-4.5: 3 / 15 / 0.30 read / 3.75 write; gpt-4.1: 2 / 8 / 0.50 read (bundled). Input less reads and writes.
C1 = (1000 * 3 + 1200 * 15 + 24000 * 0.30 + 5000 * 3.75) / 1e6
C2 = (4000 * 3 + 800 * 15 + 16000 * 0.30) / 1e6
G = (2000 * 2 + 200 * 8 + 1000 * 0.50) / 1e6


def home_with_both(home):
    shutil.copytree(logs.CP / "session-state", home / ".copilot" / "session-state")
    shutil.copytree(OTEL, home / ".copilot" / "otel")
    return home / ".copilot"


def test_spans_alone_by_hand():
    c = collect(("copilot",), [OTEL])
    got = [(e.session_id[:8], e.model, e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write_5m,
            e.tokens.reasoning, e.aggregated) for e in c.events]
    assert got == [("5fedbe45", "claude-sonnet-4.5", 1000, 1200, 24000, 5000, 100, False),
                   ("5fedbe45", "claude-sonnet-4.5", 4000, 800, 16000, 0, 0, False),
                   ("0c0ffee0", "gpt-4.1", 2000, 200, 1000, 0, 0, False)]
    assert c.stats.malformed == 1  # the torn last span


def test_shutdown_total_of_a_run_with_spans_is_dropped(isolated_env, run_json):
    home_with_both(isolated_env)
    assert copilot.default_paths() == [isolated_env / ".copilot" / "session-state", isolated_env / ".copilot" / "otel"]
    c = collect(("copilot",))
    got = sorted((e.model, e.tokens.input, e.tokens.output, e.aggregated) for e in c.events)
    # run 1's claude total (50000 in incl. 40000 read + 5000 write, 2000 out) is the two spans' sum: spans kept;
    # run 1's gpt-5-mini total (no spans) and run 2's claude total (no spans in that run) stay.
    assert got == [("claude-sonnet-4.5", 1000, 1200, False), ("claude-sonnet-4.5", 4000, 800, False),
                   ("claude-sonnet-4.5", 4000, 1000, True), ("gpt-4.1", 2000, 200, False),
                   ("gpt-5-mini", 2000, 1000, True)]
    assert c.stats.skipped["copilot_shutdown_covered_by_otel"] == 1
    r = run_json("--source", "copilot")
    assert r["totals"]["cost_usd"] == pytest.approx(C1 + C2 + G + logs.M1 + logs.S2, abs=1e-12)
    assert r["totals"]["cost_usd"] < C1 + C2 + G + logs.S1 + logs.M1 + logs.S2  # not counted twice


def test_copied_export_counts_once_and_exporter_path(isolated_env, monkeypatch, tmp_path):
    copied = tmp_path / "copilot-otel.jsonl"
    shutil.copy(OTEL / "copilot-otel.jsonl", copied)
    monkeypatch.setenv("COPILOT_OTEL_FILE_EXPORTER_PATH", str(copied))
    assert copilot.default_paths() == [copied]
    home_with_both(isolated_env)
    c = collect(("copilot",))
    assert len(c.events) == 5 and c.stats.skipped["duplicate_call"] == 3  # the exported copy's three spans
    assert c.stats.skipped["copilot_shutdown_covered_by_otel"] == 1


def test_cache_write_beside_input_never_negative(tmp_path):
    d = tmp_path / ".copilot" / "otel"
    d.mkdir(parents=True)
    (d / "x.jsonl").write_text('{"type":"span","traceId":"t","spanId":"s","name":"chat gpt-4.1","endTime":[1762437600,0],'
                               '"attributes":{"gen_ai.operation.name":"chat","gen_ai.response.model":"gpt-4.1",'
                               '"gen_ai.usage.input_tokens":100,"gen_ai.usage.output_tokens":5,'
                               '"gen_ai.usage.cache_read.input_tokens":90,"gen_ai.usage.cache_write.input_tokens":20}}\n')
    c = collect(("copilot",), [d])
    assert [(e.tokens.input, e.tokens.cache_read, e.tokens.cache_write_5m) for e in c.events] == [(10, 90, 20)]
    assert c.stats.skipped["copilot_otel_cache_outside_input"] == 1
