"""Live capture, slice 1: `nomira hooks install|uninstall|status` and `nomira hook claude|codex`.

Payloads are in the agents' real formats: Claude Code's hook input on stdin
(session_id, transcript_path, cwd, permission_mode, hook_event_name, stop_hook_active) and
Codex's notify JSON as the last argument (kebab-case keys)."""
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from nomira.capture import install
from nomira.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures"
SESSION = "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"
THREAD = "0199a3b2-7c4d-7e10-9f21-3a4b5c6d7e8f"


def run_json(capsys, *argv):
    capsys.readouterr()
    rc = main([*argv, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_install_is_idempotent_keeps_other_hooks_and_uninstall_restores(isolated_env, capsys):
    settings = isolated_env / ".claude" / "settings.json"
    settings.parent.mkdir()
    theirs = {"model": "opus", "permissions": {"allow": ["Bash(ls)"]},
              "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}],
                        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard"}]}]}}
    settings.write_text(json.dumps(theirs))
    config = isolated_env / ".codex" / "config.toml"
    config.parent.mkdir()
    original_toml = 'model = "gpt-5"  # mine\nnotify = ["notify-send", "-a",\n  "codex"]\n\n[otel]\nexporter = "none"\n'
    config.write_text(original_toml)

    rc, first = run_json(capsys, "hooks", "install", "--db", str(isolated_env / "n.db"))
    assert rc == 0 and all(a["changed"] for a in first["agents"])
    assert all(a["backup"] and Path(a["backup"]).exists() for a in first["agents"][:2])
    doc = json.loads(settings.read_text())
    for event in install.CLAUDE_EVENTS:
        ours = [h for g in doc["hooks"][event] for h in g["hooks"] if h["command"].endswith("hook claude")]
        assert len(ours) == 1 and ours[0]["type"] == "command" and "matcher" not in doc["hooks"][event][-1]
    assert doc["hooks"]["Stop"][0]["hooks"][0]["command"] == "say done"  # theirs kept, first
    assert doc["hooks"]["PreToolUse"] == theirs["hooks"]["PreToolUse"] and doc["permissions"] == theirs["permissions"]
    notify = tomllib.loads(config.read_text())["notify"]
    assert notify[-5:] == ["codex", "--then", "notify-send", "-a", "codex"]  # chained, not clobbered
    assert config.read_text().startswith('model = "gpt-5"  # mine\n') and '[otel]\nexporter = "none"' in config.read_text()
    plugin = isolated_env / ".config" / "opencode" / "plugins" / "nomira.ts"
    assert install.PLUGIN_MARKER in plugin.read_text() and oct(plugin.stat().st_mode & 0o777) == "0o600"

    snapshot = (settings.read_text(), config.read_text(), plugin.read_text())
    rc, second = run_json(capsys, "hooks", "install")
    assert rc == 0 and not any(a["changed"] for a in second["agents"])  # idempotent
    assert (settings.read_text(), config.read_text(), plugin.read_text()) == snapshot
    rc, status = run_json(capsys, "hooks", "status")
    assert [a["installed"] for a in status["agents"]] == [True, True, True]
    assert status["agents"][1]["chained"] == ["notify-send", "-a", "codex"]

    rc, removed = run_json(capsys, "hooks", "uninstall")
    assert rc == 0 and all(a["changed"] for a in removed["agents"])
    assert json.loads(settings.read_text()) == theirs
    assert tomllib.loads(config.read_text()) == tomllib.loads(original_toml)
    assert config.read_text().startswith('model = "gpt-5"  # mine\n')
    assert not plugin.exists()
    rc, status = run_json(capsys, "hooks", "status")
    assert [a["installed"] for a in status["agents"]] == [False, False, False]


def test_install_into_empty_config_and_uninstall_leaves_nothing_of_ours(isolated_env, capsys):
    rc, _ = run_json(capsys, "hooks", "install", "--agent", "claude", "--agent", "codex")
    assert rc == 0
    config = isolated_env / ".codex" / "config.toml"
    assert tomllib.loads(config.read_text())["notify"][-2:] == ["hook", "codex"]
    run_json(capsys, "hooks", "uninstall", "--agent", "claude", "--agent", "codex")
    assert json.loads((isolated_env / ".claude" / "settings.json").read_text()) == {}
    assert tomllib.loads(config.read_text()) == {}


def test_unparseable_config_is_refused_not_rewritten(isolated_env, capsys):
    settings = isolated_env / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text('{"hooks": [oops')
    rc, out = run_json(capsys, "hooks", "install", "--agent", "claude")
    assert rc == 1 and "not valid JSON" in out["agents"][0]["error"]
    assert settings.read_text() == '{"hooks": [oops'
    assert list(settings.parent.iterdir()) == [settings]  # no backup either: nothing was changed


def test_codex_notify_edit_keeps_tables_and_refuses_a_table_notify_confusion():
    text = '[tui]\nnotify = true\n'
    out = install.codex_set_notify(text, ["nomira", "hook", "codex"])
    doc = tomllib.loads(out)
    assert doc["notify"] == ["nomira", "hook", "codex"] and doc["tui"] == {"notify": True}
    assert install.codex_set_notify(out, None) == text


def _stdin(monkeypatch, payload: dict) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(payload).encode())))


