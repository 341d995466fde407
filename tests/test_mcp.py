"""`nomira mcp`: a client session over stdio, with the MCP spec's own message shapes."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
PATHS = ["--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "codex")]


def cli_json(*argv):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "nomira", *argv, *PATHS, "--json"], cwd=ROOT, env=env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def session(messages, extra=()):
    """Send `messages` (one per line), close stdin, return the server's replies by id."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    text = "".join(json.dumps(m) + "\n" for m in messages) + "this is not json\n"
    r = subprocess.run([sys.executable, "-m", "nomira", "mcp", *PATHS, *extra], cwd=ROOT, env=env, input=text.encode(),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    replies = [json.loads(line) for line in r.stdout.decode().splitlines()]  # stdout holds JSON-RPC only
    return {m.get("id"): m for m in replies}


def call(id_, name, arguments=None):
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}


def test_initialize_list_and_call_answer_the_clis_numbers():
    replies = session([
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {"roots": {"listChanged": True}},
                    "clientInfo": {"name": "ExampleClient", "version": "1.0.0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        call(3, "usage", {"group_by": "total"}),
        call(4, "usage", {"group_by": "day"}),
        call(5, "usage", {"group_by": "project"}),
        call(6, "top_sessions", {"limit": 2}),
        call(7, "usage", {"group_by": "model", "since": "20990101"}),
        call(8, "no_such_tool"),
        {"jsonrpc": "2.0", "id": 9, "method": "resources/list"},
        call(10, "limits"),
        call(11, "recommendations"),
    ])
    init = replies[1]["result"]
    assert init["protocolVersion"] == "2025-06-18" and init["capabilities"] == {"tools": {"listChanged": False}}
    assert init["serverInfo"]["name"] == "nomira"
    names = {t["name"] for t in replies[2]["result"]["tools"]}
    assert names == {"usage", "top_sessions", "recommendations", "limits"}
    assert all(t["inputSchema"]["type"] == "object" for t in replies[2]["result"]["tools"])

    report = cli_json("report")
    total = replies[3]["result"]
    assert total["isError"] is False
    assert total["structuredContent"]["totals"] == report["totals"]
    assert json.loads(total["content"][0]["text"]) == total["structuredContent"]
    assert total["structuredContent"]["totals"]["cost_usd"] > 0

    daily = cli_json("daily")
    assert replies[4]["result"]["structuredContent"]["daily"] == daily["daily"]
    assert replies[5]["result"]["structuredContent"] == cli_json("report", "--compare", "--by-project")
    top = replies[6]["result"]["structuredContent"]["sessions"]
    assert [s["cost_usd"] for s in top] == sorted((s["cost_usd"] for s in report["sessions"]), reverse=True)[:2]

    none = replies[7]["result"]["structuredContent"]  # a window without usage: empty, not an error
    assert none["models"] == cli_json("report", "--since", "20990101")["models"] == []
    bad = session([call(1, "usage", {"group_by": "day", "since": "2026-13-45"})])[1]["result"]
    assert bad["isError"] is True and "--since" in bad["content"][0]["text"]
    assert replies[8]["error"]["code"] == -32602
    assert replies[9]["error"]["code"] == -32601
    assert replies[None]["error"]["code"] == -32700  # the line that was not JSON
    served = replies[10]["result"]["structuredContent"]
    assert served["limits"] and strip_clock(served) == strip_clock(cli_json_limits())
    assert "recommendations" in replies[11]["result"]["structuredContent"]


def cli_json_limits():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "nomira", "limits", *PATHS, "--json"], cwd=ROOT, env=env,
                       capture_output=True, timeout=60)
    return json.loads(r.stdout)


def strip_clock(doc):
    for row in doc["limits"]:  # relative to the clock: not comparable between two runs
        row.pop("resets_in_seconds"), row.pop("age_seconds")
    return doc


def test_unknown_protocol_version_gets_ours_and_team_usage_reads_a_store(tmp_path):
    from nomira.ledger import store
    from nomira.commands.ship import deliver  # noqa: F401 - the store is filled the way ship fills it
    db = tmp_path / "team.db"
    con = store.open_db(db)
    now = __import__("datetime").datetime.now(__import__("datetime").timezone.utc).isoformat()
    ev = lambda dev, n: {"schema_version": 1, "source": "claude_code", "provider": "anthropic",  # noqa: E731
                         "model": "claude-sonnet-4-5", "occurred_at": now, "message_id": f"m{dev}{n}",
                         "tokens": {"input": 10 * n, "output": n}, "cost_usd": 0.5 * n, "tags": {"developer": dev}}
    store.ingest(con, [ev("ana", 1), ev("ana", 2), ev("bo", 3)])
    con.close()
    replies = session([{"jsonrpc": "2.0", "id": 1, "method": "initialize",
                        "params": {"protocolVersion": "1999-01-01", "capabilities": {}, "clientInfo": {"name": "c"}}},
                       call(2, "team_usage", {"group_by": "developer", "period": "7d"})], ("--db", str(db)))
    assert replies[1]["result"]["protocolVersion"] == "2025-11-25"
    rows = {r["name"]: (r["calls"], r["cost_usd"]) for r in replies[2]["result"]["structuredContent"]["rows"]}
    assert rows == {"ana": (2, 1.5), "bo": (1, 1.5)}
