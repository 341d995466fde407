"""Command Code v3 session files: per-call usage on assistant message entries, input including the cache reads and
writes, Command Code's own cost estimate beside; a fork's copied entries count once; sidecar logs are not sessions."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import commandcode
from nomira.sources.registry import collect

CC = FIXTURES / "commandcode" / ".commandcode"
S1 = "0199f7a2-1c3d-7e4f-8a9b-0c1d2e3f4a5b"
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write; gpt-5: 1.25 / 10 / 0.125 read (bundled table).
# Uncached input = inputTokens - cacheReadTokens - cacheWriteTokens; the 1h writes at the 5m rate.
C1 = ((15000 - 12000 - 2500) * 3 + 420 * 15 + 12000 * 0.30 + 2500 * 3.75) / 1e6
C2 = ((9000 - 6000) * 1.25 + 800 * 10 + 6000 * 0.125) / 1e6
C3 = ((21000 - 14000 - 6000) * 3 + 300 * 15 + 14000 * 0.30 + 6000 * 3.75) / 1e6


def test_totals_by_hand(run_json, tmp_path):
    shutil.copytree(CC, tmp_path / ".commandcode")
    c = collect(("commandcode",), [tmp_path / ".commandcode"])
    got = [(e.session_id[-4:], e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write, e.tokens.reported_input, e.agent_cost_usd) for e in c.events]
    assert got == [("4a5b", "claude-sonnet-4-5", "shop", 500, 420, 12000, 2500, 15000, pytest.approx(0.020775)),
                   ("4a5b", "gpt-5", "shop", 3000, 800, 6000, 0, 9000, None),
                   ("5c6d", "claude-sonnet-4-5", "shop", 1000, 300, 14000, 6000, 21000, None)]
    assert c.stats.skipped["duplicate_call"] == 1  # the fork's copy of the first call
    assert c.stats.malformed == 1  # the cut entry
    r = run_json("--path", tmp_path / ".commandcode")  # classified by its folder
    assert r["sources"] == ["commandcode"] and r["totals"]["calls"] == 3
    assert r["totals"]["cost_usd"] == pytest.approx(C1 + C2 + C3, abs=1e-12)
    assert C1 == pytest.approx(0.020775)  # the computed cost equals Command Code's own estimate for that call


def test_default_location_override_and_sidecars(isolated_env, monkeypatch, tmp_path):
    assert commandcode.default_paths() == []
    shutil.copytree(CC / "projects", isolated_env / ".commandcode" / "projects")
    assert commandcode.default_paths() == [isolated_env / ".commandcode" / "projects"]
    sessions = isolated_env / ".commandcode" / "projects" / "home-dev-shop"
    (sessions / f"{S1}.prompts.jsonl").write_text("")  # sidecars beside a session are not sessions
    (sessions / f"{S1}.checkpoints.jsonl").write_text("")
    assert sorted(p.name for p in commandcode.find_files(commandcode.default_paths())) == [
        f"{S1}.jsonl", "0199f7b8-5e6f-7a8b-9c0d-1e2f3a4b5c6d.jsonl"]
    assert len(collect(("commandcode",)).events) == 3
    monkeypatch.setenv("COMMANDCODE_PROJECTS_DIR", str(tmp_path))
    assert commandcode.default_paths() == [tmp_path]


def test_appended_entries_resume_with_the_sessions_model_and_cwd(tmp_path):
    src = CC / "projects" / "home-dev-shop" / f"{S1}.jsonl"
    data = src.read_bytes()
    cut = data.index(b'{"type":"message","id":"a7b8c9d0"')
    live = tmp_path / ".commandcode" / "projects" / "p" / src.name
    live.parent.mkdir(parents=True)
    live.write_bytes(data[:cut])
    recs, state, end, _ = commandcode.scan_file(live)
    live.write_bytes(data)
    more, _state, _end, _ = commandcode.scan_file(live, end, state)
    assert recs + more == commandcode.scan_file(src)[0] and len(more) == 1
