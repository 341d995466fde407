"""Command line: a thin layer over sources -> pricing -> reports.

    nomira                      report on local Claude Code + Codex logs
    nomira --json               the same as JSON, full precision
    nomira --path DIR_OR_FILE   report on specific transcripts
    nomira --demo               generate realistic sample logs and report on them
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sqlite3
import sys
import tempfile
from pathlib import Path

from nomira import __version__, scancache
from nomira.reports.render import Style, use_color
from nomira.scancache import ScanCache
from nomira.sources import codex, collect, discover, fingerprint

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
    p.add_argument("--no-cache", action="store_true",
                   help="ignore the incremental scan cache ($XDG_CACHE_HOME/nomira) and read every file whole")
    p.add_argument("--timezone", default=None, help="IANA timezone for dates (default: local)")


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


class Run:
    """What one command reads: the input files, the cache, and (lazily) the priced events."""

    def __init__(self, args, env=os.environ):
        self.args, self.env = args, env
        explicit = args.path
        if args.demo:
            from nomira.demo import write_demo
            root = Path(tempfile.mkdtemp(prefix="nomira-demo-"))
            write_demo(root)
            explicit = [root]
            print(f"nomira: demo history written to {root}", file=sys.stderr)
        self.selected = SOURCE_CHOICES[args.source]
        try:
            self.found = discover(self.selected, explicit, env)
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from exc
        self.cache = None if (args.no_cache or args.demo) else self._open_cache()
        self._table = None

    @property
    def table(self):
        if self._table is None:
            from nomira.pricing import load_bundled
            self._table = load_bundled()
        return self._table

    def _open_cache(self) -> ScanCache | None:
        try:
            return ScanCache(scancache.default_path(self.env))
        except (sqlite3.Error, OSError) as exc:
            print(f"nomira: cache unavailable ({exc}); reading every file", file=sys.stderr)
            return None

    def cached_output(self, *parts) -> tuple[str | None, str | None]:
        """(cached output, key) for a command whose output depends only on the inputs and `parts`."""
        if self.cache is None:
            return None, None
        from nomira.pricing.table import table_digest
        key = scancache.output_key([*parts, table_digest(), os.environ.get("TZ")], fingerprint(self.found))
        hit = self.cache.get_output(key)
        return (hit.decode() if hit is not None else None), key

    def store_output(self, key: str | None, text: str) -> None:
        if self.cache is not None and key is not None:
            self.cache.put_output(key, text.encode())

    def collect(self):
        return collect(self.selected, env=self.env, cache=self.cache, workers=os.cpu_count() or 1,
                       progress=True, found=self.found)

    def priced(self, events):
        """(event, cost) pairs, lazily: costs are aggregated as they are made, never all held."""
        from nomira.pricing.engine import Pricer
        pricer = Pricer(self.table)
        return ((e, pricer(e)) for e in events)


def cmd_report(args) -> int:
    from nomira.reports import summary
    from nomira.reports.aggregate import regime_of
    from nomira.reports.text import render_report
    run = Run(args)
    color = use_color() and not args.no_color
    cached, key = run.cached_output("report", args.json, args.regime, color,
                                    [str(p) for p in args.path or []], args.source)
    if cached is not None:
        sys.stdout.write(cached)
        return 0
    collected = run.collect()
    events = collected.events
    regime = regime_of({e.source for e in events}, None if args.regime == "auto" else args.regime)
    allowance = codex.latest_allowance(collected.states.get("codex", []))
    allowance_dict = None
    if allowance:
        as_of, a = allowance
        allowance_dict = {"as_of": as_of, **{k: getattr(a, k) for k in a.__dataclass_fields__}}
    report = summary.build(run.priced(events), regime, collected.stats.as_dict(), allowance_dict,
                           run.table.generated)
    if args.json:
        text = json.dumps(report, indent=2) + "\n"
    else:
        if not events:
            print("nomira: no usage found (looked for Claude Code and Codex logs; try --path or --demo)",
                  file=sys.stderr)
        text = render_report(report, Style(color)) + "\n"
    sys.stdout.write(text)
    if events:
        run.store_output(key, text)
    return 0


def main(argv: list[str] | None = None) -> int:
    # A report run allocates hundreds of thousands of small containers and no cycles
    # on its hot path: the cyclic collector would only rescan them (~12% of a cold run).
    gc.disable()
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
