"""Command line: a thin layer over sources -> pricing -> reports.

    nomira                      report on local Claude Code + Codex logs
    nomira daily|monthly|session|blocks   time reports
    nomira forensics | optimize          waste signals, cost by tool and file
    nomira --json               any of them as JSON, full precision
    nomira --demo               generate realistic sample logs and report on them
"""
from __future__ import annotations

import gc
import os
import sys

from nomira import __version__
from nomira.sources import behind, scancache

# The rest is imported where used: a run that replays a finished output (scancache.quick_replay)
# starts nothing else.

SOURCE_CHOICES = {"claude": ("claude",), "codex": ("codex",), "opencode": ("opencode",),
                  "all": ("claude", "codex", "opencode")}
NO_LOCAL_DATA = {"cursor": "nomira.sources.cursor_admin"}  # listed sources whose local data has no per-call usage
# Agents added by issue 22: one choice each, all of them in "all".
for _name in ("gemini", "qwen", "amp", "copilot", "goose", "kimi", "droid", "pi", "cline", "crush"):
    SOURCE_CHOICES[_name] = (_name,)
    SOURCE_CHOICES["all"] += (_name,)
# Agents added by issue 27.
for _name in ("openhands", "aider", "zed", "kilo", "mux", "gptme", "vibe", "openclaw", "omp", "prime", "hermes", "lmstudio", "kimi_code", "poolside"):
    SOURCE_CHOICES[_name] = (_name,)
    SOURCE_CHOICES["all"] += (_name,)
for _name in ("unsloth", "jcode", "kimchi", "gajae", "antigravity_cli", "visualstudio_copilot", "deepseek_harness", "aside"):  # issue 27, s27c
    SOURCE_CHOICES[_name] = (_name,)
    SOURCE_CHOICES["all"] += (_name,)
for _name in ("qclaw", "kimi_work", "mimocode", "icodemate", "openclaude", "cowork", "traex", "shelley", "zcode", "posit", "qoder", "vscode_copilot", "grok", "senpi"):  # issue 27, second pass
    SOURCE_CHOICES[_name] = (_name,)
    SOURCE_CHOICES["all"] += (_name,)
for _name in ("augure_code", "augure_desktop", "evener", "workbuddy", "opencodereview", "codebuddy",  # issue 27, s27d
              "fx", "cherry", "reasonix", "muse", "cherry_pi", "commandcode", "trae_agent"):  # issue 27, s27e
    SOURCE_CHOICES[_name] = (_name,)
    SOURCE_CHOICES["all"] += (_name,)


class UserError(Exception):
    """A problem the user can fix; printed as one `nomira: ...` line (exit 2: the command line is wrong)."""

    status = 2


class Failure(UserError):
    """The command line is fine but something it names is not (a store, a port, a folder): exit 1."""

    status = 1


# Which shared options each command reads: its help lists only those, and any other is a usage error.
REPORTS = ("report", "daily", "monthly", "session", "blocks", "forensics", "optimize")
OPTION_SETS = {
    "json": (*REPORTS, "ship", "import", "replay", "tenant", "prices", "cursor", "spool", "sources", "clients",
             "hooks", "opencode", "migrate", "prune"),
    "input": (*REPORTS, "ship", "export", "mcp"),
    "terminal": (*REPORTS, "sources", "clients"),
}
OPTION_DEFAULTS = {"json": {"json": False},
                   "input": {"path": None, "source": "all", "since": None, "until": None, "timezone": None,
                             "regime": "auto", "demo": False, "no_cache": False, "merge_worktrees": False},
                   "terminal": {"no_color": False, "wide": False}}


def common_options(command: str | None = None) -> "argparse.ArgumentParser":
    """The shared options `command` reads (all of them when None)."""
    import argparse
    from pathlib import Path
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("input and output")
    wants = {k for k, cmds in OPTION_SETS.items() if command is None or command in cmds}
    if "json" in wants:
        g.add_argument("--json", action="store_true", help="machine-readable output (full precision)")
    if "input" in wants:
        g.add_argument("--path", action="append", type=Path, metavar="PATH",
                       help="read these transcript files/folders instead of the default locations (repeatable)")
        g.add_argument("--source", choices=sorted([*SOURCE_CHOICES, *NO_LOCAL_DATA]), default="all",
                       help="which agent logs to read")
        g.add_argument("--since", metavar="YYYYMMDD", help="only usage on or after this day")
        g.add_argument("--until", metavar="YYYYMMDD", help="only usage on or before this day")
        g.add_argument("--timezone", "-z", default=None, help="IANA timezone for days and months (default: local)")
        g.add_argument("--regime", choices=["auto", "subscription", "api"], default="auto",
                       help="subscription: dollars are API-equivalent value; api: dollars are the bill")
        g.add_argument("--demo", action="store_true",
                       help="report on a generated sample history (kept in $XDG_CACHE_HOME/nomira/demo)")
        g.add_argument("--no-cache", action="store_true",
                       help="ignore the incremental scan cache ($XDG_CACHE_HOME/nomira) and read every file whole")
        g.add_argument("--merge-worktrees", action="store_true",
                       help="one project label for a repository and its git worktrees (read from their .git files "
                            "on this machine; only the label is shipped)")
    if "terminal" in wants:
        g.add_argument("--no-color", action="store_true", help="plain output (NO_COLOR is respected too)")
        g.add_argument("--wide", action="store_true",
                       help="tables as wide as their content (default: the terminal width, $COLUMNS, else 80)")
    for k in OPTION_SETS:
        if k not in wants:
            p.set_defaults(**OPTION_DEFAULTS[k])
    return p


