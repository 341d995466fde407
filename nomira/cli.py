"""Command line: a thin layer over sources -> pricing -> reports.

    nomira                      report on local Claude Code + Codex logs
    nomira daily|monthly|session|blocks   time reports
    nomira forensics | optimize          waste signals, cost by tool and file
    nomira --json               any of them as JSON, full precision
    nomira --demo               generate realistic sample logs and report on them
"""
from __future__ import annotations

import argparse
import gc
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Callable

from nomira import __version__, scancache
from nomira.reports.render import Style, use_color
from nomira.sources import collect, discover, fingerprint

SOURCE_CHOICES = {"claude": ("claude",), "codex": ("codex",), "opencode": ("opencode",),
                  "all": ("claude", "codex", "opencode")}


class UserError(Exception):
    """A problem the user can fix; printed as one `nomira: ...` line."""


def common_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("input and output")
    g.add_argument("--json", action="store_true", help="machine-readable output (full precision)")
    g.add_argument("--path", action="append", type=Path, metavar="PATH",
                   help="read these transcript files/folders instead of the default locations (repeatable)")
    g.add_argument("--source", choices=sorted(SOURCE_CHOICES), default="all", help="which agent logs to read")
    g.add_argument("--since", metavar="YYYYMMDD", help="only usage on or after this day")
    g.add_argument("--until", metavar="YYYYMMDD", help="only usage on or before this day")
    g.add_argument("--timezone", "-z", default=None, help="IANA timezone for days and months (default: local)")
    g.add_argument("--regime", choices=["auto", "subscription", "api"], default="auto",
                   help="subscription: dollars are API-equivalent value; api: dollars are the bill")
    g.add_argument("--no-color", action="store_true", help="plain output (NO_COLOR is respected too)")
    g.add_argument("--demo", action="store_true", help="generate a realistic sample history and report on it")
    g.add_argument("--no-cache", action="store_true",
                   help="ignore the incremental scan cache ($XDG_CACHE_HOME/nomira) and read every file whole")
    return p


