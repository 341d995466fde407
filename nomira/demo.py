"""Synthetic but realistic agent logs, so a new user sees the product without their own.

Writes Claude Code transcripts (streaming snapshots, 5m and 1h cache writes, a
sub-agent file, a resumed-session copy) and a Codex rollout (cumulative
token_count with repeats and rate limits), in the agents' real on-disk formats.
"""
from __future__ import annotations

import json
import os
import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

FILES = ["src/app.py", "src/models.py", "README.md", "tests/test_app.py", "src/api/routes.py"]
TOOLS = [
    lambda r: ("Read", {"file_path": "/home/dev/src/shop/" + r.choice(FILES[:3])}),
    lambda r: ("Read", {"file_path": "/home/dev/src/shop/" + r.choice(FILES)}),
    lambda r: ("Bash", {"command": "(demo command)"}),
    lambda r: ("Edit", {"file_path": "/home/dev/src/shop/" + r.choice(FILES), "old_string": "", "new_string": ""}),
    lambda r: ("Grep", {"pattern": "(demo)"}),
    lambda r: ("Task", {"description": "(demo sub-agent)", "prompt": "(demo)"}),
    None, None,
]
PROJECTS = ["-home-dev-src-shop", "-home-dev-src-billing-api", "-home-dev-src-infra"]
CLAUDE_MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-7", "claude-haiku-4-5-20251001"]


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _dump(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def claude_session(rng: random.Random, start: datetime, project: str, model: str, calls: int,
                   sidechain: bool = False) -> tuple[str, list[str]]:
    session = str(uuid.UUID(int=rng.getrandbits(128)))
    cwd = "/home/dev/src/" + project.split("-src-", 1)[1]  # the folder Claude Code encoded as `project`
    lines, t, context = [], start, rng.randint(8000, 20000)
    ttl_1h = rng.random() < 0.3
    lines.append(_dump({"type": "summary", "summary": "demo session", "leafUuid": session[:8]}))
    for i in range(calls):
        gap = rng.choice([rng.randint(5, 120)] * 8 + [rng.randint(400, 2400)])
        t += timedelta(seconds=gap)
        msg_id = f"msg_{rng.getrandbits(64):016x}"
        req_id = f"req_{rng.getrandbits(64):016x}"
        expired = i == 0 or gap > (3600 if ttl_1h else 300)  # the cache lapsed: rebuild it
        write = context if expired else rng.randint(200, 4000)
        read = 0 if expired else context
        usage_final = {
            "input_tokens": rng.randint(3, 40), "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": 0 if ttl_1h else write,
                               "ephemeral_1h_input_tokens": write if ttl_1h else 0},
            "output_tokens": rng.randint(50, 1500), "service_tier": "standard",
        }
        context += write
        lines.append(_dump({"parentUuid": None, "isSidechain": sidechain, "userType": "external", "cwd": cwd,
                            "sessionId": session, "version": "2.0.37", "gitBranch": "main", "type": "user",
                            "message": {"role": "user", "content": "(demo prompt)"},
                            "uuid": str(uuid.UUID(int=rng.getrandbits(128))), "timestamp": _iso(t)}))
        # Streaming: one line per content block, same message id; only the last has the final count.
        tool = rng.choice(TOOLS)
        blocks = [{"type": "text", "text": "(demo)"}]
        if tool:
            name, inp = tool(rng)
            blocks.append({"type": "tool_use", "id": f"toolu_{rng.getrandbits(48):012x}", "name": name,
                           "input": inp})
        for n, block in enumerate(blocks):
            out = usage_final["output_tokens"] if n == len(blocks) - 1 else 1
            usage = dict(usage_final, output_tokens=out)
            lines.append(_dump({
                "parentUuid": None, "isSidechain": sidechain, "userType": "external", "cwd": cwd,
                "sessionId": session, "version": "2.0.37", "gitBranch": "main", "type": "assistant",
                "uuid": str(uuid.UUID(int=rng.getrandbits(128))), "timestamp": _iso(t), "requestId": req_id,
                "message": {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                            "content": [block], "stop_reason": None,
                            "stop_sequence": None, "usage": usage}}))
        if rng.random() < 0.3:
            lines.append(_dump({"type": "user", "sessionId": session, "timestamp": _iso(t), "cwd": cwd,
                                "version": "2.0.37", "message": {"role": "user", "content": [
                                    {"type": "tool_result", "tool_use_id": "toolu_demo",
                                     "content": "x" * rng.randint(2000, 20000)}]}}))
    return session, lines


