"""`nomira capture -- <command...>`: run a headless agent, pass its output through, record its usage.

The command's stdout is copied to ours as it arrives (chunk by chunk, byte for byte) and read
line by line for usage (nomira/capture/agents.py); its stdin and stderr are its own, untouched.
Usage-only events go to the store (--db) or through the spool to a collector (--remote), via the
same ledger and validation as `nomira ship`. The exit status is the command's (128+N for a signal).

Meant for CI and other ephemeral machines: the agents also keep their own transcript of the run
(Claude Code unless --no-session-persistence, Codex's rollout), and `nomira ship` of that same
machine's logs would count the run a second time under another identity.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from nomira.cli import UserError

MAX_LINE = 64 << 20  # a longer line is passed through but not parsed (counted)
CHUNK = 1 << 16


def add_arguments(name, p) -> None:
    import argparse
    p.add_argument("--db", type=Path, default=None, help="SQLite store (default $XDG_DATA_HOME/nomira/nomira.db)")
    p.add_argument("--remote", metavar="URL", help="send to a collector (through the on-disk spool)")
    p.add_argument("--token", default=os.environ.get("NOMIRA_TOKEN"), help="collector API key ($NOMIRA_TOKEN)")
    p.add_argument("--developer", default=None,
                   help="developer tag (default: the CI's actor, else your login name)")
    p.add_argument("--tenant", default=None, help="tenant tag (a remote collector forces its own)")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="business tag (repeatable)")
    p.add_argument("--regime", choices=["auto", "subscription", "api"], default="auto",
                   help="api: the run was billed per token (an API key); default: the agent's plan")
    p.add_argument("--json", action="store_true", help="the capture summary as JSON (on stderr)")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the agent command to run")
    p.set_defaults(func=cmd_capture)


def run_teed(argv: list[str], feed, out=None) -> int:
    """Run `argv`, copy its stdout to `out` as it comes, hand each complete line to `feed`."""
    out = out if out is not None else sys.stdout.buffer
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, bufsize=0)
    except FileNotFoundError:
        raise UserError(f"capture: command not found: {argv[0]}") from None
    except PermissionError:
        raise UserError(f"capture: cannot run {argv[0]}: permission denied") from None
    previous = signal.signal(signal.SIGTERM, lambda sig, _f: proc.send_signal(sig))  # CI cancels with TERM
    pending = b""
    skipped = 0
    try:
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            out.write(chunk)
            out.flush()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                feed(line)
            if len(pending) > MAX_LINE:
                pending, skipped = b"", skipped + 1
        if pending and len(pending) <= MAX_LINE:
            feed(pending)
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 128 - code if code < 0 else code


def cmd_capture(args) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise UserError("capture needs a command after --, e.g. nomira capture -- claude -p 'fix it' "
                        "--output-format json")
    from nomira.capture import agents, ci
    from nomira.commands.ship import _remote, _tags, print_result
    _remote(args)  # a bad URL fails before the agent runs (and spends)
    labels = ci.labels(os.environ)
    if not args.developer and labels.get("actor"):
        args.developer = labels["actor"]
    tags = {**ci.tags(labels), **_tags(args)}
    cap = agents.Capture(codex_model=agents.codex_model(argv, os.environ), project=tags.get("project", ""))
    code = run_teed(argv, cap.feed)
    cap.finish()
    try:
        result = record(args, cap, tags, labels)
    except UserError as exc:  # the run happened: its status stands, the recording problem is said
        print(f"nomira: capture: {exc}", file=sys.stderr)
        return code
    if args.json:
        from nomira.reports.money import stamp
        print(json.dumps(stamp(result)), file=sys.stderr)
    elif result["delivery"] is not None:
        print_result(result["delivery"])
    return code


def record(args, cap, tags: dict, labels: dict) -> dict:
    from nomira.commands.ship import deliver
    from nomira.pricing.engine import Pricer
    from nomira.pricing.feed import resolved
    from nomira.reports.aggregate import event_regime
    from nomira.ledger.ship import validated
    from nomira.ledger.wire import to_wire
    summary = {"events": len(cap.events), "malformed_lines": cap.malformed, "ci": labels, "delivery": None,
               "models": sorted({e.model for e in cap.events})}
    if not cap.events:
        print("nomira: capture: no usage found in the command's output (read: claude -p --output-format "
              "json|stream-json, codex exec --json, gemini --output-format json); nothing recorded", file=sys.stderr)
        return summary
    pricer = Pricer(resolved())
    override = None if args.regime == "auto" else args.regime
    wires = []
    for e in cap.events:
        if labels.get("run_id") and e.request_id:
            e.request_id = f"{labels['run_id']}:{e.request_id}"[:128]
        w = to_wire(e, pricer(e), event_regime(e.source, override), tags)
        w["turn_id"] = e.request_id  # the identity of a run's usage row (no message id in these formats)
        wires.append(w)
    ok, refused = validated(wires)
    for reason, n in sorted(refused.items()):
        print(f"nomira: capture: {n} event(s) held back, outside the usage event schema: {reason}", file=sys.stderr)
    summary["delivery"] = deliver(args, ok)
    summary["tokens"] = {k: sum(w["tokens"][k] for w in ok) for k in ("input", "output", "cache_read",
                                                                      "cache_write_5m", "cache_write_1h")}
    return summary
