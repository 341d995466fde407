"""Visual Studio Copilot OTel traces: one call per chat span, the fullest of its flushes across rotated files."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import visualstudio_copilot as vs
from nomira.sources.registry import collect

VS = FIXTURES / "visualstudio_copilot"

# gpt-4.1: 2 / 8; claude-sonnet-4.5: 3 / 15 (per MTok); no cache split logged; copilot-nes-xtab unpriced.
GPT = (18250 * 2 + 412 * 8) / 1e6
SONNET = (21900 * 3 + 1350 * 15) / 1e6


def test_by_hand_chat_spans_fullest_flush(run_json):
    c = collect(("visualstudio_copilot",), [VS])
    got = sorted((e.occurred_at.isoformat(), e.session_id[:8], e.model, e.tokens.input, e.tokens.output)
                 for e in c.events)
    assert got == [("2025-11-08T09:00:08+00:00", "4a8f63f6", "gpt-4.1", 18250, 412),  # the later, complete flush
                   ("2025-11-08T09:00:20+00:00", "4a8f63f6", "claude-sonnet-4.5", 21900, 1350),
                   ("2025-11-08T09:15:02+00:00", "7b1d2e30", "copilot-nes-xtab", 3100, 90)]
    assert c.stats.skipped["duplicate_call"] == 1  # the partial flush of the first chat span
    assert c.stats.malformed == 1  # a line cut off mid-span
    r = run_json("--path", VS)
    assert r["sources"] == ["visualstudio_copilot"] and r["totals"]["calls"] == 3
    assert r["totals"]["cost_usd"] == pytest.approx(GPT + SONNET, abs=1e-12)
    assert [m["model"] for m in r["models"] if not m["priced"]] == ["copilot-nes-xtab"]
    assert r["regime"] == "subscription"


def test_default_locations_and_override(isolated_env, tmp_path, monkeypatch):
    assert vs.default_paths() == []
    shutil.copytree(VS / "traces", isolated_env / ".cache" / "VSGitHubCopilotLogs" / "traces")
    assert vs.default_paths() == [isolated_env / ".cache" / "VSGitHubCopilotLogs" / "traces"]
    shutil.copytree(VS / "traces", tmp_path / "local" / "Temp" / "VSGitHubCopilotLogs" / "traces")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))  # Windows
    assert len(vs.default_paths()) == 2
    assert len(collect(("visualstudio_copilot",)).events) == 3  # the same spans in both count once
    monkeypatch.setenv("VISUALSTUDIO_COPILOT_DIR", str(tmp_path / "none"))
    assert vs.default_paths() == []


def test_only_trace_files_are_claimed():
    assert vs.claims("20251108T090000_b45c44b2_VSGitHubCopilot_traces.jsonl", "/x/traces")
    assert not vs.claims("rollout-2025.jsonl", "/x/traces")
