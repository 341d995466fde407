"""VS Code Copilot Chat sessions: per-request promptTokens/outputTokens from `.json` snapshots and replayed
`.jsonl` operation logs; the `.json` and `.jsonl` copies of one session count once; unknown models unpriced."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import vscode_copilot
from nomira.sources.registry import classify, collect

VS = FIXTURES / "vscode_copilot" / "Code" / "User"
# gpt-4.1: 2 / 8 per M; claude-sonnet-4-5: 3 / 15 (no cache split logged: the whole prompt at the input rate)
GPT = (12000 * 2 + 800 * 8 + 5000 * 2 + 300 * 8) / 1e6
SONNET = (20000 * 3 + 1500 * 15) / 1e6


def test_by_hand(run_json):
    c = collect(("vscode_copilot",), [VS])
    got = [(e.session_id[:8], e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read) for e in c.events]
    assert got == [("0b6c7f1e", "gpt-4.1", "shop api", 12000, 800, 0),
                   ("0b6c7f1e", "claude-sonnet-4.5", "shop api", 20000, 1500, 0),
                   ("7e2d9a40", "gpt-4.1", "shop api", 5000, 300, 0),  # pushed, then its result set
                   ("7e2d9a40", "oswe-vscode-prime", "shop api", 4000, 200, 0)]
    assert c.stats.malformed == 1  # the truncated operation line, skipped
    assert c.stats.skipped["duplicate_call"] == 1  # the session's older .json snapshot
    assert c.stats.skipped["no_token_data:vscode_copilot"] == 1  # the empty-window chat of an older build
    r = run_json("--path", VS)
    assert r["sources"] == ["vscode_copilot"]
    assert r["totals"]["cost_usd"] == pytest.approx(GPT + SONNET, abs=1e-12)
    unpriced = [m["model"] for m in r["models"] if not m["priced"]]
    assert unpriced == ["oswe-vscode-prime"]


def test_replay_splice_and_delete(tmp_path):
    state = {"requests": [1, 2, 3], "customTitle": "x"}
    vscode_copilot._apply(state, {"kind": 2, "k": ["requests"], "v": [9], "i": 1})
    vscode_copilot._apply(state, {"kind": 3, "k": ["customTitle"]})
    vscode_copilot._apply(state, {"kind": 1, "k": ["requests", 7, "result"], "v": {}})  # out of range: ignored
    assert state == {"requests": [1, 9, 3]}


def test_default_locations_override_and_copy_once(isolated_env, monkeypatch, tmp_path):
    assert vscode_copilot.default_paths() == []
    user = isolated_env / ".config" / "Code" / "User"
    shutil.copytree(VS, user)
    assert vscode_copilot.default_paths() == [user / "workspaceStorage", user / "globalStorage" / "emptyWindowChatSessions"]
    assert len(collect(("vscode_copilot",)).events) == 4
    shutil.copytree(VS, tmp_path / "backup")
    monkeypatch.setenv("VSCODE_COPILOT_DIR", f"{user},{tmp_path / 'backup'}")
    c = collect(("vscode_copilot",))
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 1 + 5
    files = vscode_copilot.find_files([user / "workspaceStorage"])
    assert len(files) == 3 and set(classify(files)["vscode_copilot"]) == set(files)
