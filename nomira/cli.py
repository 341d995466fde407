"""Command line: a thin layer over sources -> pricing -> reports.

    nomira                      report on local Claude Code + Codex logs
    nomira --json               the same as JSON, full precision
    nomira --path DIR_OR_FILE   report on specific transcripts
    nomira --demo               generate realistic sample logs and report on them
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

from nomira import __version__
from nomira.pricing import load_bundled, price_event
from nomira.reports import summary
from nomira.reports.aggregate import regime_of
from nomira.reports.render import Style, use_color
from nomira.reports.text import render_report
from nomira.sources import codex, collect

SOURCE_CHOICES = {"claude": ("claude",), "codex": ("codex",), "all": ("claude", "codex")}


class UserError(Exception):
    """A problem the user can fix; printed as one `nomira: ...` line."""


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output (full precision)")
    p.add_argument("--path", action="append", type=Path, metavar="PATH",
                   help="read these transcript files/folders instead of the default locations (repeatable)")
    p.add_argument("--source", choices=sorted(SOURCE_CHOICES), default="all", help="which agent logs to read")
    p.add_argument("--regime", choices=["auto", "subscription", "api"], default="auto",
                   help="subscription: dollars are API-equivalent value; api: dollars are the bill")
    p.add_argument("--no-color", action="store_true", help="plain output (NO_COLOR is respected too)")
    p.add_argument("--demo", action="store_true", help="generate a realistic sample history and report on it")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nomira",
        description="Where the money for AI coding assistants went: cost per session, project, model "
                    "and token type, from local agent logs. Usage only, never content.",
        epilog="examples:\n  nomira\n  nomira --json --path ~/.claude/projects/my-proj\n  nomira --demo",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"nomira {__version__}")
    add_common(p)
    p.set_defaults(func=cmd_report)
    return p


def load_priced(args, env=os.environ):
    """Sources -> events -> costs; returns (priced, collected)."""
    explicit = args.path
    if args.demo:
        from nomira.demo import write_demo
        root = Path(tempfile.mkdtemp(prefix="nomira-demo-"))
        write_demo(root)
        explicit = [root]
        if not args.json:
            print(f"nomira: demo history written to {root}", file=sys.stderr)
    try:
        collected = collect(SOURCE_CHOICES[args.source], explicit, env)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from exc
    table = load_bundled()
    priced = [(e, price_event(e, table)) for e in collected.events]
    return priced, collected, table


def cmd_report(args) -> int:
    priced, collected, table = load_priced(args)
    regime = regime_of({e.source for e, _ in priced}, None if args.regime == "auto" else args.regime)
    allowance = codex.latest_allowance(collected.states.get("codex", []))
    allowance_dict = None
    if allowance:
        as_of, a = allowance
        allowance_dict = {"as_of": as_of, **{k: getattr(a, k) for k in a.__dataclass_fields__}}
    report = summary.build(priced, regime, collected.stats.as_dict(), allowance_dict, table.generated)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if not priced:
            print("nomira: no usage found (looked for Claude Code and Codex logs; try --path or --demo)",
                  file=sys.stderr)
        print(render_report(report, Style(use_color() and not args.no_color)))
    return 0


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"nomira: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
