#!/usr/bin/env python3
"""Differential check: random histories full of the known traps, totals compared with ccusage.

Claude Code: streaming snapshots, resumed-session copies, sidechain replays under a new
requestId, sub-agent calls nested in `progress` lines (with and without
the sub-agent's own file), calls without requestId, <synthetic> lines, malformed lines, non-semver versions,
5m and 1h cache writes. Codex: repeated totals, counter resets, forked copies. Requests stay
under 200k input tokens (where Nomira bills the whole request at the long-context tier and
ccusage only the excess, by design) and use priced models only.

    python tools/diff_ccusage.py --seeds 20 --ccusage /path/to/ccusage

`--models` compares model-name resolution instead: one Claude Code call per model (all four token
types, under 200k), each model on its own day, so a mismatching day names the model. Without a list it
uses THIRD_PARTY: spellings that reach Claude Code through Anthropic-compatible endpoints, Bedrock and
Vertex ids, and OpenRouter/OpenCode vendor prefixes.

    python tools/diff_ccusage.py --models --ccusage /path/to/ccusage
    python tools/diff_ccusage.py --models "deepseek-chat,glm-4.6" --ccusage /path/to/ccusage
    python tools/diff_ccusage.py --fixtures --ccusage /path/to/ccusage   # the other agents, on tests/fixtures

`--fixtures` runs ccusage and Nomira side by side on the test fixtures of every other agent
ccusage reads (the same files, through each tool's location variable) and prints the daily
totals of both; where they differ on purpose, the reason is printed (docs/SOURCES.md).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-7", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805"]
CODEX_MODELS = ["gpt-5-codex", "gpt-5.1-codex", "gpt-5"]
THIRD_PARTY = [
    "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4.5", "claude-sonnet-4-5@20250929",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "apac.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "gpt-5.1-codex", "gpt-5-1-codex-2025-11-13", "openai/gpt-5-codex", "glm-4.6", "z-ai/glm-4.6", "glm-4.7",
    "qwen3-coder-plus", "deepseek-chat", "deepseek-reasoner", "kimi-k2-0905-preview", "grok-code-fast-1",
    "gemini-2.5-pro", "gemini-3-pro-preview", "gemini-3-pro", "openai/gpt-5", "o3", "acme-llm-9",
]


def _d(o) -> str:
    return json.dumps(o, separators=(",", ":"))


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def claude_line(rng, sess, t, mid, rid, model, usage, side=False, version="2.0.37"):
    d = {"parentUuid": "p", "isSidechain": side, "userType": "external", "cwd": "/w/p", "sessionId": sess,
         "version": version, "gitBranch": "main", "type": "assistant", "uuid": f"u{rng.getrandbits(40)}",
         "timestamp": _iso(t)}
    if rid is not None:
        d["requestId"] = rid
    d["message"] = {"id": mid, "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": "x"}], "stop_reason": None, "stop_sequence": None,
                    "usage": usage}
    return _d(d)


def progress_line(rng, sess, entry: dict) -> str:
    """A parent-transcript `progress` line nesting a sub-agent's assistant entry under `data.message`."""
    nested = {k: entry[k] for k in ("type", "timestamp", "requestId", "isSidechain", "uuid", "message") if k in entry}
    return _d({"parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": "/w/p", "sessionId": sess,
               "version": "2.1.3", "type": "progress", "data": {"type": "agent_progress", "agentId": "x",
                                                                "message": nested},
               "toolUseID": f"agent_msg_{rng.getrandbits(32)}", "parentToolUseID": "toolu_1",
               "uuid": f"u{rng.getrandbits(40)}", "timestamp": entry["timestamp"]})