COMMANDS = {
    # name: (module in nomira.commands, help, example)
    "report": ("report", "cost per session and model, with totals (the default)", "nomira report --json"),
    "daily": ("periods", "usage and cost per day", "nomira daily --since 20261101 --breakdown"),
    "monthly": ("periods", "usage and cost per month, with value vs plan", "nomira monthly --plan claude-max-5x"),
    "session": ("periods", "usage and cost per session", "nomira session --source codex"),
    "blocks": ("periods", "5-hour billing windows (each agent's apart), burn rate and projection", "nomira blocks --active"),
    "limits": ("limits", "subscription limit windows: used %, time to reset, when this pace hits 100%",
               "nomira limits --fetch"),
    "statusline": ("statusline", "one line for Claude Code's status bar (reads its JSON on stdin)",
                   "nomira statusline < payload.json"),
    "doctor": ("doctor", "check sources, spool, prices, hooks and a collector; non-zero exit when action is needed",
               "nomira doctor --remote https://nomira.example.com"),
    "forensics": ("forensics", "per-turn costs and waste signals (cache rebuilds, sub-agents)",
                  "nomira forensics --session 3f9a6c2e"),
    "optimize": ("optimize", "cost by tool and by file read, with savings estimates",
                 "nomira optimize --project shop"),
    "ship": ("ship", "send usage-only events to a store or a remote collector",
             "nomira ship --remote https://nomira.example.com --token $NOMIRA_TOKEN --watch"),
    "export": ("ship", "write usage-only events to a JSON file (for a collector's /import)",
               "nomira export events.json --tenant acme"),
    "import": ("ship", "load an exported events.json into a store", "nomira import events.json --db team.db"),
    "replay": ("ship", "rebuild canonical events from the raw events a store received", "nomira replay --db team.db"),
    "prune": ("prune", "apply retention: raw events 30 days, canonical events 400 days, rollups kept forever",
              "nomira prune --raw-days 30 --events-days 400 --dry-run"),
    "tenant": ("ship", "create a tenant (prints its API key once) or list tenants", "nomira tenant create acme"),
    "spool": ("spool", "what `ship --remote` has queued and its dead letters: status, retry after a fix, drop",
              "nomira spool retry --remote https://nomira.example.com"),
    "serve": ("serve", "run the collector: ingest API, import, team dashboard", "nomira serve --port 8787"),
    "cursor": ("cursor", "import Cursor team usage (tokens, charged cost) from Cursor's Admin API",
               "NOMIRA_CURSOR_ADMIN_KEY=key_... nomira cursor fetch --from 2026-11-01 --to 2026-11-30"),
    "migrate": ("migrate", "copy a store to another engine (SQLite to PostgreSQL) and verify counts and totals",
                "nomira migrate --from sqlite:///team.db --to postgresql://nomira@db/nomira"),
    "gateway": ("gateway", "metering reverse proxy for Anthropic/OpenAI API calls (sees prompts in transit)",
                "nomira gateway --port 8788 --remote https://nomira.example.com --token $NOMIRA_TOKEN"),
    "hooks": ("hooks", "install, remove or check the live-capture hooks of Claude Code, Codex and OpenCode",
              "nomira hooks install --remote https://nomira.example.com --token $NOMIRA_TOKEN"),
    "hook": ("hooks", "what an agent's hook runs: ship that session's new calls (always exits 0)",
             "nomira hook claude < payload.json"),
    "opencode": ("opencode", "follow a running OpenCode server's event stream and ship usage as it happens",
                 "nomira opencode watch --url http://127.0.0.1:4096"),
    "prices": ("prices", "rates in force and their source; --update refreshes feeds, --diff compares",
               "nomira prices claude-opus-4-7"),
    "capture": ("capture", "run a headless agent (claude -p, codex exec --json, gemini -p -o json), pass its "
                "output through, record its usage", "nomira capture --db ci.db -- codex exec --json 'fix it'"),
    "mcp": ("mcp", "Model Context Protocol server on stdio: read-only usage, sessions, advice and limits tools",
            "nomira mcp --path ~/.claude/projects"),
    "budget": ("budget", "budgets per developer, project, tenant or tag; alerts at 50/80/100% to a webhook",
               "nomira budget set shop-monthly --project shop --usd 500 && nomira budget check"),
    "reconcile": ("reconcile", "compare bills with observed usage; import a bill export or fetch the cost API",
                  "nomira reconcile import anthropic-costs.csv && nomira reconcile"),
    "sources": ("sources", "every agent Nomira reads: where it looked, files, sessions, calls, what it cannot read",
                "nomira sources --json"),
    "clients": ("sources", "alias of `sources`", "nomira clients"),
}
# The seed's flags, kept as aliases of the subcommands: flag -> (command words, takes a value?)
FLAG_ALIASES = {"--ship": (["ship"], False), "--export": (["export"], True), "--replay": (["replay"], False),
                "--serve": (["serve"], False), "--create-tenant": (["tenant", "create"], True),
                "--list-tenants": (["tenant", "list"], False), "--update-prices": (["prices", "--update"], False),
                "--cursor-fetch": (["cursor", "fetch"], False),
                "--reconcile-import": (["reconcile", "import"], True),
                "--reconcile-fetch": (["reconcile", "fetch"], False)}


