"""Tables use the terminal's width and never clip a model name, a plan name or a flag."""
import json
import re

import pytest

from conftest import FIXTURES
from nomira.cli import main
from nomira.demo import write_demo
from nomira.reports.render import short_model, table

WIDTHS = (60, 80, 120, 200)
COMMANDS = (["report"], ["monthly", "--breakdown"], ["session", "--breakdown"], ["blocks", "--breakdown"],
            ["daily", "--breakdown"], ["forensics"], ["optimize"], ["report", "--compare"])


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    root = tmp_path_factory.mktemp("hist")
    write_demo(root / "demo")
    return ["--path", str(root / "demo"), "--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "codex"),
            "--path", str(FIXTURES / "opencode"), "--path", str(FIXTURES / "claude_tools")]


def _run(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def _models(capsys, history) -> set[str]:
    return {m["model"] for m in json.loads(_run(capsys, ["--json", *history]))["models"]}


@pytest.mark.parametrize("width", WIDTHS)
def test_every_table_fits_the_width_and_clips_nothing(width, history, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    models = _models(capsys, history)
    for cmd in COMMANDS:
        out = _run(capsys, [*cmd, "--no-cache", *history])
        lines = out.splitlines()
        assert max(map(len, lines)) <= width, (cmd, width, max(lines, key=len))
        assert not re.search(r"\S…", out), cmd  # nothing clipped (a lone "… 3 more sessions" is fine)
        if cmd == ["report"]:
            assert "(assumed)" in out  # flags are whole words, never cut
        if width >= 80 and cmd == ["report"]:
            for m in models:
                assert any(short_model(m) in line or m in line for line in lines), (m, width)
        if cmd[0] == "monthly" and width >= 80:
            for m in models:  # from 80 columns on, a name never wraps
                assert any(short_model(m) in line or m in line for line in lines), (m, width)
    if width >= 120:  # wide enough for every column: nothing left out
        assert "left out" not in _run(capsys, ["monthly", "--breakdown", *history])


def test_wide_and_columns_are_honoured(history, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    narrow = _run(capsys, ["monthly", "--breakdown", *history])
    wide = _run(capsys, ["monthly", "--breakdown", "--wide", *history])
    assert max(map(len, narrow.splitlines())) <= 60 < max(map(len, wide.splitlines()))
    assert "claude-sonnet-4-5-20250929" in wide and "Cache W" in wide and "Cache W" not in narrow.split("(")[0]


def test_date_suffixes_go_before_anything_wraps():
    rows = [["claude-sonnet-4-5-20250929", "$1.00"], ["gpt-5-1-codex-2025-11-13", "$2.00"]]
    out = table(["Model", "Cost"], rows, "lr", max_width=24, shorten=(0,))
    assert out.splitlines()[1].split() == ["claude-sonnet-4-5", "$1.00"]
    assert out.splitlines()[2].split() == ["gpt-5-1-codex", "$2.00"]
    # two names that would then read the same keep their dates
    both = table(["Model", "Cost"], [["claude-haiku-4-5-20251001", "$1"], ["claude-haiku-4-5", "$2"]], "lr",
                 max_width=24, shorten=(0,))
    assert "20251001" in both.replace("\n", "").replace(" ", "")


def test_not_a_terminal_means_80(history):
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "-m", "nomira", "monthly", "--breakdown", "--no-cache", *history],
                         cwd=root, env=dict(env, PYTHONPATH=str(root)), capture_output=True, text=True).stdout
    assert 70 < max(map(len, out.splitlines())) <= 80


def test_wrapped_cells_keep_every_character():
    from nomira.reports.render import _wrap
    cells = ["  └ claude-sonnet-4-5-20250929", "0.8x Claude · 3.1x ChatGPT", "bundled:2026-11-24 (unverified)",
             "claude-haiku-4-5, claude-opus-4-7, gpt-5-codex", "gpt-5 (assumed)", "x" * 40]
    for cell in cells:
        for width in range(10, 45):
            pieces = _wrap(cell, width)
            assert all(len(p) <= width for p in pieces), (cell, width, pieces)
            assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", cell), (cell, width, pieces)
