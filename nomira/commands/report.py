"""`nomira` / `nomira report`: cost per session and model, totals, and `--compare`."""
from __future__ import annotations

import json

from nomira.cli import Run, emit


def add_arguments(name, p) -> None:
    p.add_argument("--compare", action="store_true", help="efficiency table across sessions (or projects)")
    p.add_argument("--by-project", action="store_true", help="compare projects (implies --compare)")
    p.add_argument("--by", choices=["session", "project", "branch"], default=None,
                   help="compare by this dimension (implies --compare); branch: the git branch the agent logged")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    run = Run(args)
    budgets = not args.json and _budgets_set(run.env)  # their lines depend on the clock: never cached
    if args.by_project:
        args.by = "project"
    cached, key = (None, None) if budgets else run.cached_output("report", args.compare, args.by_project, args.by)
    if cached is not None:
        emit(cached)
        return 0
    prefold = None
    if not (args.compare or args.by or budgets):  # the plain report: its fold made where files are read
        from nomira.reports import summary
        prefold = summary.fold, summary.pack, "report"
    collected = run.collect(prefold)
    if args.compare or args.by:
        text = compare_text(run, collected)
    else:
        text = report_text(run, collected)
    if not run.seen_sources:
        run.no_usage()
    output = text.encode()  # (once: written, stored and kept for a replay as these bytes)
    emit(output)
    if run.seen_sources and not (allowance_shown(text) and not args.json):
        run.store_output(key, output)  # (the allowance line says how old it is: never replayed)
    return 0


def _budgets_set(env) -> bool:
    from nomira.alerts.budgets import path as budgets_path  # (not imported for --json)
    return budgets_path(env).exists()


NO_BRANCH = "(no branch)"  # calls whose agent logs no git branch (every source but Claude Code)


def allowance_shown(text: str) -> bool:
    return "Codex allowance as of" in text


def report_text(run: Run, collected) -> str:
    from nomira.reports import summary
    from nomira.reports.render import render_json
    from nomira.reports.text import render_report
    from nomira.sources import codex
    allowance = codex.latest_allowance(collected.states.get("codex", []))
    allowance_dict = None
    if allowance:
        as_of, a = allowance
        allowance_dict = {"as_of": as_of, **{k: getattr(a, k) for k in a.__dataclass_fields__}}
    budgets = halves = None
    if not (run.args.json or run.since or run.until):
        from nomira.commands.budget import report_budgets
        budgets = report_budgets(run.env)
    if budgets:  # one pass: the report's fold, and the calls recent enough for a budget window
        earliest = budgets.earliest

        def fold(priced):
            pairs = list(priced)
            return summary.fold(pairs), [p for p in pairs if p[0].occurred_at >= earliest]
        folded, recent = run.fold(collected, fold, lambda a, b: (summary.merge(a[0], b[0]), a[1] + b[1]))
    else:
        halves = run.fold_in_two(collected, summary.half) if run.args.json else None
        if halves is None:
            folded, recent = run.fold(collected, summary.fold, summary.merge, summary.unpack), []
    if halves is not None:  # (the JSON report of many small files: each half's rows made in its process)
        report = summary.finish_halves(*halves, run.regime_override, allowance_dict, run.table.generated)
    else:
        report = summary.finish(folded, run.regime_override, allowance_dict, run.table.generated, run.args.json)
    report["scan"] = run.scan(collected)
    from nomira.sources.registry import found_without_tokens
    report["found_without_tokens"] = found_without_tokens(collected.stats)
    if run.args.json:
        return render_json(report)
    if budgets:
        report["budget_lines"] = budgets.lines(run, recent)
    return render_report(report, run.style) + "\n"


def compare_text(run: Run, collected) -> str:
    from nomira.reports.aggregate import MONEY_COLUMN, group, merge_groups
    from nomira.reports.compare import efficiency_rows, headline
    from nomira.reports.render import fill, pct, priced_usd, short_id, table, usd
    from nomira.reports.text import CACHE_REUSE
    noun = run.args.by or "session"
    key = {"project": lambda e, c: e.project, "branch": lambda e, c: e.branch or NO_BRANCH,
           "session": lambda e, c: (e.session_id, e.project)}[noun]
    groups = run.fold(collected, lambda priced: group(priced, key), merge_groups)
    label = (lambda k: short_id(k[0])) if noun == "session" else (lambda k: k)
    rows = efficiency_rows(groups, label)
    line = headline(rows, noun)
    regime = run.regime()
    if run.args.json:
        from nomira.reports.money import stamp
        return json.dumps(stamp({"compare": noun, "regime": regime, "rows": rows, "headline": line}), indent=2) + "\n"
    out = [run.style.bold(fill(line, run.style)) if line else f"(fewer than two priced {noun}s to compare)", ""]
    money = MONEY_COLUMN[regime]
    out.append(table([noun.capitalize(), "Calls", money, "$/call", "$/1k out", CACHE_REUSE],
                     [[str(r["name"]), str(r["calls"]), priced_usd(r["cost_usd"], r["calls"], r["unpriced_calls"]),
                       usd(r["usd_per_call"]),
                       usd(r["usd_per_1k_output"]) if r["usd_per_1k_output"] is not None else "—",
                       pct(r["cache_reuse"])] for r in rows], "lrrrrr", style=run.style))
    out.append(run.style.dim(fill(f"{CACHE_REUSE}: share of prompt tokens served from the cache (higher is "
                                  "cheaper)", run.style)))
    return "\n".join(out) + "\n"
