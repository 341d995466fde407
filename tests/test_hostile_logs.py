"""Logs no agent writes on purpose (counts past any call, strings for numbers, nesting deeper than the
decoder goes, a JSON array where a message belongs, a time in the year 5 million, a folder named like
a file): each bad line or file is counted and skipped, the rest is read and priced, and the command
never ends in a traceback. Fixtures are the agents' real line shapes with one field made hostile."""
import json

import pytest

KEYS = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]
GOOD = {"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0}
SONNET = (10 * 3 + 20 * 15 + 100 * 0.3) / 1e6  # claude-sonnet-4-5: 3 / 15 / read 0.30 per MTok


def claude_line(i: int, usage: dict) -> dict:
    return {"parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/home/a/p", "sessionId": "s1",
            "version": "2.0.31", "gitBranch": "main", "type": "assistant", "uuid": f"u{i}",
            "timestamp": f"2025-11-03T10:00:0{i}.000Z", "requestId": f"req_{i}",
            "message": {"model": "claude-sonnet-4-5-20250929", "id": f"msg_{i}", "type": "message",
                        "role": "assistant", "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                        "usage": usage}}


def write_claude(tmp_path, lines: list[str]):
    f = tmp_path / "projects" / "-home-a-p" / "s1.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text("\n".join(lines) + "\n")
    return tmp_path / "projects"


@pytest.mark.parametrize("value", ["10" + "0" * 400, str(10 ** 30), str(10 ** 12 + 1), '"100"', "1.5", "-5", "true",
                                   "[]"])
def test_a_claude_count_no_call_can_have_skips_its_line(run_json, tmp_path, value):
    bad = json.dumps(claude_line(2, GOOD)).replace('"input_tokens": 10', f'"input_tokens": {value}')
    r = run_json("--path", write_claude(tmp_path, [json.dumps(claude_line(1, GOOD)), bad]), "--no-cache")
    assert r["totals"]["calls"] == 1 and r["totals"]["cost_usd"] == pytest.approx(SONNET, abs=1e-12)
    assert r["scan"]["skipped"] == {"bad_token_count": 1}


def test_a_null_count_is_an_absent_one(run_json, tmp_path):
    r = run_json("--path", write_claude(tmp_path, [json.dumps(claude_line(1, dict(GOOD, cache_read_input_tokens=None)))]),
                 "--no-cache")
    assert r["totals"]["calls"] == 1 and r["totals"]["cost_usd"] == pytest.approx((10 * 3 + 20 * 15) / 1e6, abs=1e-12)
    assert r["scan"]["skipped"] == {}


def test_nesting_deeper_than_the_decoder_is_a_malformed_line(run_json, tmp_path):
    deep = json.dumps(claude_line(2, GOOD))[:-1] + ',"x":' + "[" * 100_000 + "]" * 100_000 + "}"
    r = run_json("--path", write_claude(tmp_path, [json.dumps(claude_line(1, GOOD)), deep]), "--no-cache")
    assert r["totals"]["calls"] == 1 and r["scan"]["malformed_lines"] == 1


def codex_file(tmp_path, token_lines: list[str]):
    meta = {"timestamp": "2025-11-03T09:00:00.000Z", "type": "session_meta", "payload": {
        "id": "c1", "timestamp": "2025-11-03T09:00:00.000Z", "cwd": "/home/a/p", "originator": "codex_cli_rs",
        "cli_version": "0.53.0", "source": "cli", "model_provider": "openai"}}
    ctx = {"timestamp": "2025-11-03T09:00:01.000Z", "type": "turn_context", "payload": {
        "cwd": "/home/a/p", "approval_policy": "on-request", "model": "gpt-5-codex", "summary": "auto"}}
    f = tmp_path / "sessions" / "2025" / "11" / "03" / "rollout-2025-11-03T09-00-00-c1.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text("\n".join([json.dumps(meta), json.dumps(ctx), *token_lines]) + "\n")
    return tmp_path / "sessions"


def token_count(ts: str, total: tuple, rate_limits: dict | None = None) -> str:
    return json.dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
        "total_token_usage": dict(zip(KEYS, total)), "last_token_usage": dict(zip(KEYS, total)),
        "model_context_window": 272000}, "rate_limits": rate_limits}})