def codex_rollout(rng: random.Random, start: datetime, turns: int) -> tuple[str, list[str]]:
    sid = str(uuid.UUID(int=rng.getrandbits(128)))
    lines = [_dump({"timestamp": _iso(start), "type": "session_meta", "payload": {
        "id": sid, "timestamp": _iso(start), "cwd": "/home/dev/src/shop", "originator": "codex_cli_rs",
        "cli_version": "0.53.0", "source": "cli", "model_provider": "openai"}}),
        _dump({"timestamp": _iso(start), "type": "turn_context", "payload": {
            "cwd": "/home/dev/src/shop", "approval_policy": "on-request", "model": "gpt-5-codex",
            "effort": "medium", "summary": "auto"}})]
    total = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0, "reasoning_output_tokens": 0,
             "total_tokens": 0}
    t, used = start, 2.0
    for _ in range(turns):
        t += timedelta(seconds=rng.randint(30, 300))
        inp = rng.randint(5000, 40000)
        last = {"input_tokens": inp, "cached_input_tokens": int(inp * rng.uniform(0.5, 0.9)),
                "output_tokens": rng.randint(100, 2000), "reasoning_output_tokens": 0, "total_tokens": 0}
        last["reasoning_output_tokens"] = last["output_tokens"] // 3
        last["total_tokens"] = last["input_tokens"] + last["output_tokens"]
        total = {k: total[k] + last[k] for k in total}
        used += rng.uniform(0.5, 2.0)
        event = {"timestamp": _iso(t), "type": "event_msg", "payload": {
            "type": "token_count", "info": {"total_token_usage": total, "last_token_usage": last,
                                            "model_context_window": 272000},
            "rate_limits": {"primary": {"used_percent": round(used, 1), "window_minutes": 300,
                                        "resets_at": int(t.timestamp()) + 9000},
                            "secondary": {"used_percent": round(used / 6, 1), "window_minutes": 10080,
                                          "resets_at": int(t.timestamp()) + 400000}, "plan_type": "plus"}}}
        lines.append(_dump(event))
        if rng.random() < 0.4:  # UI refresh: the same totals again, not a new call
            event["timestamp"] = _iso(t + timedelta(seconds=1))
            lines.append(_dump(event))
    return sid, lines


def reference_now(env=os.environ) -> datetime:
    """The instant the history ends at: NOMIRA_DEMO_NOW (ISO 8601) pins it, so generated docs never drift."""
    pinned = env.get("NOMIRA_DEMO_NOW")
    if pinned:
        at = datetime.fromisoformat(pinned.replace("Z", "+00:00"))
        return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)


def _write_log(path: Path, lines: list[str]) -> None:
    """Write a log whose mtime is its last line's time, as the agent that wrote it would have left it:
    what picks files by mtime (the status line's today) then reads the demo as of its pinned end, not
    as of the day the demo was written."""
    path.write_text("\n".join(lines) + "\n")
    last = datetime.fromisoformat(json.loads(lines[-1])["timestamp"].replace("Z", "+00:00")).timestamp()
    os.utime(path, (last, last))


def write_demo(root: Path, seed: int = 7, now: datetime | None = None) -> Path:
    rng = random.Random(seed)
    now = now or reference_now()
    projects = root / "claude" / "projects"
    for day in range(6, -1, -1):
        for _ in range(rng.randint(1, 3)):
            project = rng.choice(PROJECTS)
            start = now - timedelta(days=day, hours=rng.randint(1, 10))
            session, lines = claude_session(rng, start, project, rng.choice(CLAUDE_MODELS), rng.randint(8, 40))
            folder = projects / project
            folder.mkdir(parents=True, exist_ok=True)
            _write_log(folder / f"{session}.jsonl", lines)
            if rng.random() < 0.4:
                _, sub = claude_session(rng, start, project, "claude-haiku-4-5-20251001", rng.randint(3, 10),
                                        sidechain=True)
                (folder / session / "subagents").mkdir(parents=True, exist_ok=True)
                _write_log(folder / session / "subagents" / "agent-demo.jsonl", sub)
    for day in (5, 2, 0):
        t = now - timedelta(days=day, hours=3)
        sid, lines = codex_rollout(rng, t, rng.randint(5, 25))
        folder = root / "codex" / "sessions" / f"{t:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        _write_log(folder / f"rollout-{t:%Y-%m-%dT%H-%M-%S}-{sid}.jsonl", lines)
    return root
