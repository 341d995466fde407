#!/usr/bin/env python3
"""How long `nomira hook claude` keeps Claude Code waiting at the end of a turn.

Builds a session transcript of N calls (default 2,000: a long session) in a temp HOME, then runs
the hook as Claude Code does (a new process, payload on stdin, local store destination) R times:
the first run ships every call, each later run follows one new call appended to the transcript.
Prints wall time per run (process start to exit) and the hook's own time from hook.log.

    python tools/bench_hook.py --calls 2000 --runs 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSION = "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"


def line(i: int) -> str:
    return json.dumps({"parentUuid": f"p{i}", "isSidechain": False, "userType": "external", "cwd": "/home/ana/src/shop",
                       "sessionId": SESSION, "version": "2.0.37", "gitBranch": "main", "type": "assistant",
                       "uuid": f"u{i}", "timestamp": f"2025-11-03T{10 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:"
                                                     f"{i % 60:02d}.000Z", "requestId": f"req_{i:06d}",
                       "message": {"id": f"msg_{i:06d}", "type": "message", "role": "assistant",
                                   "model": "claude-sonnet-4-5-20250929",
                                   "content": [{"type": "text", "text": "x" * 400}], "stop_reason": "end_turn",
                                   "usage": {"input_tokens": 4, "cache_creation_input_tokens": 100,
                                             "cache_read_input_tokens": 40000 + i, "output_tokens": 300}}}) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        transcript = home / ".claude" / "projects" / "-home-ana-src-shop" / f"{SESSION}.jsonl"
        transcript.parent.mkdir(parents=True)
        transcript.write_text("".join(line(i) for i in range(a.calls)))
        env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                   XDG_STATE_HOME=str(home / ".state"), XDG_CACHE_HOME=str(home / ".cache"),
                   XDG_DATA_HOME=str(home / ".data"), NOMIRA_DB=str(home / "n.db"), PYTHONPATH=str(ROOT))
        payload = json.dumps({"session_id": SESSION, "transcript_path": str(transcript), "cwd": "/home/ana/src/shop",
                              "permission_mode": "default", "hook_event_name": "Stop", "stop_hook_active": False})
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        bare = time.perf_counter() - t0
        walls = []
        for r in range(a.runs):
            if r:
                with open(transcript, "a") as fh:
                    fh.write(line(a.calls + r))
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nomira", "hook", "claude"], input=payload.encode(), env=env,
                           cwd=ROOT, check=True)
            walls.append(time.perf_counter() - t0)
        log = (home / ".state" / "nomira" / "hook.log").read_text().splitlines()
        inner = [float(l.rsplit(" in ", 1)[1].split()[0]) for l in log]
        shipped = [json.loads(l.split("claude: ", 1)[1].rsplit(" in ", 1)[0])["new_events"] for l in log]
        print(f"transcript: {a.calls} calls, {transcript.stat().st_size / 1e6:.1f} MB; bare interpreter start "
              f"{bare:.3f} s")
        for r, (w, i, n) in enumerate(zip(walls, inner, shipped)):
            print(f"run {r + 1}: wall {w:.3f} s, hook {i:.3f} s, shipped {n}")
        if len(walls) > 1:
            print(f"incremental runs: median wall {statistics.median(walls[1:]):.3f} s, "
                  f"median hook {statistics.median(inner[1:]):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