COMMANDS = {
    # name: (module in nomira.commands, help, example)
    "report": ("report", "cost per session and model, with totals (the default)", "nomira report --json"),
    "daily": ("periods", "usage and cost per day", "nomira daily --since 20261101 --breakdown"),
    "monthly": ("periods", "usage and cost per month, with value vs plan", "nomira monthly --plan claude-max-5x"),
    "session": ("periods", "usage and cost per session", "nomira session --source codex"),
    "blocks": ("periods", "5-hour billing windows, burn rate and projection", "nomira blocks --active"),
    "forensics": ("forensics", "per-turn costs and waste signals (cache rebuilds, sub-agents)",
                  "nomira forensics --session 3f9a6c2e"),
    "optimize": ("optimize", "cost by tool and by file read, with savings estimates",
                 "nomira optimize --project -home-ana-src-shop"),
    "ship": ("ship", "send usage-only events to a store or a remote collector",
             "nomira ship --remote https://nomira.example.com --token $NOMIRA_TOKEN --watch"),
    "export": ("ship", "write usage-only events to a JSON file (for a collector's /import)",
               "nomira export events.json --tenant acme"),
    "import": ("ship", "load an exported events.json into a store", "nomira import events.json --db team.db"),
    "replay": ("ship", "rebuild canonical events from the raw events a store received", "nomira replay --db team.db"),
    "tenant": ("ship", "create a tenant (prints its API key once) or list tenants", "nomira tenant create acme"),
    "spool": ("spool", "what `ship --remote` has queued and its dead letters: status, retry after a fix, drop",
              "nomira spool retry --remote https://nomira.example.com"),
    "serve": ("serve", "run the collector: ingest API, import, team dashboard", "nomira serve --port 8787"),
    "prices": ("prices", "rates in force and their source; --update refreshes feeds, --diff compares",
               "nomira prices claude-opus-4-7"),
}
# The seed's flags, kept as aliases of the subcommands: flag -> (command words, takes a value?)
FLAG_ALIASES = {"--ship": (["ship"], False), "--export": (["export"], True), "--replay": (["replay"], False),
                "--serve": (["serve"], False), "--create-tenant": (["tenant", "create"], True),
                "--list-tenants": (["tenant", "list"], False), "--update-prices": (["prices", "--update"], False)}


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """Every command gets a help line; only the `selected` one imports its module for its options
    (so a warm `nomira --json` never imports the collector or the shipper)."""
    common = common_options()
    p = argparse.ArgumentParser(
        prog="nomira",
        description="Where the money for AI coding assistants went: cost per session, project, model "
                    "and token type, from local agent logs. Usage only, never content.",
        epilog="examples:\n  nomira\n  nomira --json --path ~/.claude/projects/my-proj\n  nomira daily "
               "--breakdown\n  nomira --compare --by-project\n  nomira --demo",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"nomira {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    import importlib
    for name, (module, help_text, example) in COMMANDS.items():
        sp = sub.add_parser(name, parents=[common], help=help_text, description=help_text,
                            epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == selected:
            importlib.import_module(f"nomira.commands.{module}").add_arguments(name, sp)
    return p


def with_default_command(argv: list[str]) -> list[str]:
    """`nomira --json` means `nomira report --json`: the seed's flags stay valid, in any order."""
    if argv[:1] and argv[0] in ("-h", "--help", "--version"):
        return argv
    for i, a in enumerate(argv):
        if a in FLAG_ALIASES:
            words, takes_value = FLAG_ALIASES[a]
            rest = argv[:i] + argv[i + 1 + takes_value:]
            return [*words, *argv[i + 1:i + 1 + takes_value], *rest]
        prev = argv[i - 1] if i else ""
        is_value = prev.startswith("-") and "=" not in prev and prev not in FLAGS
        if a in COMMANDS and not is_value:
            return [a, *argv[:i], *argv[i + 1:]]
    return ["report", *argv]


FLAGS = {"--json", "--no-color", "--demo", "--no-cache", "--breakdown", "--compare", "--by-project", "--active",
         "--watch", "--update", "--force", "--diff"}


class Run:
    """What one command reads: the input files, the cache, and (lazily) the priced events."""

    def __init__(self, args, env=os.environ):
        self.args, self.env = args, env
        explicit = args.path
        if args.demo:
            import tempfile

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
        self.seen_sources: set[str] = set()
        self.color = use_color() and not args.no_color
        self.style = Style(self.color)
        from nomira import dates
        try:
            self.tz = dates.local_tz(args.timezone)
            self.since = dates.parse_day(args.since) if args.since else None
            self.until = dates.parse_day(args.until) if args.until else None
        except ValueError as exc:
            raise UserError(str(exc)) from exc

    @property
    def table(self):
        if self._table is None:
            from nomira.pricing.table import resolved
            try:
                self._table = resolved(self.env)
            except ValueError as exc:
                raise UserError(str(exc)) from exc
        return self._table

    def _open_cache(self) -> scancache.ScanCache | None:
        try:
            return scancache.ScanCache(scancache.default_path(self.env))
        except (sqlite3.Error, OSError) as exc:
            print(f"nomira: cache unavailable ({exc}); reading every file", file=sys.stderr)
            return None

    def cached_output(self, *parts) -> tuple[str | None, str | None]:
        """(cached output, key) for a command whose output depends only on the inputs and `parts`."""
        if self.cache is None:
            return None, None
        from nomira.pricing.table import resolved_digest
        a = self.args
        key = scancache.output_key(
            [*parts, a.json, a.regime, self.color, [str(p) for p in a.path or []], a.source, a.since, a.until,
             str(self.tz), resolved_digest(self.env), os.environ.get("TZ")], fingerprint(self.found))
        hit = self.cache.get_output(key)
        return (hit.decode() if hit is not None else None), key

    def store_output(self, key: str | None, text: str) -> None:
        if self.cache is not None and key is not None:
            self.cache.put_output(key, text.encode())

    def collect(self):
        return collect(self.selected, env=self.env, cache=self.cache, workers=os.cpu_count() or 1,
                       progress=True, found=self.found)

    def priced(self, events, seen: set | None = None):
        """(event, cost) pairs, lazily: costs are aggregated as they are made, never all held.
        Notes each event's source in `seen` (default: `seen_sources`), for `regime()`."""
        from nomira.pricing.engine import Pricer
        pricer = Pricer(self.table)
        seen = self.seen_sources if seen is None else seen
        for e in events:
            seen.add(e.source)
            yield e, pricer(e)

    def regime(self, events=None) -> str:
        """The cost regime of `events`, or of every event priced so far."""
        from nomira.reports.aggregate import regime_of
        sources = self.seen_sources if events is None else {e.source for e in events}
        return regime_of(sources, self.regime_override)

    @property
    def regime_override(self) -> str | None:
        return None if self.args.regime == "auto" else self.args.regime

    def in_range(self, events):
        """`events` within --since/--until (local days)."""
        if self.since is None and self.until is None:
            return events
        from nomira.reports.periods import in_range
        since, until, tz = self.since, self.until, self.tz
        return (e for e in events if in_range(e.occurred_at.astimezone(tz).date(), since, until))

    def fold(self, collected, fold: Callable, merge: Callable):
        """`fold` of the priced in-range events, a bounded group at a time (in worker processes
        when the history was spilled), partials merged with `merge`."""
        self.table  # noqa: B018 - resolve prices once, before any worker forks

        def task(events):
            seen: set[str] = set()
            return fold(self.priced(self.in_range(events), seen)), seen

        def both(a, b):
            return merge(a[0], b[0]), a[1] | b[1]
        result = collected.fold(task, both, os.cpu_count() or 1)
        partial, seen = result if result is not None else task([])
        self.seen_sources |= seen
        return partial

    def no_usage(self) -> None:
        print("nomira: no usage found (looked for Claude Code and Codex logs; try --path or --demo)",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    # A report run allocates hundreds of thousands of small containers and no cycles
    # on its hot path: the cyclic collector would only rescan them (~12% of a cold run).
    gc.disable()
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = with_default_command(list(sys.argv[1:] if argv is None else argv))
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"nomira: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