def _claude_payload(transcript: Path, event="Stop") -> dict:
    return {"session_id": SESSION, "transcript_path": str(transcript), "cwd": "/home/ana/src/shop",
            "permission_mode": "default", "hook_event_name": event, "stop_hook_active": False}


def _stored(db: Path) -> list[tuple]:
    return sqlite3.connect(db).execute("SELECT message_id, request_id, input, output FROM events "
                                       "ORDER BY message_id").fetchall()


def _new_line(msg_id: str, output: int) -> str:
    return json.dumps({"parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": "/home/ana/src/shop",
                       "sessionId": SESSION, "version": "2.0.37", "gitBranch": "main", "type": "assistant",
                       "uuid": f"u-{msg_id}", "timestamp": "2025-11-03T15:00:00.000Z", "requestId": f"req_{msg_id}",
                       "message": {"id": msg_id, "type": "message", "role": "assistant",
                                   "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "ok"}],
                                   "stop_reason": "end_turn", "stop_sequence": None,
                                   "usage": {"input_tokens": 7, "cache_creation_input_tokens": 0,
                                             "cache_read_input_tokens": 0, "output_tokens": output}}}) + "\n"


def test_claude_hook_ships_exactly_the_new_calls_of_that_session(isolated_env, tmp_path, monkeypatch, capsys):
    projects = tmp_path / "claude" / "projects"
    shutil.copytree(FIX / "claude" / "projects", projects)
    transcript = projects / "-home-ana-src-shop" / f"{SESSION}.jsonl"
    db = tmp_path / "team.db"
    assert main(["hooks", "install", "--agent", "claude", "--db", str(db)]) == 0
    # what `nomira ship` would send for this session alone (its transcript + subagents), to compare
    capsys.readouterr()
    assert main(["export", "-", "--path", str(transcript), "--path", str(transcript.with_suffix(""))]) == 0
    expected = {e["message_id"] for e in json.loads(capsys.readouterr().out)["events"]}
    assert expected and any(e for e in expected)

    _stdin(monkeypatch, _claude_payload(transcript))
    assert main(["hook", "claude"]) == 0
    first = _stored(db)
    assert {r[0] for r in first} == expected  # that session only: the other session's msg_A2/msg_B1 not shipped
    assert capsys.readouterr().out == ""  # nothing printed into the agent's terminal

    _stdin(monkeypatch, _claude_payload(transcript))
    assert main(["hook", "claude"]) == 0
    assert _stored(db) == first  # nothing new, nothing shipped

    with open(transcript, "a") as fh:
        fh.write(_new_line("msg_NEW1", 42))
    _stdin(monkeypatch, _claude_payload(transcript, "SessionEnd"))
    assert main(["hook", "claude"]) == 0
    after = _stored(db)
    assert len(after) == len(first) + 1 and ("msg_NEW1", "req_msg_NEW1", 7, 42) in after
    log = (isolated_env / ".local" / "state" / "nomira" / "hook.log").read_text().splitlines()
    assert [json.loads(l.split("claude: ", 1)[1].rsplit(" in ", 1)[0])["new_events"] for l in log] == \
        [len(expected), 0, 1]


