"""`nomira daily | monthly | session | blocks`: usage and cost over time."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from nomira.cli import Run, UserError, emit
from nomira.reports import periods
from nomira.reports.aggregate import MONEY_COLUMN, Tally, merged
from nomira.reports.render import fill, priced_usd, render_json, short_id, table, tokens, usd
from nomira.reports.text import lost_note

def add_arguments(name, p) -> None:
    p.add_argument("--breakdown", "-b", action="store_true", help="a row per model under each period")
    if name == "monthly":
        from nomira.reports.plans import PLANS
        p.add_argument("--plan", action="append", choices=sorted(PLANS), default=[],
                       help="your plan (one per agent; default Claude Max 20x and ChatGPT Plus)")
        p.add_argument("--plan-price", type=float, action="append", default=[], metavar="USD",
                       help="the monthly price of the --plan given in the same position (repeatable)")
    if name == "blocks":
        p.add_argument("--active", action="store_true", help="only the block in progress")
        p.add_argument("--live", action="store_true", help="redraw in place until Ctrl-C (prints once when piped)")
        p.add_argument("--interval", type=float, default=5.0, help="seconds between --live redraws (default 5)")
    p.set_defaults(func=cmd_period, period=name)
    if name == "blocks":
        p.set_defaults(func=cmd_blocks)


def cmd_period(args) -> int:
    if getattr(args, "plan", None) and args.regime == "api":
        raise UserError("--plan sets subscription value against a plan; with --regime api the dollars are the "
                        "bill and there is no plan to compare (drop one of them)")
    run = Run(args)
    cacheable = args.period != "blocks"  # blocks depend on the clock
    cached, key = run.cached_output(args.period, args.breakdown, getattr(args, "plan", None),
                                    getattr(args, "plan_price", None)) if cacheable else (None, None)
    if cached is not None:
        emit(cached)
        return 0
    if args.period == "blocks":
        events = run.collect().events  # 5-hour windows need the whole timeline, in order
        text = blocks_text(run, events, MONEY_COLUMN[run.regime(events)])
    else:
        fold = _period_fold(run)
        # (each whole file folded where it is read, as the report's: see sources.prefold)
        collected = run.collect((fold, _packer(args.period), args.period,
                                 _few_days if args.period == "daily" else None))
        text = period_text(run, collected, fold)
    if not run.seen_sources:
        run.no_usage()
    output = text.encode()  # (once: written, stored and kept for a replay as these bytes)
    emit(output)
    if run.seen_sources and cacheable:
        run.store_output(key, output)
    return 0


def cmd_blocks(args) -> int:
    if not args.live:
        return cmd_period(args)
    from nomira.commands.live import refresh
    return refresh(lambda: _blocks_now(args), max(args.interval, 0.5))


def _blocks_now(args) -> str:
    run = Run(args)
    events = run.collect().events
    return blocks_text(run, events, MONEY_COLUMN[run.regime(events)])


def _period_fold(run: Run):
    """The fold of a part of the history: the period tallies and, for monthly, the value per
    (month, source) to set against the plan prices."""
    period = run.args.period
    fn = {"daily": periods.daily, "monthly": periods.monthly, "session": periods.sessions}[period]

    def fold(priced):
        values: dict[tuple[str, str], float] = {}
        if period == "monthly":
            priced = _noting_plan_values(run, priced, values)
        return fn(priced, run.tz, run.since, run.until), values
    return fold


def _packer(period: str):
    """A file's fold as plain values (`_period_fold`'s, for a scan worker to send)."""
    sessions = period == "session"
    return lambda folded: (periods.pack(folded[0], sessions), list(folded[1].items()))


def _pack_whole(folded) -> tuple:
    """A fold of part of a history (`_period_fold`'s) as plain values, its keys whole (labels included)."""
    return periods.pack(folded[0]), list(folded[1].items())


def _unpack_whole(packed) -> tuple:
    return periods.unpack(packed[0]), dict(packed[1])


CALLS_A_DAY = 8  # a file's calls on fewer days than its calls / this: its daily fold is worth making apart


def _few_days(events) -> bool:
    """Whether a file's calls fall on few enough days for its own daily fold to pay: a file of calls
    spread over many days folds to about a tally per call, which costs more to make, send and merge
    than folding its calls with the others' (UTC days: a guess at the local ones is enough here)."""
    return len({e.occurred_at.date() for e in events}) * CALLS_A_DAY <= len(events)


def _merge(a, b):
    for k, v in b[1].items():
        a[1][k] = a[1].get(k, 0.0) + v
    return a[0].merge(b[0]), a[1]


def period_text(run: Run, collected, fold) -> str:
    """One pass over the events (a bounded group at a time) with `fold` (`_period_fold`), the files
    folded where they were read merged in."""
    period = run.args.period
    sessions = period == "session"
    if sessions and run.args.json:  # (each half's rows made in its process: a session is whole in one)
        halves = run.fold_in_two(collected, periods.session_half(run.tz, run.since, run.until))
        if halves is not None:
            rows, total = periods.finish_session_halves(*halves)
            return _json(run, period, rows, total, MONEY_COLUMN[run.regime()], collected)

    def unpack(packed, project):
        return periods.unpack(packed[0], project if sessions else None), dict(packed[1])
    # (a fold of days or months is small: sent back from a half in two processes; one of sessions is not:
    # sending, reading and merging 6,386 sessions' tallies took longer than folding them in one process)
    whole = None if sessions else (_pack_whole, _unpack_whole)
    grouped, by_source = run.fold(collected, fold, _merge, unpack, whole)
    label = MONEY_COLUMN[run.regime()]
    plans = None
    if period == "monthly" and label != "Cost":
        from nomira.reports.plans import PLANS, plans_for
        plans = plans_for({PLANS[k].source: k for k in run.args.plan}, _plan_prices(run.args))
    keys = sorted(grouped.rows, key=lambda k: (grouped.rows[k]["all"].last, k) if period == "session" else k)
    total = Tally()
    for k in keys:
        total.merge(grouped.rows[k]["all"])
    if run.args.json:
        if plans is None:  # (each row's JSON made without its dicts: thousands of sessions)
            rows = periods.encoded_rows(grouped, keys, period)
        else:
            rows = []
            for k in keys:
                entry = periods.row_dict(k, grouped.rows[k], period)
                entry["value_vs_plan"] = _vs_plan_json(k, by_source, plans)
                rows.append(entry)
        return _json(run, period, rows, total, label, collected)
    return _period_table(run, grouped, keys, total, label, plans, by_source, collected)


def _json(run: Run, period: str, rows, total: Tally, label: str, collected) -> str:
    return render_json({period: rows, "totals": total.as_dict(), "value_label": label,
                        "timezone": str(run.tz), **({"unreadable": run.unreadable} if run.unreadable else {}),
                        "scan": run.scan(collected)})


def _period_table(run, grouped, keys, total, label, plans, by_source, collected) -> str:
    period = run.args.period
    first = {"daily": "Date", "monthly": "Month", "session": "Session"}[period]
    headers = [first, "Input", "Output", "Cache W", "Cache R", "Total", label]
    align, optional = "lrrrrrr", (3, 4, 5)  # what a narrow terminal leaves out first
    if period == "session":
        headers = [first, "Project", "Calls", "Tokens", label, "Last"]
        align, optional = "llrrrl", (5, 2)
    if plans is not None:
        headers.append("vs plan")
        align += "l"
    rows = []
    for k in keys:
        row = grouped.rows[k]
        rows.append(_row(period, k, row["all"], plans, by_source, run))
        if run.args.breakdown:
            for m, t in sorted(row["models"].items(), key=lambda kv: -kv[1].total_usd):
                rows.append(_row(period, "  └ " + m, t, None, {}, run, breakdown=True)
                            + ([""] if plans is not None else []))
    rows.append(_row(period, "Total", total, None, {}, run) + ([""] if plans is not None else []))
    out = [table(headers, rows, align, style=run.style, shorten=(0,), optional=optional)]
    if total.unpriced_calls:
        why = "; ".join(f"{r} ({n})" for r, n in sorted(total.unpriced_reasons.items()))
        out.append(run.style.warn(fill(f"* {total.unpriced_calls} unpriced calls, not in the money column "
                                       f"(never counted as $0): {why}", run.style)))
    out += _pricing_notes(total, run)
    lost = lost_note(run.scan(collected))
    if lost:
        out.append(run.style.warn(fill(lost, run.style)))
    if plans is not None:
        names = ", ".join(f"{p.name} ${p.monthly_usd:,.0f}/mo" for p in plans.values())
        note = f"vs plan: API-equivalent value ÷ plan price ({names}); a multiple, not a bill"
        out.append(run.style.dim(fill(note, run.style)))
    return "\n".join(out) + "\n"


def _pricing_notes(total: Tally, run: Run) -> list[str]:
    """Calls logged with a modifier the table has no rate for, or without a model: priced at the standard
    rates, or as the agent's default model (`model_is_fallback`), said so (none: no line)."""
    notes = []
    if total.unpriced_modifiers:
        mods = ", ".join(f"{m} ({n})" for m, n in sorted(total.unpriced_modifiers.items()))
        notes.append(f"! modifier not priced, those calls at the standard rates: {mods}")
    if total.assumed_calls:
        notes.append(f"! {total.assumed_calls} call(s) logged no model: priced as the agent's default "
                     "(`report` names it, marked assumed)")
    return [run.style.warn(fill(n, run.style)) for n in notes]


def _row(period, key, t: Tally, plans, by_source, run, breakdown=False) -> list[str]:
    value = priced_usd(t.total_usd, t.calls, t.unpriced_calls)
    if period == "session":
        if breakdown or key == "Total":
            name, project, last = (key, "", "")
        else:
            name, project, last = short_id(key[1]), key[2], t.last.astimezone(run.tz).strftime("%Y-%m-%d %H:%M")
        return [name, project, str(t.calls), tokens(t.total_tokens), value, last]
    k = t.tokens
    row = [key, tokens(k[0]), tokens(k[1]), tokens(k[3] + k[4]), tokens(k[2]), tokens(t.total_tokens), value]
    if plans is not None:
        row.append(_vs_plan_text(key, by_source, plans))
    return row


def _plan_prices(args) -> dict[str, float]:
    """--plan-price prices the --plan in the same position, never every plan at once."""
    if len(args.plan_price) > len(args.plan):
        raise UserError("--plan-price prices the --plan given before it: name the plan too, e.g. "
                        "--plan claude-pro --plan-price 17")
    return dict(zip(args.plan, args.plan_price))


def _noting_plan_values(run: Run, priced, values: dict):
    """Pass `priced` through, summing each in-range call's value per (month, source)."""
    for e, c in priced:
        if c is not None:
            day = e.occurred_at.astimezone(run.tz).date()
            if periods.in_range(day, run.since, run.until):
                k = (day.isoformat()[:7], e.source)
                values[k] = values.get(k, 0.0) + c.total_usd
        yield e, c


def _vs_plan_json(month, values, plans) -> dict:
    return {src: {"plan": plan.key, "plan_usd": plan.monthly_usd, "value_usd": values[(month, src)],
                  "multiple": values[(month, src)] / plan.monthly_usd}
            for src, plan in plans.items() if (month, src) in values}


def _vs_plan_text(month, values, plans) -> str:
    parts = [f"{values[(month, src)] / plan.monthly_usd:.1f}x {plan.name.split()[0]}"
             for src, plan in plans.items() if (month, src) in values]
    return " · ".join(parts)


def blocks_text(run: Run, events, label: str) -> str:
    now = datetime.now(timezone.utc)
    bl = periods.blocks(run.priced(events), run.tz, run.since, run.until)
    if run.args.active:
        bl = [b for b in bl if b.is_active(now)]
    if run.args.json:
        from nomira.reports.money import stamp
        return json.dumps(stamp({"blocks": [{
            "source": b.source, "start": b.start.isoformat(), "end": b.end.isoformat(), "first": b.first.isoformat(),
            "last": b.last.isoformat(), "active": b.is_active(now), "models": sorted(b.models),
            **({"breakdown": [{"model": m, **t.as_dict()} for m, t in sorted(b.models.items())]}
               if run.args.breakdown else {}),
            **b.tally.as_dict(), **({"burn": b.burn(now)} if b.is_active(now) else {})} for b in bl],
            "value_label": label}), indent=2) + "\n"
    rows = []
    agents = len({b.source for b in bl}) > 1  # (each agent's windows apart: say whose each is)
    for b in bl:
        status = "ACTIVE" if b.is_active(now) else ""
        rows.append([b.start.astimezone(run.tz).strftime("%Y-%m-%d %H:%M"), status, str(b.tally.calls),
                     tokens(b.tally.total_tokens), priced_usd(b.tally.total_usd, b.tally.calls, b.tally.unpriced_calls),
                     f"{b.source}: " * agents + ", ".join(sorted(b.models))])
        if run.args.breakdown:
            for m, t in sorted(b.models.items(), key=lambda kv: -kv[1].total_usd):
                rows.append(["", "", str(t.calls), tokens(t.total_tokens),
                             priced_usd(t.total_usd, t.calls, t.unpriced_calls), "  └ " + m])
    out = [table(["Block start", "", "Calls", "Tokens", label, "Models"], rows, "llrrrl", style=run.style,
                 shorten=(5,), optional=(2,))]
    for b in (b for b in bl if b.is_active(now)):
        burn = b.burn(now)
        left = b.minutes_left(now)
        ends = f"{b.end.astimezone(run.tz):%H:%M} ({left:.0f} min left)"
        text = (f"no rate yet (its calls span no time); ends {ends}" if burn is None else
                f"{usd(burn['cost_per_hour_usd'])}/h, {burn['tokens_per_minute']:,.0f} tokens/min; "
                f"projected {usd(burn['projected_cost_usd'])} by {ends}")
        whose = f" ({b.source})" * agents
        out.append(run.style.bold(fill(f"Active block{whose}: {usd(b.tally.total_usd)} so far, {text}", run.style)))
    out += _pricing_notes(merged([b.tally for b in bl]), run)
    if run.args.active and not bl:
        out.append("no active block")
    return "\n".join(out) + "\n"


__all__ = ["add_arguments", "cmd_period", "UserError"]
