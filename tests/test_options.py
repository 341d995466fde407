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
