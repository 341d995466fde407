"""Branch and worktree attribution: Claude Code's `gitBranch` as the `branch` tag, `--merge-worktrees`
folding linked git worktrees into their repository's label, and `report --by branch`."""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nomira.ledger import wire
from nomira.sources.project import main_checkout

ROOT = Path(__file__).resolve().parent.parent


def line(cwd, session, branch, n, inp, out):
    """One assistant line in Claude Code's transcript format (docs: /work/shared/FORMATS.md)."""
    return json.dumps(separators=(",", ":"), obj={
        "parentUuid": f"p{n}", "isSidechain": False, "userType": "external", "cwd": cwd, "sessionId": session,
        "version": "2.0.37", "gitBranch": branch, "type": "assistant", "uuid": f"u{n}",
        "timestamp": f"2025-11-03T14:2{n}:07.913Z", "requestId": f"req_{session[:4]}{n}",
        "message": {"id": f"msg_{session[:4]}{n}", "type": "message", "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "Done."}],
                    "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": inp, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                              "output_tokens": out, "service_tier": "standard"}}})  # compact, as written


@pytest.fixture
def history(tmp_path):
    """A repository with a linked worktree (git's own layout), and one session in each."""
    main = tmp_path / "src" / "shop"
    (main / ".git" / "worktrees" / "shop-login").mkdir(parents=True)
    tree = tmp_path / "wt" / "shop-login"
    (tree / "web").mkdir(parents=True)
    (tree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'shop-login'}\n")
    logs = tmp_path / "claude" / "projects"
    for cwd, session, branch, calls in ((main, "aaaa1111-0000-4000-8000-000000000001", "main", [(1000, 100)]),
                                        (tree, "bbbb2222-0000-4000-8000-000000000002", "feature/login",
                                         [(2000, 200), (3000, 300)])):
        folder = logs / str(cwd).replace("/", "-")
        folder.mkdir(parents=True)
        (folder / f"{session}.jsonl").write_text(
            "".join(line(str(cwd), session, branch, n, i, o) + "\n" for n, (i, o) in enumerate(calls)))
    return tmp_path


def nomira(*argv, env_home):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(env_home / "cache"),
           "XDG_STATE_HOME": str(env_home / "state"), "XDG_CONFIG_HOME": str(env_home / "config"),
           "XDG_DATA_HOME": str(env_home / "data")}
    r = subprocess.run([sys.executable, "-m", "nomira", *argv], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_main_checkout_reads_the_worktree_gitdir(history):
    main, tree = history / "src" / "shop", history / "wt" / "shop-login"
    assert main_checkout(str(tree / "web")) == str(main / "web")
    assert main_checkout(str(tree)) == str(main)
    assert main_checkout(str(main)) is None  # the main checkout itself
    assert main_checkout(str(history / "nowhere")) is None


def test_merge_worktrees_and_by_branch(history):
    logs = str(history / "claude")
    plain = json.loads(nomira("report", "--by-project", "--json", "--path", logs, env_home=history))
    assert {r["name"]: r["calls"] for r in plain["rows"]} == {"shop": 1, "shop-login": 2}
    merged = json.loads(nomira("report", "--by", "project", "--json", "--merge-worktrees", "--path", logs,
                               env_home=history))
    assert {r["name"]: r["calls"] for r in merged["rows"]} == {"shop": 3}
    # the same labels on the wire: only the label leaves the machine
    db = history / "merged.db"
    nomira("ship", "--db", str(db), "--developer", "ana", "--merge-worktrees", "--path", logs, env_home=history)
    assert sqlite3.connect(db).execute("SELECT DISTINCT project FROM events").fetchall() == [("shop",)]


def test_by_branch_and_branch_tag_on_the_wire(history):
    logs = str(history / "claude")
    doc = json.loads(nomira("report", "--by", "branch", "--json", "--path", logs, env_home=history))
    assert doc["compare"] == "branch"
    rows = {r["name"]: r for r in doc["rows"]}
    assert {k: r["calls"] for k, r in rows.items()} == {"main": 1, "feature/login": 2}
    # $3/M input, $15/M output (claude-sonnet-4-5, bundled table)
    assert rows["feature/login"]["cost_usd"] == pytest.approx((5000 * 3 + 500 * 15) / 1e6)
    db = history / "team.db"
    nomira("ship", "--db", str(db), "--developer", "ana", "--path", logs, env_home=history)
    con = sqlite3.connect(db)
    assert sorted(con.execute("SELECT branch, COUNT(*) FROM events GROUP BY branch")) == [
        ("feature/login", 2), ("main", 1)]
    body = json.loads(con.execute("SELECT body FROM raw_events LIMIT 1").fetchone()[0])
    assert str(history) not in json.dumps(body)  # the worktree's paths never leave the machine


@pytest.mark.parametrize("bad", ["/home/ana/shop", "../x", "home/ana/x", ".hidden", "a//b", "notes.pdf",
                                 "x" * 200, "sk-ant-api03-" + "A" * 40])
def test_branch_tag_refuses_paths_and_content(bad):
    with pytest.raises(wire.SchemaError):
        wire.check_tags({"branch": bad})


def test_branch_tag_accepts_git_ref_names():
    for ok in ("main", "feature/login", "release/1.2.3", "renovate/npm-react-18.x", "user+fix"):
        wire.check_tags({"branch": ok})
