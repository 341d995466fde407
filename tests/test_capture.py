"""`nomira capture`: fake headless agents printing the real output formats."""
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKES = Path(__file__).parent / "fixtures" / "capture"
TOKENS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


def run(args, env_extra=None, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    for k in [k for k in env if k.startswith(("GITHUB_", "GITLAB", "CI_"))]:
        env.pop(k)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "nomira", "capture", *args], cwd=ROOT, env=env,
                          capture_output=True, timeout=60, **kw)


def stored(db):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    return [dict(r) for r in con.execute("SELECT * FROM events ORDER BY model")]


def test_claude_json_records_each_models_usage_and_keeps_the_exit_status(tmp_path):
    db = tmp_path / "n.db"
    fake = [sys.executable, str(FAKES / "fake_claude.py"), "-p", "fix it", "--output-format", "json"]
    direct = subprocess.run([*fake, "--exit", "3"], capture_output=True)
    r = run(["--db", str(db), "--", *fake, "--exit", "3"])
    assert r.returncode == 3
    assert r.stdout == direct.stdout  # passed through byte for byte
    assert b"claude: warming up" in r.stderr
    rows = stored(db)
    assert [r_["model"] for r_ in rows] == ["claude-haiku-4-5-20251001", "claude-opus-4-5-20251101"]
    haiku, opus = ({t: row[t] for t in TOKENS} for row in rows)
    assert haiku == {"input": 2823, "output": 270, "cache_read": 0, "cache_write_5m": 0, "cache_write_1h": 0}
    # usage.cache_creation's 5m/1h split belongs to the model whose write count it matches
    assert opus == {"input": 5, "output": 1587, "cache_read": 59073, "cache_write_5m": 30000, "cache_write_1h": 316}
    assert {row["session_id"] for row in rows} == {"7b70d796-37ea-4eb3-bf36-943bf898a9ce"}
    assert all(row["cost_usd"] > 0 for row in rows)
    again = run(["--db", str(db), "--", *fake])  # the same run's output twice: not counted twice
    assert again.returncode == 0 and len(stored(db)) == 2


def test_codex_exec_json_turns_with_ci_labels(tmp_path):
    db = tmp_path / "n.db"
    fake = [sys.executable, str(FAKES / "fake_codex.py"), "exec", "--json", "-m", "gpt-5-codex"]
    gha = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_REF_NAME": "fix-tests",
           "GITHUB_WORKFLOW": "ci", "GITHUB_JOB": "agent", "GITHUB_RUN_ID": "991", "GITHUB_RUN_ATTEMPT": "2",
           "GITHUB_ACTOR": "ana", "GITHUB_WORKSPACE": "/home/runner/work/shop/shop"}
    r = run(["--db", str(db), "--json", "--", *fake, "--exit", "0", "fix the tests"], gha)
    assert r.returncode == 0, r.stderr
    assert r.stdout == subprocess.run([*fake, "--exit", "0", "fix the tests"], capture_output=True).stdout
    rows = stored(db)
    assert [{t: row[t] for t in TOKENS} for row in sorted(rows, key=lambda x: x["input"])] == [
        {"input": 315, "output": 122, "cache_read": 24448, "cache_write_5m": 0, "cache_write_1h": 0},
        {"input": 1056, "output": 402, "cache_read": 8064, "cache_write_5m": 0, "cache_write_1h": 0}]
    assert {(x["model"], x["developer"], x["project"], x["workflow"], x["env"]) for x in rows} == {
        ("gpt-5-codex", "ana", "shop", "ci:agent", "ci")}
    assert all(x["turn_id"].startswith("991-2:0199a213") for x in rows)
    assert all("/home/runner" not in json.dumps(x) for x in rows)
    summary = json.loads(r.stderr.decode().strip().splitlines()[-1])
    assert summary["events"] == 2 and summary["ci"]["branch"] == "fix-tests"


def test_output_is_streamed_not_buffered(tmp_path):
    """The fake waits (bounded) for the test to see its first line before it prints the rest."""
    flag = tmp_path / "seen"
    fake = [sys.executable, str(FAKES / "fake_claude.py"), "-p", "x", "--output-format", "stream-json",
            "--wait-for", str(flag)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "nomira", "capture", "--db", str(tmp_path / "n.db"), "--", *fake],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline()
    assert json.loads(first)["subtype"] == "init"
    flag.write_text("")
    rest = p.stdout.read()
    assert p.wait(timeout=30) == 0
    assert b'"type": "result"' in rest
    assert len(stored(tmp_path / "n.db")) == 2


def test_no_usage_and_missing_command(tmp_path):
    r = run(["--db", str(tmp_path / "n.db"), "--", sys.executable, "-c", "print('hello'); raise SystemExit(4)"])
    assert r.returncode == 4 and r.stdout == b"hello\n"
    assert b"no usage found" in r.stderr
    r = run(["--db", str(tmp_path / "n.db"), "--", "no-such-agent-xyz"])
    assert r.returncode == 2 and b"command not found: no-such-agent-xyz" in r.stderr
    r = run([])
    assert r.returncode == 2 and b"needs a command" in r.stderr


def test_parser_counts_bad_json_and_skips_plain_lines():
    from nomira.capture.agents import Capture
    c = Capture(codex_model="gpt-5")
    for line in (b"plain", b"{not json", b'{"type":"turn.completed","usage":{"input_tokens":10,'
                 b'"cached_input_tokens":4,"output_tokens":2}}'):
        c.feed(line)
    assert c.malformed == 1 and len(c.events) == 1
    assert (c.events[0].tokens.input, c.events[0].tokens.cache_read) == (6, 4)


def test_capture_through_the_spool_to_a_collector(tmp_path):
    from nomira.ledger import store
    from test_shipping import Collector
    db = tmp_path / "team.db"
    con = store.open_db(db)
    key = store.create_tenant(con, "acme")
    con.close()
    c = Collector(db)
    try:
        fake = [sys.executable, str(FAKES / "fake_codex.py"), "exec", "--json", "-m", "gpt-5-codex", "--exit", "5"]
        r = run(["--remote", c.url, "--token", key, "--", *fake])
        assert r.returncode == 5, r.stderr
        assert b"delivered 2" in r.stderr
        rows = c.rows("SELECT tenant, model, input, cache_read, output FROM events ORDER BY input")
        assert rows == [("acme", "gpt-5-codex", 315, 24448, 122), ("acme", "gpt-5-codex", 1056, 8064, 402)]
    finally:
        c.close()


def test_gemini_json_document(tmp_path):
    db = tmp_path / "n.db"
    fake = [sys.executable, str(FAKES / "fake_gemini.py"), "-p", "fix it", "--output-format", "json", "--exit", "1"]
    r = run(["--db", str(db), "--", *fake])
    assert r.returncode == 1
    assert r.stdout == subprocess.run(fake, capture_output=True).stdout
    rows = {row["model"]: {t: row[t] for t in (*TOKENS, "reasoning")} for row in stored(db)}
    assert rows == {  # prompt includes cached; thoughts are billed output; tool-use prompt is extra input
        "gemini-2.5-pro": {"input": 3676, "output": 174, "cache_read": 21263, "cache_write_5m": 0,
                           "cache_write_1h": 0, "reasoning": 154},
        "gemini-2.5-flash": {"input": 1210, "output": 40, "cache_read": 0, "cache_write_5m": 0,
                             "cache_write_1h": 0, "reasoning": 0}}