def claude_history(root: Path, rng: random.Random, without_request_id: float = 0.1) -> None:
    base = datetime(2026, 11, 10, 8, tzinfo=timezone.utc)
    sessions = []
    for s in range(rng.randint(3, 8)):
        sess = f"{rng.getrandbits(64):016x}-s{s}"
        project = root / "projects" / f"-w-p{rng.randint(1, 3)}"
        project.mkdir(parents=True, exist_ok=True)
        t = base + timedelta(hours=rng.randint(0, 120))
        lines, calls = [], []
        for i in range(rng.randint(5, 40)):
            t += timedelta(seconds=rng.randint(5, 900))
            model = rng.choice(MODELS)
            mid = f"msg_{rng.getrandbits(48):012x}"
            rid = None if rng.random() < without_request_id else f"req_{rng.getrandbits(48):012x}"
            write = rng.randint(0, 20000)
            h1 = rng.choice([0, 0, write])
            usage = {"input_tokens": rng.randint(1, 300), "cache_creation_input_tokens": write,
                     "cache_read_input_tokens": rng.randint(0, 150000),
                     "cache_creation": {"ephemeral_5m_input_tokens": write - h1, "ephemeral_1h_input_tokens": h1},
                     "output_tokens": rng.randint(1, 3000), "service_tier": "standard"}
            for k in range(rng.randint(1, 3)):  # streaming snapshots, the last one complete
                partial = dict(usage, output_tokens=usage["output_tokens"] if k == 0 else rng.randint(1, 5))
                lines.insert(len(lines) - k if k else len(lines),
                             claude_line(rng, sess, t + timedelta(milliseconds=k), mid, rid, model, partial))
            calls.append((t, mid, rid, model, usage))
            r = rng.random()
            if r < 0.05:
                lines.append(claude_line(rng, sess, t, "msg_syn" + mid, None, "<synthetic>",
                                         {"input_tokens": 0, "output_tokens": 0}))
            elif r < 0.08:
                lines.append('{"type":"assistant","message":{"id":"' + mid + '","usage":{"input_tokens":')
            elif r < 0.10:
                lines.append(claude_line(rng, sess, t, f"msg_v{mid}", "req_v", model, usage, version="dev"))
        (project / f"{sess}.jsonl").write_text("\n".join(lines) + "\n")
        sessions.append((project, sess, calls))
        progress = []  # sub-agent calls the parent logs nested in `progress` lines
        if rng.random() < 0.5 and calls:  # sub-agent file: replays of parent calls + its own calls
            sub = project / sess / "subagents"
            sub.mkdir(parents=True, exist_ok=True)
            out = []
            for t0, mid, rid, model, usage in rng.sample(calls, k=min(len(calls), rng.randint(1, 4))):
                out.append(claude_line(rng, sess, t0 + timedelta(seconds=1), mid, f"req_replay{rng.getrandbits(32)}",
                                       model, dict(usage, cache_read_input_tokens=usage["cache_read_input_tokens"]
                                                   + 5000), side=True))
            for _ in range(rng.randint(1, 5)):
                own = claude_line(rng, sess, t0 + timedelta(seconds=30), f"msg_{rng.getrandbits(48):012x}",
                                  f"req_{rng.getrandbits(48):012x}", "claude-haiku-4-5-20251001",
                                  {"input_tokens": 10, "output_tokens": rng.randint(1, 400),
                                   "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 100}, side=True)
                out.append(own)
                if rng.random() < 0.5:  # also seen nested in the parent's progress line
                    progress.append(progress_line(rng, sess, json.loads(own)))
            (sub / "agent-x.jsonl").write_text("\n".join(out) + "\n")
        elif rng.random() < 0.5 and calls:  # the sub-agent's file is missing: progress lines are the only record
            for _ in range(rng.randint(1, 3)):
                t0 = calls[-1][0] + timedelta(seconds=rng.randint(1, 60))
                own = claude_line(rng, sess, t0, f"msg_{rng.getrandbits(48):012x}", f"req_{rng.getrandbits(48):012x}",
                                  rng.choice(MODELS), {"input_tokens": rng.randint(1, 50), "output_tokens":
                                                       rng.randint(1, 900), "cache_read_input_tokens": 2000,
                                                       "cache_creation_input_tokens": 300}, side=True)
                progress.append(progress_line(rng, sess, json.loads(own)))
        if progress:
            with open(project / f"{sess}.jsonl", "a") as f:
                f.write("\n".join(progress) + "\n")
    for project, sess, calls in sessions:  # resumed sessions copy earlier calls into a new file
        if rng.random() < 0.4 and calls:
            copied = [claude_line(rng, sess + "r", t, mid, rid, model, usage)
                      for t, mid, rid, model, usage in calls[: rng.randint(1, len(calls))]]
            (project / f"{sess}-resumed.jsonl").write_text("\n".join(copied) + "\n")


def codex_history(root: Path, rng: random.Random) -> None:
    keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]
    for s in range(rng.randint(2, 5)):
        t = datetime(2026, 11, 12, 9, tzinfo=timezone.utc) + timedelta(hours=rng.randint(0, 96))
        sid = f"0199{rng.getrandbits(96):024x}"
        lines = [_d({"timestamp": _iso(t), "type": "session_meta", "payload": {"id": sid, "cwd": "/w/c",
                                                                               "source": "cli"}}),
                 _d({"timestamp": _iso(t), "type": "turn_context", "payload": {"model": rng.choice(CODEX_MODELS)}})]
        total = [0, 0, 0, 0, 0]
        for _ in range(rng.randint(3, 25)):
            t += timedelta(seconds=rng.randint(10, 600))
            inp = rng.randint(1000, 60000)
            last = [inp, rng.randint(0, inp), rng.randint(10, 3000), 0, 0]
            last[3] = rng.randint(0, last[2])
            last[4] = last[0] + last[2]
            if rng.random() < 0.1:  # counter reset
                total = list(last)
            else:
                total = [a + b for a, b in zip(total, last)]
            ev = {"timestamp": _iso(t), "type": "event_msg", "payload": {"type": "token_count", "info": {
                "total_token_usage": dict(zip(keys, total)), "last_token_usage": dict(zip(keys, last))}}}
            lines.append(_d(ev))
            if rng.random() < 0.3:  # a refresh repeats the same totals
                ev["timestamp"] = _iso(t + timedelta(seconds=1))
                lines.append(_d(ev))
            if rng.random() < 0.1:
                lines.append(_d({"timestamp": _iso(t), "type": "turn_context",
                                 "payload": {"model": rng.choice(CODEX_MODELS)}}))
        folder = root / "sessions" / f"{t:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"rollout-{t:%Y-%m-%dT%H-%M-%S}-{sid}.jsonl"
        (folder / name).write_text("\n".join(lines) + "\n")
        if rng.random() < 0.3:  # a fork copies the history so far
            (folder / name.replace(sid, sid[:-4] + "fork")).write_text("\n".join(lines) + "\n")
        if rng.random() < 0.4:  # a thread_spawn sub-agent: a burst of the parent's token lines in its spawn second
            spawn = t + timedelta(seconds=5)
            sub_id = sid[:-4] + "sub0"
            copied = [json.loads(x) for x in lines if '"token_count"' in x][-rng.randint(2, 4):]
            out = [_d({"timestamp": _iso(spawn), "type": "session_meta", "payload": {
                "id": sub_id, "cwd": "/w/c", "source": {"subagent": {"thread_spawn": {"parent_thread_id": sid}}}}}),
                _d({"timestamp": _iso(spawn), "type": "turn_context", "payload": {"model": "gpt-5-codex"}})]
            for k, ev in enumerate(copied):
                ev["timestamp"] = _iso(spawn + timedelta(milliseconds=10 * k))
                out.append(_d(ev))
            sub_total = list(copied[-1]["payload"]["info"]["total_token_usage"].values())
            ts = spawn
            for _ in range(rng.randint(1, 6)):
                ts += timedelta(seconds=rng.randint(5, 120))
                last = [rng.randint(500, 9000), 0, rng.randint(10, 900), 0, 0]
                last[1] = rng.randint(0, last[0])
                last[4] = last[0] + last[2]
                sub_total = [a + b for a, b in zip(sub_total, last)]
                out.append(_d({"timestamp": _iso(ts), "type": "event_msg", "payload": {"type": "token_count", "info": {
                    "total_token_usage": dict(zip(keys, sub_total)), "last_token_usage": dict(zip(keys, last))}}}))
            (folder / name.replace(sid, sub_id)).write_text("\n".join(out) + "\n")


def model_history(root: Path, models: list[str]) -> None:
    """One call per model, each on its own day (2026-01-01 + i), every token type, under 200k input."""
    project = root / "projects" / "-w-models"
    project.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    lines = []
    for i, model in enumerate(models):
        t = datetime(2026, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=i)
        usage = {"input_tokens": 1000, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 20000,
                 "cache_creation": {"ephemeral_5m_input_tokens": 3000, "ephemeral_1h_input_tokens": 0},
                 "output_tokens": 500, "service_tier": "standard"}
        lines.append(claude_line(rng, "models", t, f"msg_m{i}", f"req_m{i}", model, usage))
    (project / "models.jsonl").write_text("\n".join(lines) + "\n")


def compare_models(ccusage: str, models: list[str]) -> int:
    root = Path(tempfile.mkdtemp(prefix="nomira-models-"))
    model_history(root / "claude", models)
    env = dict(os.environ, CLAUDE_CONFIG_DIR=str(root / "claude"), CODEX_HOME=str(root / "none"), TZ="UTC",
               XDG_CACHE_HOME=str(root / "cache"))
    cc = totals([ccusage, "claude", "daily", "--offline", "--json", "-z", "UTC"], env)
    nm = totals([sys.executable, "-m", "nomira", "daily", "--json", "--source", "claude", "-z", "UTC", "--no-cache"],
                env)
    cc_days = {d["date"]: d.get("totalCost", d.get("costUSD")) or 0 for d in cc.get("daily", [])}
    nm_days = {d["date"]: d["cost_usd"] or 0 for d in nm["daily"]}
    bad = 0
    for i, model in enumerate(models):
        day = f"{datetime(2026, 1, 1) + timedelta(days=i):%Y-%m-%d}"
        a, b = cc_days.get(day, 0.0), nm_days.get(day, 0.0)
        same = abs(a - b) <= 1e-9
        bad += not same
        print(f"{model:<52} ccusage ${a:.6f}  nomira ${b:.6f}  {'ok' if same else 'DIFF'}")
    shutil.rmtree(root)
    print(f"{bad} of {len(models)} models priced differently")
    return 1 if bad else 0


def totals(cmd: list[str], env: dict) -> dict:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def daily_costs(cc: dict, nm: dict) -> tuple[dict, dict]:
    """{day: dollars} of a ccusage and of a Nomira `daily --json` output."""
    return ({d["date"]: d.get("totalCost", d.get("costUSD")) or 0 for d in cc.get("daily", [])},
            {d["date"]: d["cost_usd"] for d in nm["daily"]})


ROOT = Path(__file__).resolve().parent.parent
FX = ROOT / "tests" / "fixtures"
# agent: (ccusage command, location variables (read by both tools), nomira --source, known difference)
FIXTURE_AGENTS = {
    "gemini": ("gemini", {"GEMINI_DATA_DIR": FX / "gemini/.gemini/tmp"}, "gemini",
               "ccusage counts a legacy session-*.json and the .jsonl Gemini CLI migrates it to (same session "
               "and message ids) twice; Nomira once"),
    "qwen": ("qwen", {"QWEN_DATA_DIR": FX / "qwen/.qwen"}, "qwen",
             "ccusage bills promptTokenCount whole although it includes cachedContentTokenCount (cached tokens "
             "billed twice), adds thoughtsTokenCount to candidates that already hold them (OpenAI converter), "
             "and skips chats/archive/"),
    "amp": ("amp", {"AMP_DATA_DIR": FX / "amp"}, "amp", None),
    "copilot": ("copilot", {"COPILOT_HOME": FX / "copilot"}, "copilot", None),
    "droid": ("droid", {"DROID_SESSIONS_DIR": FX / "droid/sessions"}, "droid", None),
    "pi": ("pi", {"PI_AGENT_DIR": FX / "pi/sessions"}, "pi",
           "ccusage keys pi calls by session, so a forked session's copied entries count again; Nomira keys "
           "on the entry id"),
    "kimi": ("kimi", {"KIMI_DATA_DIR": FX / "kimi/.kimi"}, "kimi",
             "ccusage reads the model from config.json (absent: kimi-for-coding) where Kimi CLI writes "
             "config.toml (default_model -> gpt-4.1 here), and counts a repeated StatusUpdate of one message_id "
             "twice"),
    "goose": ("goose", {"GOOSE_PATH_ROOT": None}, "goose", None),
}


def fixture_diff(ccusage: str) -> int:
    """Daily totals of both tools on each agent's fixtures; differences without a known reason fail."""
    unexplained = 0
    for agent, (command, env_vars, source, reason) in FIXTURE_AGENTS.items():
        tmp = Path(tempfile.mkdtemp(prefix="nomira-fx-"))
        env = dict(os.environ, TZ="UTC", XDG_CACHE_HOME=str(tmp / "cache"), HOME=str(tmp))
        for var, path in env_vars.items():
            if path is None:  # Goose: a database built from Goose's schema by its test
                sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
                import test_sources_goose
                test_sources_goose.make_db(tmp / "goose" / "data" / "sessions")
                path = tmp / "goose"
            env[var] = str(path)
        cc = totals([ccusage, command, "daily", "--offline", "--json", "-z", "UTC"], env)
        nm = totals([sys.executable, "-m", "nomira", "daily", "--json", "--source", source, "-z", "UTC",
                     "--no-cache"], dict(env, PYTHONPATH=str(ROOT)))
        cc_days, nm_days = daily_costs(cc, nm)
        days = sorted(set(cc_days) | set(nm_days))
        same = all(abs(cc_days.get(k, 0) - nm_days.get(k, 0)) <= 1e-9 for k in days)
        print(f"{agent:<8} " + "  ".join(f"{k}: ccusage ${cc_days.get(k, 0):.6f} nomira ${nm_days.get(k, 0):.6f}"
                                         for k in days))
        if same:
            print("         equal")
        else:
            print(f"         differ: {reason or 'UNEXPLAINED'}")
            unexplained += reason is None
        shutil.rmtree(tmp)
    print(f"{unexplained} unexplained differences")
    return 1 if unexplained else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--ccusage", default=shutil.which("ccusage"))
    ap.add_argument("--without-request-id", type=float, default=0.0,
                    help="share of Claude calls logged without requestId (third-party endpoints). ccusage "
                         "20.0.24 counts each streaming snapshot of such a call; Nomira dedups on message.id "
                         "(shared/README.md), so expect differences when this is above 0")
    ap.add_argument("--models", nargs="?", const=",".join(THIRD_PARTY), default=None,
                    help="compare how each model name is priced (comma-separated; default: THIRD_PARTY)")
    ap.add_argument("--fixtures", action="store_true", help="compare the other agents on tests/fixtures instead")
    args = ap.parse_args(argv)
    if not args.ccusage:
        print("ccusage not found (npm install ccusage@20.0.24 @ccusage/ccusage-linux-x64@20.0.24)", file=sys.stderr)
        return 2
    if args.models is not None:
        return compare_models(args.ccusage, [m for m in args.models.split(",") if m])
    if args.fixtures:
        return fixture_diff(args.ccusage)
    bad = 0
    for seed in range(args.seeds):
        rng = random.Random(seed)
        root = Path(tempfile.mkdtemp(prefix="nomira-diff-"))
        claude_history(root / "claude", rng, args.without_request_id)
        codex_history(root / "codex", rng)
        env = dict(os.environ, CLAUDE_CONFIG_DIR=str(root / "claude"), CODEX_HOME=str(root / "codex"), TZ="UTC",
                   XDG_CACHE_HOME=str(root / "cache"))
        for agent, src in (("claude", "claude"), ("codex", "codex")):
            cc = totals([args.ccusage, agent, "daily", "--offline", "--json", "-z", "UTC"], env)
            nm = totals([sys.executable, "-m", "nomira", "daily", "--json", "--source", src, "-z", "UTC",
                         "--no-cache"], env)
            cc_days, nm_days = daily_costs(cc, nm)
            diff = {k: (cc_days.get(k), nm_days.get(k)) for k in set(cc_days) | set(nm_days)
                    if abs((cc_days.get(k) or 0) - (nm_days.get(k) or 0)) > 1e-9}
            status = "ok" if not diff else f"DIFF {diff}"
            bad += bool(diff)
            print(f"seed {seed:3d} {agent:<6} days {len(nm_days):2d} total ${sum(nm_days.values()):10.6f}  {status}")
        shutil.rmtree(root)
    print(f"{bad} mismatching runs")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