def test_a_codex_count_past_any_call_skips_its_line(run_json, tmp_path):
    huge = token_count("2025-11-03T09:02:00.000Z", (7, 0, 20, 0, 220)).replace('"input_tokens": 7', '"input_tokens": 1' + "0" * 400)
    sessions = codex_file(tmp_path, [token_count("2025-11-03T09:01:00.000Z", (100, 0, 10, 0, 110)), huge])
    r = run_json("--path", sessions, "--no-cache")
    assert r["totals"]["calls"] == 1 and r["scan"]["skipped"] == {"bad_token_count": 1}
    assert r["totals"]["cost_usd"] == pytest.approx((100 * 1.25 + 10 * 10) / 1e6, abs=1e-12)


def test_a_rate_limit_of_the_wrong_type_is_left_out(capsys, tmp_path):
    from nomira.cli import main
    rl = {"primary": {"used_percent": "lots", "window_minutes": 300, "resets_at": 1762175700},
          "secondary": {"used_percent": 3.5, "window_minutes": "x", "resets_at": "soon"}, "plan_type": 7}
    sessions = codex_file(tmp_path, [token_count("2025-11-03T09:01:00.000Z", (100, 0, 10, 0, 110), rl)])
    assert main(["--path", str(sessions), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "3.5% used" in out and "lots" not in out
    assert main(["--path", str(sessions), "--no-cache", "--json"]) == 0
    allowance = json.loads(capsys.readouterr().out)["allowance"]
    assert "lots" not in json.dumps(allowance) and "3.5" in json.dumps(allowance)


def opencode_storage(tmp_path):
    root = tmp_path / "opencode" / "storage"
    (root / "message" / "ses_1").mkdir(parents=True)
    return root


def legacy_message(mid: str, **changes) -> dict:
    msg = {"id": mid, "sessionID": "ses_1", "role": "assistant", "time": {"created": 1762336860000,
           "completed": 1762336865000}, "parentID": "msg_u", "modelID": "gpt-5", "providerID": "openai",
           "mode": "build", "path": {"cwd": "/home/a/p", "root": "/home/a/p"}, "cost": 0,
           "tokens": {"input": 1000, "output": 500, "reasoning": 0, "cache": {"read": 0, "write": 0}}}
    msg.update(changes)
    return msg


GPT5 = (1000 * 1.25 + 500 * 10) / 1e6


def test_opencode_messages_and_parts_of_the_wrong_shape(run_json, tmp_path):
    root = opencode_storage(tmp_path)
    (root / "message" / "ses_1" / "msg_A.json").write_text(json.dumps(legacy_message("msg_A")))
    (root / "message" / "ses_1" / "msg_X.json").write_text("[1,2]")  # JSON, but no message
    (root / "message" / "ses_1" / "msg_T.json").write_text(json.dumps(legacy_message("msg_T", time={"created": 10 ** 20})))
    (root / "message" / "ses_1" / "msg_N.json").write_text(json.dumps(legacy_message(
        "msg_N", tokens={"input": 10 ** 400, "output": 1, "cache": {"read": 0, "write": 0}})))
    (root / "message" / "ses_1" / "msg_B.json").write_text(json.dumps(legacy_message("msg_B", modelID=5)))
    (root / "part" / "msg_A" / "x.json").mkdir(parents=True)  # a folder named like a part
    (root / "part" / "msg_A" / "prt_1.json").write_text("[3]")
    r = run_json("--path", tmp_path / "opencode", "--no-cache")
    assert r["totals"]["calls"] == 2 and r["scan"]["unreadable"] == []
    assert r["scan"]["malformed_lines"] == 2
    assert r["scan"]["skipped"] == {"bad_timestamp": 1, "bad_token_count": 1}
    models = {m["model"]: m["cost_usd"] for m in r["models"]}
    assert models["gpt-5"] == pytest.approx(GPT5, abs=1e-12) and "unknown" in models


def test_a_file_a_parser_cannot_read_is_counted_not_fatal(run_json, tmp_path, monkeypatch):
    """Past every check a parser has: the file is counted as skipped, the other files are reported."""
    from nomira.sources import claude_code
    real = claude_code.scan_file

    def scan_file(path, start=0, state=None):
        if str(path).endswith("s2.jsonl"):
            raise TypeError("a shape no check foresaw")
        return real(path, start, state)
    monkeypatch.setattr(claude_code, "scan_file", scan_file)
    projects = write_claude(tmp_path, [json.dumps(claude_line(1, GOOD))])
    (projects / "-home-a-p" / "s2.jsonl").write_text(json.dumps(claude_line(2, GOOD)) + "\n")
    r = run_json("--path", projects, "--no-cache")
    assert r["totals"]["calls"] == 1 and r["scan"]["skipped"] == {"unparsable_file:TypeError": 1}


def test_optimize_with_a_transcript_gone_after_the_scan(capsys, tmp_path, monkeypatch):
    """`optimize` reads tool calls in a second pass: a file removed or made unreadable in between is
    left out of that pass (the scan counted what it read), not the end of the command."""
    from nomira.cli import main
    from nomira.sources import claude_code
    projects = write_claude(tmp_path, [json.dumps(claude_line(1, GOOD))])
    real = claude_code.iter_tool_uses

    def gone(path):
        raise PermissionError(13, "Permission denied", str(path))
        yield from real(path)
    monkeypatch.setattr(claude_code, "iter_tool_uses", gone)
    assert main(["optimize", "--path", str(projects), "--no-cache"]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.000-01:00", "0001-01-01T00:00:00Z",
                                "0002-01-01T00:00:00+05:00", "9999-12-31T20:00:00.000Z"])
def test_a_time_at_the_calendars_ends_is_no_time(run_json, capsys, tmp_path, ts):
    """A timestamp that parses but lies in datetime's first or last year (no log does; in UTC or in the
    report's time zone it may not exist): its line is skipped as `no_timestamp`, every command runs."""
    from nomira.cli import main
    odd = claude_line(2, GOOD)
    odd["timestamp"] = ts
    projects = write_claude(tmp_path, [json.dumps(claude_line(1, GOOD)), json.dumps(odd)])
    for command in ([], ["daily"], ["monthly"], ["session"]):
        r = run_json(*command, "--path", projects, "--no-cache", "--timezone", "America/New_York")
        assert r["totals"]["calls"] == 1
    r = run_json("blocks", "--path", projects, "--no-cache", "--timezone", "America/New_York")
    assert sum(b["calls"] for b in r["blocks"]) == 1
    r = run_json("--path", projects, "--no-cache", "--timezone", "Pacific/Kiritimati")
    assert r["totals"]["calls"] == 1 and r["scan"]["skipped"] == {"no_timestamp": 1}
    capsys.readouterr()
    assert main(["--path", str(projects), "--no-cache"]) == 0


def test_a_codex_child_keeps_its_own_session_when_it_copies_its_parents_meta(run_json, tmp_path):
    """A sub-agent's or fork's rollout starts with its own session_meta, then copies its parent's: its
    calls are its own session's, in its own project."""
    parent_meta = {"timestamp": "2025-11-03T09:00:00.000Z", "type": "session_meta", "payload": {
        "id": "parent-1", "timestamp": "2025-11-03T09:00:00.000Z", "cwd": "/home/a/parentproj",
        "originator": "codex_cli_rs", "cli_version": "0.53.0", "source": "cli", "model_provider": "openai"}}
    child_meta = {"timestamp": "2025-11-03T10:00:00.000Z", "type": "session_meta", "payload": {
        "id": "child-1", "timestamp": "2025-11-03T10:00:00.000Z", "cwd": "/home/a/childproj",
        "originator": "codex_cli_rs", "cli_version": "0.53.0", "forked_from_id": "parent-1",
        "source": {"subagent": {"thread_spawn": {"parent_thread_id": "parent-1", "depth": 1}}},
        "model_provider": "openai"}}
    ctx = {"timestamp": "2025-11-03T10:00:01.000Z", "type": "turn_context", "payload": {
        "cwd": "/home/a/childproj", "approval_policy": "on-request", "model": "gpt-5-codex", "summary": "auto"}}
    f = tmp_path / "sessions" / "2025" / "11" / "03" / "rollout-2025-11-03T10-00-00-child-1.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text("\n".join(json.dumps(x) for x in (child_meta, parent_meta, ctx)) + "\n"
                 + token_count("2025-11-03T10:01:00.000Z", (100, 0, 10, 0, 110)) + "\n")
    r = run_json("session", "--path", tmp_path / "sessions", "--no-cache")
    rows = r["session"]
    assert [(s["session_id"], s["project"]) for s in rows] == [("child-1", "childproj")]
