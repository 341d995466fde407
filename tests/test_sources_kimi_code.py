"""Kimi Code: Kimi CLI's wire format under ~/.kimi-code, its own source name; copies count once."""
import shutil

import pytest

import test_sources_kimi as kimi_test
from conftest import FIXTURES
from nomira.sources import kimi_code
from nomira.sources.registry import collect


def test_same_calls_as_kimi_cli_under_its_own_name(isolated_env, run_json, tmp_path):
    shutil.copytree(FIXTURES / "kimi" / ".kimi", isolated_env / ".kimi-code")
    assert kimi_code.default_paths() == [isolated_env / ".kimi-code" / "sessions"]
    mine = collect(("kimi_code",))
    theirs = collect(("kimi",), [FIXTURES / "kimi"])
    assert {e.source for e in mine.events} == {"kimi_code"}
    assert [(e.model, e.project, e.tokens) for e in mine.events] == [(e.model, e.project, e.tokens)
                                                                       for e in theirs.events]
    assert mine.stats.malformed == theirs.stats.malformed
    r = run_json("--source", "kimi_code")
    assert r["totals"]["cost_usd"] == pytest.approx(kimi_test.C1 + kimi_test.C2, abs=1e-12)
    assert r["regime"] == "subscription"
    shutil.copytree(isolated_env / ".kimi-code", tmp_path / "copy")
    roots = [isolated_env / ".kimi-code" / "sessions", tmp_path / "copy" / "sessions"]
    c = collect(("kimi_code",), found={"kimi_code": kimi_code.find_files(roots)})
    assert len(c.events) == len(mine.events) and c.stats.skipped["duplicate_call"] >= len(mine.events)


def test_kimi_work_desktop_runtime_home(isolated_env, run_json, monkeypatch, tmp_path):
    from nomira.sources import kimi_work
    assert kimi_work.default_paths() == []
    home = isolated_env / ".config" / "kimi-desktop" / "daimon-share" / "daimon" / "runtime" / "kimi-code" / "home"
    shutil.copytree(FIXTURES / "kimi" / ".kimi", home)
    assert kimi_work.default_paths() == [home / "sessions"]
    mine = collect(("kimi_work",))
    theirs = collect(("kimi",), [FIXTURES / "kimi"])
    assert {e.source for e in mine.events} == {"kimi_work"}
    assert [(e.model, e.project, e.tokens) for e in mine.events] == [(e.model, e.project, e.tokens)
                                                                       for e in theirs.events]
    assert mine.stats.malformed == theirs.stats.malformed >= 1
    assert mine.stats.skipped.get("duplicate_call") == theirs.stats.skipped.get("duplicate_call")
    r = run_json("--source", "kimi_work")
    assert r["totals"]["cost_usd"] == pytest.approx(kimi_test.C1 + kimi_test.C2, abs=1e-12)
    assert r["regime"] == "subscription"
    monkeypatch.setenv("KIMI_WORK_DIR", str(tmp_path))
    assert kimi_work.default_paths() == [tmp_path]