def test_claude_hook_never_fails_the_agent(isolated_env, monkeypatch, capsys):
    for stdin in (b"not json", b"[1,2]", json.dumps({"transcript_path": "/nope/x.jsonl"}).encode()):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        assert main(["hook", "claude"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    log = (isolated_env / ".local" / "state" / "nomira" / "hook.log").read_text()
    assert log.count("claude: error") == 2 and "no transcript_path" in log


def test_claude_hook_subprocess_exits_0_quickly(isolated_env, tmp_path):
    projects = tmp_path / "claude" / "projects"
    shutil.copytree(FIX / "claude" / "projects", projects)
    transcript = projects / "-home-ana-src-shop" / f"{SESSION}.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOMIRA_DB=str(tmp_path / "n.db"))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "nomira", "hook", "claude"], input=json.dumps(
        _claude_payload(transcript)).encode(), capture_output=True, env=env, cwd=ROOT, timeout=60)
    took = time.perf_counter() - t0
    assert p.returncode == 0 and p.stdout == b"" and p.stderr == b""
    assert len(_stored(tmp_path / "n.db")) >= 1
    assert took < 30  # generous on a loaded CI box; tools/bench_hook.py measures the real figure


def _rollout(path: Path) -> None:
    """A rollout with two turns logged by task_started/task_complete (turn ids), as Codex writes them."""
    lines = [
        {"timestamp": "2025-11-03T09:15:00.120Z", "type": "session_meta", "payload": {
            "id": THREAD, "timestamp": "2025-11-03T09:15:00.118Z", "cwd": "/home/ana/src/shop",
            "originator": "codex_cli_rs", "cli_version": "0.53.0", "source": "cli", "model_provider": "openai"}},
        {"timestamp": "2025-11-03T09:15:01.000Z", "type": "event_msg", "payload": {"type": "task_started",
                                                                                 "turn_id": "1"}},
        {"timestamp": "2025-11-03T09:15:02.004Z", "type": "turn_context", "payload": {
            "cwd": "/home/ana/src/shop", "approval_policy": "on-request", "model": "gpt-5-codex", "summary": "auto"}},
        _tc("2025-11-03T09:15:31.660Z", (1000, 800, 100, 50), (1000, 800, 100, 50)),
        {"timestamp": "2025-11-03T09:15:32.000Z", "type": "event_msg", "payload": {"type": "task_complete",
                                                                                 "turn_id": "1"}},
        {"timestamp": "2025-11-03T09:16:00.000Z", "type": "event_msg", "payload": {"type": "task_started",
                                                                                 "turn_id": "2"}},
        _tc("2025-11-03T09:16:10.000Z", (3000, 2400, 300, 100), (2000, 1600, 200, 50)),
        _tc("2025-11-03T09:16:20.000Z", (3000, 2400, 300, 100), (2000, 1600, 200, 50)),  # UI refresh: no call
        _tc("2025-11-03T09:16:30.000Z", (6000, 4800, 600, 200), (3000, 2400, 300, 100)),
        {"timestamp": "2025-11-03T09:16:31.000Z", "type": "event_msg", "payload": {"type": "task_complete",
                                                                                 "turn_id": "2"}},
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(l) + "\n" for l in lines))


def _tc(ts, total, last):
    def usage(t):
        return {"input_tokens": t[0], "cached_input_tokens": t[1], "output_tokens": t[2],
                "reasoning_output_tokens": t[3], "total_tokens": t[0] + t[2]}
    return {"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
        "total_token_usage": usage(total), "last_token_usage": usage(last), "model_context_window": 272000},
        "rate_limits": None}}


def _notify(turn: str) -> str:
    return json.dumps({"type": "agent-turn-complete", "thread-id": THREAD, "turn-id": turn,
                       "cwd": "/home/ana/src/shop", "input-messages": ["fix the tests"],
                       "last-assistant-message": "Tests pass now."})


