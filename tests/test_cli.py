"""End to end: `nomira --json --path fixtures` totals checked against hand arithmetic."""
import pytest

from conftest import FIXTURES
from nomira.cli import main

# Hand-computed per call (USD per MTok rates in test_pricing.py's docstring; Opus 4.7 in 5 / out 25 /
# read 0.5; Haiku 4.5 in 1 / out 5 / 5m write 1.25):
A1 = (4 * 3 + 300 * 15 + 1000 * 3.75) / 1e6        # 0.008262
A2 = (10 * 3 + 500 * 15 + 1000 * 0.3 + 2000 * 6) / 1e6  # 0.019830
B1 = (100 * 5 + 1000 * 25 + 5000 * 0.5) / 1e6      # 0.028
S1 = (50 * 1 + 200 * 5 + 300 * 1.25) / 1e6          # 0.001425
CX = ((200 * 1.25 + 800 * 0.125 + 100 * 10) + (800 * 1.25 + 1200 * 0.125 + 200 * 10)
      + (400 * 1.25 + 100 * 0.125 + 50 * 10)) / 1e6  # 0.0055125
CX_FALLBACK = (4000 * 1.25 + 400 * 10) / 1e6        # 0.009


def test_claude_totals(run_json):
    r = run_json("--path", FIXTURES / "claude")
    t = r["totals"]
    assert t["cost_usd"] == pytest.approx(A1 + A2 + B1 + S1, abs=1e-12)
    assert t["cost_by_type_usd"]["cache_write_1h"] == pytest.approx(2000 * 6 / 1e6)
    assert t["cost_by_type_usd"]["cache_write_5m"] == pytest.approx((1000 * 3.75 + 300 * 1.25) / 1e6)
    assert t["tokens"] == {"input": 264, "output": 2100, "cache_read": 6000, "cache_write_5m": 1300,
                           "cache_write_1h": 2000, "reasoning": 0, "total": 11664}
    assert t["calls"] == 5 and t["unpriced_calls"] == 1
    assert t["sidechain_cost_usd"] == pytest.approx(S1)
    assert r["regime"] == "subscription" and r["value_label"] == "API-equivalent value"
    unpriced = [m for m in r["models"] if not m["priced"]]
    assert [(m["model"], m["tokens"]["total"]) for m in unpriced] == [("claude-opus-9-9", 200)]
    assert r["scan"]["malformed_lines"] == 1


def test_codex_totals(run_json):
    r = run_json("--path", FIXTURES / "codex")
    assert r["totals"]["cost_usd"] == pytest.approx(CX + CX_FALLBACK, abs=1e-12)
    assumed = [m for m in r["models"] if m["model_assumed"]]
    assert [m["model"] for m in assumed] == ["gpt-5"] and assumed[0]["model_assumed_calls"] >= 1
    assert r["allowance"]["primary_used_percent"] == 25.0
    # the period reports say it too: in each row and its models, and under the table
    days = run_json("daily", "--path", FIXTURES / "codex")["daily"]
    assert sum(d["model_assumed_calls"] for d in days) == assumed[0]["model_assumed_calls"]
    assert {m["model"] for d in days for m in d["models"] if m["model_assumed_calls"]} == {"gpt-5"}


def test_sessions_and_models_carry_rate_source(run_json):
    r = run_json("--path", FIXTURES / "claude", "--path", FIXTURES / "codex")
    assert r["totals"]["cost_usd"] == pytest.approx(A1 + A2 + B1 + S1 + CX + CX_FALLBACK, abs=1e-12)
    sessions = {s["session_id"]: s for s in r["sessions"]}
    assert sessions["3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"]["cost_usd"] == pytest.approx(A1 + A2 + S1)
    sonnet = [m for m in r["models"] if m["model"] == "claude-sonnet-4-5-20250929"][0]
    assert sonnet["rate_source"].startswith("bundled:") and sonnet["verified"]


def test_naive_cache_blind_figure(run_json):
    r = run_json("--path", FIXTURES / "codex")
    # a cache-blind tool prices the whole logged input at the input rate
    naive = ((1000 + 2000 + 500) * 1.25 + (100 + 200 + 50) * 10 + 4000 * 1.25 + 400 * 10) / 1e6
    assert r["totals"]["naive_cost_usd"] == pytest.approx(naive)


def test_api_regime_label(run_json):
    r = run_json("--path", FIXTURES / "codex", "--regime", "api")
    assert r["value_label"] == "cost"


def test_text_report_and_no_color(capsys):
    assert main(["--path", str(FIXTURES / "claude")]) == 0
    out = capsys.readouterr().out
    assert "API-equivalent value" in out and "\033[" not in out
    assert "claude-opus-9-9" in out and "UNPRICED" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Session"))
    assert lines[header].split() == ["Session", "Project", "Calls", "Tokens", "Value", "Cache", "share"]
    assert lines[header + 1].split()[:3] == ["3f9a6c2e", "shop", "4"]  # rows stay rows


def test_missing_path_is_a_clear_error(capsys, tmp_path):
    assert main(["--path", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("nomira: no such file")


def test_no_logs_found(capsys):
    """One short line: where the three main agents are looked for, the sixty others in one clause."""
    assert main([]) == 0
    err = capsys.readouterr().err
    assert "no usage found" in err and err.count("\n") == 1 and len(err) < 400, err
    assert "Claude Code: no folder ($CLAUDE_CONFIG_DIR" in err and "other agents: no folder (`nomira sources`" in err
    assert main(["--source", "gemini"]) == 0
    assert "Gemini CLI: no folder" in capsys.readouterr().err


def test_demo_runs(run_json):
    r = run_json("--demo")
    assert r["totals"]["calls"] > 50 and r["totals"]["cost_usd"] > 0
    assert set(r["sources"]) == {"claude_code", "codex"}


def test_demo_logs_end_when_their_last_line_does(tmp_path):
    """Each demo log's mtime is its last call's time (as the agent that wrote it would leave it), so what
    picks files by mtime (the status line's today) reads the demo as of its pinned end, on any day."""
    import json
    import os
    from datetime import datetime, timezone

    from nomira.demo import write_demo
    end = datetime(2026, 12, 4, 15, 0, tzinfo=timezone.utc)
    root = write_demo(tmp_path / "demo", now=end)
    logs = sorted(root.rglob("*.jsonl"))
    assert len(logs) > 10 and any("subagents" in str(p) for p in logs) and any("rollout-" in p.name for p in logs)
    for path in logs:
        last = json.loads(path.read_text().splitlines()[-1])["timestamp"]
        assert abs(os.stat(path).st_mtime - datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp()) < 1e-3, path
        assert os.stat(path).st_mtime <= end.timestamp()