def build_parser(selected: str | None = None) -> "argparse.ArgumentParser":
    """Every command gets a help line when none is selected (`nomira --help`); otherwise only the
    `selected` one is built and imports its module (a warm `nomira --json` or a statusline never
    builds thirty parsers or imports the collector)."""
    import argparse
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
        if selected is not None and name != selected:
            continue  # the others' help lines only matter to `nomira --help`, which selects none
        sp = sub.add_parser(name, parents=[common_options(name)], help=help_text.replace("%", "%%"), description=help_text,
                            epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == selected:
            importlib.import_module(f"nomira.commands.{module}").add_arguments(name, sp)
            p.selected = sp
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


FLAGS = {"--json", "--no-color", "--demo", "--no-cache", "--merge-worktrees", "--breakdown", "--compare", "--by-project", "--active",
         "--watch", "--update", "--force", "--diff", "--wide", "-b"}


class Run:
    """What one command reads: the input files, the cache, and (lazily) the priced events."""

    def __init__(self, args, env=os.environ):
        import time

        from nomira.reports.render import Style, use_color
        from nomira.sources.registry import discover
        self.started_ns = time.time_ns()
        self.args, self.env = args, env
        explicit = args.path
        if args.source in NO_LOCAL_DATA:
            import importlib
            raise UserError(importlib.import_module(NO_LOCAL_DATA[args.source]).LOCAL_DATA_NOTE)
        if args.demo:
            explicit = [demo_history(env)]
        self.explicit = explicit
        self.selected = SOURCE_CHOICES[args.source]
        from nomira.sources import paths
        paths.UNREADABLE.clear()
        paths.WALKED.clear()
        try:
            self.found = discover(self.selected, explicit, env)
        except FileNotFoundError as exc:
            raise UserError(f"{exc} (check --path)") from exc
        self.unreadable: list[str] = list(paths.UNREADABLE)
        self.cache = None if (args.no_cache or args.demo) else self._open_cache()
        self._table = None
        self._pricer = None
        self._pins = None
        self.deferred = None  # the parts of an output key made after the scan (`cached_output`)
        self.collected_stats = None  # (then: the scan's stats of each file, the files no one stated)
        self.seen_sources: set[str] = set()
        self.color = use_color() and not args.no_color
        self.style = Style(self.color, None if args.wide else terminal_width())
        from nomira import dates
        try:
            self.tz = dates.local_tz(args.timezone)
        except ValueError as exc:
            raise UserError(f"--timezone {args.timezone}: not a known timezone (an IANA name such as "
                            "Europe/Paris, or UTC)") \
                from exc
        self.since = _day("--since", args.since)
        self.until = _day("--until", args.until)
        if self.since and self.until and self.since > self.until:
            raise UserError(f"--since {args.since} is after --until {args.until}: no day can match (swap them)")

    @property
    def table(self):
        if self._table is None:
            from nomira.pricing.feed import resolved
            try:
                self._table = resolved(self.env)
            except ValueError as exc:
                raise UserError(str(exc)) from exc
        return self._table

    @property
    def pins(self) -> dict[str, str]:
        """The project labels this machine shipped under (`project.pinned`): every report keeps them."""
        if self._pins is None:
            from nomira.sources import project
            self._pins = project.pinned(self.env)
        return self._pins

    @property
    def pricer(self):
        """One Pricer for the run, so each (model, modifiers) is looked up once, not once per group
        of events folded (sixty sources' groups: ~150 lookups of ~50 models)."""
        if self._pricer is None:
            from nomira.pricing.engine import Pricer
            self._pricer = Pricer(self.table)
        return self._pricer

    def _open_cache(self) -> scancache.ScanCache | None:
        import sqlite3
        try:
            cache = scancache.ScanCache(scancache.default_path(self.env))
            OPEN_CACHES.append(cache)  # closed when the command returns (in-process callers: MCP, tests)
            if QUICK_ARGV is not None and self.env is os.environ and self.args.command in QUICK_EXIT \
                    and hasattr(os, "fork"):
                cache.defer()  # (a command line's report: its writes made after it has answered, `write_behind`)
            return cache
        except (sqlite3.Error, OSError) as exc:
            print(f"nomira: cache unavailable ({exc}); reading every file", file=sys.stderr)
            return None

    def cached_output(self, *parts) -> tuple[bytes | None, str | None]:
        """(cached output as UTF-8, key) for a command whose output depends only on the inputs and `parts`.
        A history of many files the cache holds nothing of: no output can be found, and its files are not
        stated first (`registry.collect(stat_later=True)`: the workers state each file as they open it);
        the key is `DEFERRED`, made by `store_output` from those stats."""
        if self.cache is None or getattr(self.args, "merge_worktrees", False):
            return None, None  # merged labels depend on the worktrees on disk, not only on the logs
        if self._nothing_cached():
            self.deferred = parts
            return None, DEFERRED
        from nomira.sources.registry import fingerprint
        self.fingerprint = fingerprint(self.found)
        key = self._output_key(parts)
        hit = self.cache.get_output(key)
        if hit is None:
            return None, key
        if QUICK_ARGV is not None and self.env is os.environ and not self.unreadable:
            # (outputs stored before this invocation was seen)
            if self.cache.spool is not None:
                self.cache.spool.later.append(lambda _cache: self._store_quick(hit))
            else:
                self._store_quick(hit)
        return hit, key  # (bytes: written as they are, `emit`)

    def _output_key(self, parts) -> str:
        from nomira.pricing.stamp import resolved_digest
        a = self.args
        return scancache.output_key(
            [*parts, a.json, a.regime, self.color, [str(p) for p in a.path or []], a.source, a.since, a.until,
             str(self.tz), resolved_digest(self.env), os.environ.get("TZ"), self.style.width,
             sorted(self.pins.items())],
            self.fingerprint)

    def _nothing_cached(self) -> bool:
        """Whether this run may state its files as it reads them: many files (stating 6,386 first took 20-25
        ms before anything else could start), none of them in the cache."""
        n = sum(len(files) for files in self.found.values())
        if n < STAT_LATER_MIN:
            return False
        try:
            return not any(files and self.cache.has_entries(source) for source, files in self.found.items())
        except Exception:  # noqa: BLE001 - (a damaged cache: the usual path meets and reports it)
            return False

    def store_output(self, key: str | None, text: str | bytes) -> None:
        """Keep a command's output (text, or the UTF-8 bytes `emit` wrote: encoded once) for the next run.
        A command line's process keeps it after it has answered, with the scan's entries (`Spool`)."""
        if self.cache is None or key is None or self.unreadable:
            return
        output = text if type(text) is bytes else text.encode()
        if self.cache.spool is not None:
            self.cache.spool.later.append(lambda cache: self._keep_output(cache, key, output))
        else:
            self._keep_output(self.cache, key, output)

    def _keep_output(self, cache: scancache.ScanCache, key: str, output: bytes) -> None:
        """The output's row and file, and the replay's file when this is a command line's process."""
        import sqlite3
        from zlib import crc32
        if key is DEFERRED:  # (keyed by what the files were before they were read, as the workers stated them)
            key = self._deferred_key()
            if key is None:
                return
        check = crc32(output)  # (once, for both copies: the cache's and the replay's)
        try:
            cache.put_output(key, output, check)
        except scancache.CacheDamaged as exc:  # (the output is out: only the next run's shortcut is lost)
            discard_cache(exc)
            return
        except sqlite3.Error:
            return
        if QUICK_ARGV is not None and self.env is os.environ:
            self._store_quick(output, check)

    def _store_quick(self, output: bytes, checksum: int | None = None) -> None:
        """Keep `output` for `scancache.quick_replay`, with every path it depended on."""
        from nomira.pricing.stamp import price_files
        from nomira.sources.registry import SOURCES
        env = self.env
        roots = self.explicit or [r for name in self.selected for r in SOURCES[name].default_paths(env)]
        from nomira import dirs
        extra = [str(p) for p in price_files(env)] + ["/etc/localtime", str(dirs.pinned_labels(env)),
                                                      *scancache.package_sources()]
        try:
            from nomira.sources.paths import WALKED
            checks = scancache.quick_checks([(p, size, mtime) for _s, p, size, mtime in self.fingerprint],
                                            [str(r) for r in roots], extra, env, self.started_ns, WALKED)
            if checks is not None:
                scancache.quick_store(QUICK_ARGV, env, checks, output, checksum)
        except OSError:
            pass  # only a shortcut: the next run does the work

    def collect(self, prefold: "tuple | None" = None):
        """The history scanned. `prefold`: (the fold `self.fold` will be asked for, a function that
        makes one of its results plain values, a name saying which fold it is[, a test of a file's
        events: whether its fold is worth making]); the scan workers then fold each whole file they
        read (see `sources.prefold`), and the cache keeps those folds."""
        from nomira.sources.registry import collect
        known = {p: (size, mtime) for _s, p, size, mtime in getattr(self, "fingerprint", ())}
        hook = fold_key = None
        if prefold is not None:
            fold, pack, name, worth = (*prefold, None)[:4]
            self._prefold = fold  # (`fold` then takes the workers' folds of it)
            fold_key = self._fold_key(name) if self.cache is not None else None
            task = self._task(fold)  # (a worker that folds resolves the prices itself, once: `meanwhile`)

            def hook(events):
                if worth is not None and not worth(events):
                    return None  # (the file goes the long way)
                partial, seen = task(events)
                return pack(partial), sorted(seen)
        later = self.deferred is not None
        collected = collect(self.selected, env=self.env, cache=self.cache, workers=os.cpu_count() or 1,
                            progress=True, found=self.found, known=known,
                            merge_worktrees=getattr(self.args, "merge_worktrees", False), prefold=hook,
                            fold_key=fold_key, stat_later=later, meanwhile=lambda: self.pricer,
                            pins=self.pins)
        if later:
            self.collected_stats = collected.stated, collected.unstated
        self.unreadable += collected.unreadable
        if self.unreadable:
            n = len(self.unreadable)
            shown = ", ".join(self.unreadable[:3]) + (f" and {n - 3} more" if n > 3 else "")
            print(f"nomira: {n} unreadable file{'s' * (n != 1)} or folder{'s' * (n != 1)} left out of the "
                  f"totals: {shown} (check their permissions)", file=sys.stderr)
        return collected

    def _deferred_key(self) -> str | None:
        """The output key of a run whose files were stated as they were read (`cached_output`), or None
        when one was not (nothing is kept under a key it cannot vouch for)."""
        if self.collected_stats is None or self.collected_stats[1]:
            return None
        stated = self.collected_stats[0]
        self.fingerprint = [(source, str(f), *stated[source][str(f)]) for source, files in self.found.items()
                            for f in files if str(f) in stated.get(source, ())]
        return self._output_key(self.deferred)

    def _fold_key(self, name: str) -> str:
        """What a file's fold (the one called `name`) depends on besides the file: the code, the rates
        in force, the time window and its time zone (the scan cache keeps each file's fold under it)."""
        from nomira.digests import sha256
        from nomira.pricing.stamp import resolved_digest
        return sha256(repr((scancache.format_tag(), scancache.code_digest("."), name, str(self.since), str(self.until),
                            str(self.tz), os.environ.get("TZ"), resolved_digest(self.env))).encode()).hexdigest()

    def priced(self, events, seen: set | None = None):
        """(event, cost) pairs, lazily: costs are aggregated as they are made, never all held.
        Notes each event's source in `seen` (default: `seen_sources`), for `regime()`."""
        from nomira.reports.local_models import zero_cost
        pricer = self.pricer
        seen = self.seen_sources if seen is None else seen
        for e in events:
            seen.add(e.source)
            cost = pricer(e)
            yield e, (cost if cost is not None else zero_cost(e))  # local models: $0, with the reason

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

    def _task(self, fold: "Callable"):
        def task(events):
            seen: set[str] = set()
            return fold(self.priced(self.in_range(events), seen)), seen
        return task

    def fold(self, collected, fold: "Callable", merge: "Callable", unpack: "Callable | None" = None,
             whole: "tuple[Callable, Callable] | None" = None):
        """`fold` of the priced in-range events, a bounded group at a time (in worker processes
        when the history was spilled), partials merged with `merge`. `unpack(packed, project)`: a
        packed fold of one file's events as a fold, with that project label (for the files the scan
        workers folded, when `fold` is the one `collect` was given). `whole`: (pack, unpack) of a
        fold of any part of the history as marshal's values, labels kept: then a history of many small
        files is folded in two processes at once, split by session (`Collected.in_two`)."""
        self.pricer  # noqa: B018 - resolve prices once, before any worker forks
        task = self._task(fold)
        if whole is not None:
            pack, unpack_whole = whole

            def packed(events):
                partial, seen = task(events)
                return pack(partial), seen
            halves = collected.in_two(packed, os.cpu_count() or 1)
            if halves is not None:
                (a, seen_a), (b, seen_b) = halves
                self.seen_sources |= seen_a | seen_b
                return merge(unpack_whole(a), unpack_whole(b))

        def both(a, b):
            return merge(a[0], b[0]), a[1] | b[1]

        def unpacked(packed, project):
            return unpack(packed[0], project), set(packed[1])
        prefolded = unpack is not None and fold is getattr(self, "_prefold", None)
        result = collected.fold(task, both, os.cpu_count() or 1, unpacked if prefolded else None)
        partial, seen = result if result is not None else task([])
        self.seen_sources |= seen
        return partial

    def fold_in_two(self, collected, fn: "Callable") -> tuple | None:
        """(fn of the priced in-range events of one half of the history's sessions, of the other's), the
        halves at once in two processes (`Collected.in_two`; fn's results marshal's values), or None when
        the history is not split (then `fold` as usual)."""
        self.pricer  # noqa: B018 - resolved before the fork
        halves = collected.in_two(self._task(fn), os.cpu_count() or 1)
        if halves is None:
            return None
        (a, seen_a), (b, seen_b) = halves
        self.seen_sources |= seen_a | seen_b
        return a, b

    def scan(self, collected) -> dict:
        """What was read and skipped (`scan` in --json), complete once the events are folded."""
        return {**collected.stats.as_dict(), "unreadable": self.unreadable}  # files and folders

    def no_usage(self, *filters: str, what: str = "usage") -> None:
        """One line: where Nomira looked, and which filters were in force."""
        a = self.args
        filters = [f for f in (f"--since {a.since}" if a.since else "", f"--until {a.until}" if a.until else "",
                               f"--source {a.source}" if a.source != "all" else "", *filters) if f]
        n = sum(len(v) for v in self.found.values())
        msg = f"nomira: no {what} found in {self.searched()} ({n} file{'s' * (n != 1)} read)"
        if filters:
            msg += f" matching {' '.join(filters)} (try without them)"
        else:
            msg += "; try --path or --demo"
        print(msg, file=sys.stderr)

    def searched(self) -> str:
        if self.explicit:
            return ", ".join(str(p) for p in self.explicit)
        from nomira.sources.registry import SOURCES
        from nomira.reports.text import SOURCE_NAMES
        parts, others = [], []
        for name in self.selected:
            roots = SOURCES[name].default_paths(self.env)
            label = SOURCE_NAMES.get(SOURCES[name].NAME, name)
            if not roots and name not in DEFAULT_PLACES:
                others.append(f"{label}: no folder (its default folders)")
                continue
            where = ", ".join(str(r) for r in roots) if roots else f"no folder ({DEFAULT_PLACES[name]})"
            parts.append(f"{label}: {where}")
        if len(others) > 2:  # (sixty agents' "no folder" said in one clause, not sixty)
            others = [f"{len(others)} other agents: no folder (`nomira sources` lists where each looks)"]
        return "; ".join(parts + others)


DEFAULT_PLACES = {"claude": "$CLAUDE_CONFIG_DIR, ~/.config/claude/projects, ~/.claude/projects",
                  "codex": "$CODEX_HOME/sessions, ~/.codex/sessions", "opencode": "$OPENCODE_DATA_DIR, "
                  "~/.local/share/opencode"}


def _day(flag: str, text: str | None):
    if not text:
        return None
    from nomira import dates
    try:
        return dates.parse_day(text)
    except ValueError as exc:
        raise UserError(f"{flag} {text}: {exc} (use YYYYMMDD, e.g. 20261105)") from exc


def terminal_width() -> int:
    """$COLUMNS, else the terminal's width, else 80 (not a terminal)."""
    import shutil
    return max(shutil.get_terminal_size((80, 24)).columns, 40)


def demo_history(env) -> Path:
    """The sample history, regenerated in one folder under the cache dir (not a new temp folder per run)."""
    import shutil

    from nomira import dirs
    from nomira.demo import write_demo
    root = dirs.cache_home(env) / "demo"
    try:
        if root.exists():
            shutil.rmtree(root)
        write_demo(root)
    except OSError as exc:
        raise Failure(f"cannot write the demo history to {root}: {exc.strerror} (set XDG_CACHE_HOME to a "
                      "writable folder)") from exc
    print(f"nomira: demo history in {root} (other commands read it with --path {root})", file=sys.stderr)
    return root


def check_store(args) -> None:
    """A `--db` that is a folder or not SQLite is named before anything opens it; a read-only
    command (replay, tenant list) never creates an empty store where a mistyped one was meant."""
    if not hasattr(args, "db") or (args.command == "ship" and getattr(args, "remote", None)):
        return
    from nomira.ledger import engine
    from nomira import dirs
    path = args.db or dirs.default_db()
    if engine.is_postgres(path):
        engine.require_driver()
        return
    if not path.exists():
        creates = args.command not in ("replay", "prune") and not (args.command == "tenant" and args.action == "list")
        if not creates:
            raise Failure(f"no store at {path} (check --db; `nomira ship --db {path}` or `nomira import` "
                          "creates one)")
        if args.db is not None and not path.parent.is_dir():
            raise Failure(f"no folder {path.parent} for the store {path} (create it, or check --db)")
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except IsADirectoryError:
        raise Failure(f"--db {path} is a folder; give a store file such as {path / 'nomira.db'}") from None
    except OSError as exc:
        raise Failure(f"cannot read the store {path}: {exc.strerror} (check --db and its permissions)") from exc
    if head and head != b"SQLite format 3\x00":
        raise Failure(f"{path} is not a Nomira store (not an SQLite file); check --db")


LABEL_OPTIONS = ("--project",)  # values may start with '-' (Claude's folder names: -home-ana-src-shop)


def _label_values(argv: list[str]) -> list[str]:
    """`--project -home-x` as `--project=-home-x`: argparse would take the value for an option."""
    out = []
    i = 0
    while i < len(argv):
        if argv[i] == "--":  # what follows is another program's command line (capture)
            return out + argv[i:]
        if argv[i] in LABEL_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def _unknown_command(argv: list[str]) -> None:
    """A bare word where a command goes: a usage error, with the closest command."""
    for i, a in enumerate(argv):
        prev = argv[i - 1] if i else ""
        if a.startswith("-") or (prev.startswith("-") and "=" not in prev and prev not in FLAGS):
            continue
        import difflib
        close = difflib.get_close_matches(a, COMMANDS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"commands: {', '.join(COMMANDS)}"
        raise UserError(f"unknown command {a!r}; {hint} (nomira --help lists them)")


OPEN_CACHES: list = []  # scan caches opened by this command's Runs


def discard_cache(exc: "scancache.CacheDamaged") -> bool:
    """A damaged scan cache closed and removed (the next run makes a new one), and said on stderr;
    False when it could not be removed."""
    close_caches()
    scancache.discard(exc.path)
    removed = not os.path.exists(exc.path)
    print(f"nomira: {exc}; {'removed it' if removed else 'cannot remove it, not using it'} (reading every file)",
          file=sys.stderr)
    return removed


def write_behind() -> None:
    """Close the caches, then make the writes their runs kept (`scancache.Spool`) in a child that holds the
    cache folder's writer lock, this process free to end (`behind`); here when no child can be made."""
    spools = [c.spool for c in OPEN_CACHES if c.spool is not None and c.spool.pending()]
    close_caches()  # (no SQLite connection may cross the fork: the child opens its own)
    if not spools:
        return

    def work() -> None:
        for spool in spools:
            spool.finish()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        if behind.run(work, os.path.dirname(scancache.quick_dir(os.environ))):
            return
    except (OSError, ValueError):  # (a closed output: the writes are made here)
        pass
    try:
        work()
    except Exception:  # noqa: BLE001 - only a cache: a later run finds a damaged one, or does the work again
        pass


def close_caches() -> None:
    """Close the scan caches a command opened: a long-lived caller (`nomira mcp`, the collector's local
    history, a test suite) runs many commands in one process, and each would keep three descriptors."""
    while OPEN_CACHES:
        try:
            OPEN_CACHES.pop().close()
        except Exception:  # noqa: BLE001 - closing is best effort; the data is already committed
            pass


QUICK_ARGV: list[str] | None = None  # the command line of this process, when it may store a replay
DEFERRED = "(made after the scan)"  # cached_output's key when the files are stated as they are read
STAT_LATER_MIN = 2048  # files: fewer are stated first (a few ms), as a run with a cache does


def main(argv: list[str] | None = None) -> int:
    # A report run allocates hundreds of thousands of small containers and no cycles
    # on its hot path: the cyclic collector would only rescan them (~12% of a cold run).
    # An in-process caller (`nomira mcp`'s tools, embedders, tests) gets it back afterwards.
    global DONE
    collecting = gc.isenabled()
    gc.disable()
    DONE = False
    try:
        rc = _main(argv)
    finally:
        if collecting:
            gc.enable()
    if argv is None and DONE:
        _exit_now(rc)
    return rc


TALKS_TO_SERVERS = {"ship", "spool", "hook", "cursor", "capture", "doctor", "reconcile", "opencode", "mcp"}
DONE = False  # the command finished with nothing left open: the process may end without tearing down
WIDE_OUTPUT = 1 << 16  # an output longer than a pipe holds by default: the pipe is widened first (`emit`)
QUICK_EXIT = {"report", "daily", "monthly", "session"}  # read-only reports that close what they open


def emit(data: str | bytes) -> None:
    """A command's output (text, or UTF-8 bytes as stored) to stdout: bytes to a UTF-8 stream's buffer as
    they are (no copy decoded and encoded again); a long output into the pipe widened first (fewer
    waits for the reader)."""
    out = sys.stdout
    if out is None:  # (started with its standard output closed: `nomira >&-`)
        raise Failure("standard output is closed: nowhere to write the report (redirect it to a file or a pipe)")
    if len(data) > WIDE_OUTPUT:
        from nomira.sources.pipes import widen
        try:
            widen(out.fileno())
        except (AttributeError, ValueError, OSError):  # (a stream without a descriptor: tests, embedders)
            pass
    if type(data) is not str:
        if (os.linesep == "\n" and (getattr(out, "encoding", None) or "").lower().replace("-", "") == "utf8"
                and hasattr(out, "buffer")):
            out.flush()
            out.buffer.write(data)
            return
        data = str(data, "utf-8", "surrogateescape")
    out.write(data)


def _exit_now(rc: int) -> None:
    """End a finished report's process without Python's teardown (freeing every object and module:
    15-30 ms, a fifth of a replayed report), its output flushed first."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # (a closed pipe: the reader has what it wanted)
        pass
    halves = sys.modules.get("nomira.sources.halves")
    if halves is not None:  # (its forked child, long done: waited for, its CPU is counted in this process's)
        halves.reap(wait=True)
    os._exit(rc)


def _main(argv: list[str] | None) -> int:
    global QUICK_ARGV, DONE
    QUICK_ARGV = list(sys.argv[1:]) if argv is None else None
    behind.wait(os.path.dirname(scancache.quick_dir(os.environ)))  # (an earlier run's cache writes, if any)
    if QUICK_ARGV is not None:
        replayed = scancache.quick_replay(QUICK_ARGV, os.environ) if sys.stdout is not None else None
        if replayed is not None:
            try:
                emit(replayed)
                sys.stdout.flush()
            except BrokenPipeError:  # `| head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            DONE = True
            return 0
    import signal
    if argv is None and hasattr(signal, "SIGPIPE"):
        # A report piped into `head` ends quietly. Only for a real command line: a caller of main()
        # in-process (tests, embedders) keeps its own SIGPIPE handling; servers set theirs.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = None
    try:
        argv = with_default_command(_label_values(list(sys.argv[1:] if argv is None else argv)))
        if argv[:1] == ["report"]:
            _unknown_command(argv[1:])
        parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
        args, extra = parser.parse_known_args(argv)
        if QUICK_ARGV is not None and args.command in TALKS_TO_SERVERS and hasattr(signal, "SIGPIPE"):
            # (the default set above, for a report piped into `head`, undone: a collector that resets the
            # connection mid-upload is an error the command reports and retries, not a silent death)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if extra:  # a flag this command does not use is an error, not silently ignored
            getattr(parser, "selected", parser).error(
                f"{argv[0]} does not take {' '.join(extra)} (see nomira {argv[0]} --help)")
        check_store(args)
        answered = False
        try:
            try:
                rc = args.func(args)
            except scancache.CacheDamaged as exc:  # met before any output (store_output keeps its own)
                if not discard_cache(exc):
                    args.no_cache = True
                rc = args.func(args)  # again, every file read
            answered = True
        finally:
            if answered and QUICK_ARGV is not None and args.command in QUICK_EXIT:
                write_behind()
            else:
                close_caches()  # (a failed command's spooled writes are dropped, as its transaction would be)
        DONE = args.command in QUICK_EXIT
        return rc
    except UserError as exc:
        print(f"nomira: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the guard: one line, never a traceback (unless asked for)
        if os.environ.get("NOMIRA_DEBUG"):
            raise
        print(f"nomira: {_describe(exc, args)}", file=sys.stderr)
        return 1


def _describe(exc: Exception, args) -> str:
    import sqlite3
    text = " ".join(str(exc).split()) or type(exc).__name__
    engine = sys.modules.get("nomira.ledger.engine")
    if engine is not None and isinstance(exc, engine.EngineError):
        return str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and args is not None and hasattr(args, "db"):
        from nomira import dirs
        path = args.db or dirs.default_db()
        return f"the store {path} is damaged or not a Nomira store ({text}); check --db or restore a backup"
    return f"unexpected error: {type(exc).__name__}: {text} (run with NOMIRA_DEBUG=1 for the traceback)"