def test_codex_notify_links_the_turn_to_its_rollout_and_chains_the_users_program(isolated_env, tmp_path, monkeypatch):
    codex_home = tmp_path / "codex"
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    monkeypatch.setenv("NOMIRA_DB", str(tmp_path / "n.db"))
    _rollout(codex_home / "sessions" / "2025" / "11" / "03" / f"rollout-2025-11-03T09-15-00-{THREAD}.jsonl")
    other = codex_home / "sessions" / "2025" / "11" / "04" / "rollout-2025-11-04T10-00-00-0199a3b2-7c4d-7e10-9f21-000000000009.jsonl"
    shutil.copy(FIX / "codex" / "sessions" / "2025" / "11" / "03" / f"rollout-2025-11-03T09-15-00-{THREAD}.jsonl",
                other.parent.mkdir(parents=True) or other)
    marker = tmp_path / "chained.txt"
    assert main(["hook", "codex", "--then", sys.executable, "-c",
                 f"import sys; open({str(marker)!r}, 'w').write(sys.argv[-1])", _notify("2")]) == 0
    log = (isolated_env / ".local" / "state" / "nomira" / "hook.log").read_text().splitlines()
    result = json.loads(log[-1].split("codex: ", 1)[1].rsplit(" in ", 1)[0])
    assert result["rollout"].endswith(f"{THREAD}.jsonl") and result["turn_id"] == "2"
    assert result["turn_started"] == "2025-11-03T09:16:00.000Z" and result["turn_calls"] == 2
    assert result["new_events"] == 3  # this rollout's calls only (the other thread's file untouched)
    rows = sqlite3.connect(tmp_path / "n.db").execute("SELECT input, cache_read, output FROM events ORDER BY "
                                                      "occurred_at").fetchall()
    assert rows == [(200, 800, 100), (400, 1600, 200), (600, 2400, 300)]  # per call, input excludes cached
    for _ in range(50):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.1)
    assert json.loads(marker.read_text())["turn-id"] == "2"  # the user's notify program got the payload
    assert main(["hook", "codex", _notify("2")]) == 0
    assert json.loads((isolated_env / ".local" / "state" / "nomira" / "hook.log").read_text().splitlines()[-1]
                      .split("codex: ", 1)[1].rsplit(" in ", 1)[0])["new_events"] == 0


def test_claude_hook_to_a_remote_collector_queues_and_a_detached_flush_delivers(isolated_env, tmp_path, monkeypatch):
    """The hook never waits for the network: it spools, and `nomira hook flush` (spawned) delivers."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from nomira.commands.serve import ThreadingWSGIServer, make_app
    monkeypatch.delenv("NOMIRA_INGEST_TOKEN", raising=False)
    monkeypatch.delenv("NOMIRA_DASHBOARD_PASSWORD", raising=False)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass
    app = make_app(tmp_path / "collector.db", "127.0.0.1")
    httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        projects = tmp_path / "claude" / "projects"
        shutil.copytree(FIX / "claude" / "projects", projects)
        transcript = projects / "-home-ana-src-shop" / f"{SESSION}.jsonl"
        url = f"http://127.0.0.1:{httpd.server_port}"
        assert main(["hooks", "install", "--agent", "claude", "--remote", url]) == 0
        monkeypatch.setenv("PYTHONPATH", str(ROOT))
        _stdin(monkeypatch, _claude_payload(transcript))
        assert main(["hook", "claude"]) == 0
        log = isolated_env / ".local" / "state" / "nomira" / "hook.log"
        assert '"queued": true' in log.read_text()
        rows = []
        for _ in range(300):  # the detached flusher: bounded wait (30 s on a loaded box)
            rows = sqlite3.connect(tmp_path / "collector.db").execute("SELECT message_id FROM events").fetchall()
            if rows:
                break
            time.sleep(0.1)
        assert {r[0] for r in rows} >= {"msg_A1"}
        for _ in range(100):
            if "flush:" in log.read_text():
                break
            time.sleep(0.1)
        assert '"delivered": ' in log.read_text().split("flush:", 1)[1]
        assert not list((isolated_env / ".local" / "state" / "nomira" / "spool" / "pending").glob("batch-*"))
    finally:
        httpd.shutdown()
        httpd.server_close()
