"""Options do what they say, or are refused: none is silently ignored."""
import pytest

from conftest import FIXTURES
from nomira.cli import main
from test_errors import nomira, one_line

BOTH = ["--path", FIXTURES / "claude", "--path", FIXTURES / "codex"]


def test_plan_price_prices_only_the_plan_it_follows(capsys):
    assert main(["monthly", *map(str, BOTH), "--plan", "claude-pro", "--plan-price", "17"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the note wraps to the width
    assert "Claude Pro $17/mo" in out and "ChatGPT Plus $20/mo" in out


def test_plan_price_without_its_plan_is_refused():
    one_line(nomira("monthly", *BOTH, "--plan-price", "17"), 2, "--plan-price", "--plan")


def test_plan_price_json(run_json):
    r = run_json("monthly", *BOTH, "--plan", "chatgpt-pro", "--plan-price", "150")
    plans = {src: v["plan_usd"] for row in r["monthly"] for src, v in row["value_vs_plan"].items()}
    assert plans == {"claude_code": 200.0, "codex": 150.0}


def test_by_project_alone_compares_projects(run_json):
    assert run_json("--by-project", *BOTH) == run_json("--compare", "--by-project", *BOTH)


def test_blocks_breakdown_lists_each_model(run_json, capsys):
    r = run_json("blocks", "--breakdown", *BOTH)
    for b in r["blocks"]:
        assert sorted(m["model"] for m in b["breakdown"]) == b["models"]
        assert sum(m["cost_usd"] for m in b["breakdown"]) == pytest.approx(b["cost_usd"])
    assert main(["blocks", "--breakdown", *map(str, BOTH)]) == 0
    assert "└ claude-opus-4-7" in capsys.readouterr().out


def test_terms_are_consistent(capsys, run_json):
    """Value on a subscription, Cost on API billing, in every table; the two cache figures named apart."""
    for argv, word in ((["--path", FIXTURES / "claude"], "Value"), (["--path", FIXTURES / "claude", "--regime", "api"],
                                                                   "Cost")):
        for cmd in (["report"], ["optimize"], ["forensics", "--session", "3f9a6c2e"]):
            assert main([*cmd, *map(str, argv)]) == 0
            out = capsys.readouterr().out
            headers = [line.split() for line in out.splitlines() if line.startswith(("Session", "Tool", "Time"))]
            assert headers and all(word in h and ({"Value", "Cost"} - {word}).isdisjoint(h) for h in headers), \
                (cmd, word, headers)
    assert main(["--path", str(FIXTURES / "claude")]) == 0
    assert "Cache share" in capsys.readouterr().out
    assert main(["--compare", "--path", str(FIXTURES / "claude")]) == 0
    out = capsys.readouterr().out
    assert "Cache reuse" in out and "Cache share" not in out


def test_session_ids_have_one_length_everywhere(capsys):
    from nomira.reports.render import short_id
    sid = "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"
    for cmd in (["report"], ["session"], ["report", "--compare"], ["optimize"]):
        assert main([*cmd, "--path", str(FIXTURES / "claude")]) == 0
        out = capsys.readouterr().out
        assert f"{sid[:8]} " in out and sid[:9] not in out, cmd
    # Codex ids are UUIDv7: their first 8 characters are a timestamp shared by nearby sessions
    assert short_id("0199a3b2-7c4d-7e10-9f21-3a4b5c6d7e8f") != short_id("0199a3b2-7c4d-7e10-9f21-000000000002")
    assert main(["forensics", "--session", short_id("0199a3b2-7c4d-7e10-9f21-3a4b5c6d7e8f"),
                 "--path", str(FIXTURES / "codex")]) == 0


def test_codex_allowance_says_how_old_it_is(capsys, monkeypatch):
    from datetime import datetime, timezone

    from nomira.reports import text
    now = datetime(2026, 12, 2, 15, 0, tzinfo=timezone.utc)
    assert text.age("2026-12-02T12:00:00Z", now) == "3 h ago"
    assert text.age("2026-12-02T14:55:00Z", now) == "5 min ago"
    assert text.age("2026-11-28T15:00:00Z", now) == "4 days ago"
    assert main(["--path", str(FIXTURES / "codex")]) == 0
    assert "Codex allowance as of " in capsys.readouterr().out
    for mark in ("first", "second"):  # the second run must not replay a cached, stale age
        monkeypatch.setattr(text, "age", lambda as_of, now=None, mark=mark: mark)
        assert main(["--path", str(FIXTURES / "codex")]) == 0
        assert f"Codex allowance as of {mark}:" in capsys.readouterr().out


def test_options_that_cannot_apply_together_are_refused():
    one_line(nomira("monthly", *BOTH, "--plan", "claude-pro", "--regime", "api"), 2, "--plan", "--regime api")
    one_line(nomira("forensics", *BOTH, "--session", "3f9a6c2e", "--top", "3"), 2, "--top", "--session")
