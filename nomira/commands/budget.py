"""`nomira budget set|list|rm|check`: budgets per developer, project, tenant or tag, and their alerts.

`list` shows where each budget stands; `check` also sends what is due (once per threshold and
window) to the webhook and exits 1 when a webhook could not be reached. Both read the local logs,
or a store with --db (every developer's shipped usage).
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from nomira.cli import Failure, Run, UserError

STATUS_FILE = "budgets_status.json"  # the last evaluation, for the statusline (which must stay fast)


def add_arguments(name, p) -> None:
    from nomira.cli import SOURCE_CHOICES
    from nomira.commands import shared_option
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("set", help="add or replace a budget")
    s.add_argument("name")
    amount = s.add_mutually_exclusive_group(required=True)
    amount.add_argument("--usd", type=float, help="dollars per window (the bill, or API-equivalent value)")
    amount.add_argument("--limit", metavar="WINDOW", help="a subscription limit window instead, e.g. five_hour, "
                        "codex:seven_day (its used %%)")
    s.add_argument("--window", choices=["day", "week", "month", "block"], default="month")
    who = s.add_mutually_exclusive_group()
    for scope in ("developer", "project", "tenant"):
        who.add_argument(f"--{scope}", metavar="NAME", help=f"only this {scope}'s usage")
    who.add_argument("--tag", metavar="KEY=VALUE", help="only usage with this tag")
    s.add_argument("--thresholds", default="50,80,100", help="alert at these percents (default 50,80,100)")
    s.add_argument("--webhook", metavar="URL", help="where this budget's alerts go (JSON POST, Slack-compatible)")
    sub.add_parser("rm", help="remove a budget").add_argument("name")
    for action in ("list", "check"):
        a = sub.add_parser(action, help="where each budget stands" if action == "list"
                           else "evaluate and send due alerts to the webhook")
        a.add_argument("--json", action="store_true", help="machine-readable output")
        a.add_argument("--db", type=Path, default=None, help="count a store's events (every developer) "
                                                             "instead of the local logs")
        a.add_argument("--path", action="append", type=Path, metavar="PATH", help="read these logs")
        a.add_argument("--source", choices=sorted(SOURCE_CHOICES), default="all", help="which agents")
        a.add_argument("--timezone", "-z", default=None, help="IANA timezone of days, weeks and months")
        a.add_argument("--no-cache", action="store_true", help="read every file whole")
    shared_option(p, "--no-color", action="store_true", help=None)
    p.set_defaults(func=cmd_budget)


def _config(env=os.environ):
    from nomira.alerts.budgets import BudgetError, load
    try:
        return load(env)
    except BudgetError as exc:
        raise UserError(str(exc)) from None


def cmd_budget(args) -> int:
    from nomira.alerts.budgets import BudgetError, budget_from, save
    from nomira.reports.money import stamp
    cfg = _config()
    if args.action == "set":
        scope, match = next(((k, getattr(args, k)) for k in ("developer", "project", "tenant", "tag")
                             if getattr(args, k)), ("all", ""))
        try:
            thresholds = [int(t) for t in args.thresholds.split(",") if t.strip()]
        except ValueError:
            raise UserError(f"--thresholds takes percents like 50,80,100: {args.thresholds!r}") from None
        d = {"name": args.name, "scope": scope, "match": match, "window": args.window, "thresholds": thresholds,
             **({"usd": args.usd} if args.usd is not None else {"limit": args.limit}),
             **({"webhook": args.webhook} if args.webhook else {})}
        try:
            b = budget_from(d)
        except BudgetError as exc:
            raise UserError(str(exc)) from None
        cfg.budgets = [x for x in cfg.budgets if x.name != b.name] + [b]
        print(f"nomira: budget {b.name} saved in {save(cfg)}", file=sys.stderr)
        return 0
    if args.action == "rm":
        if not any(b.name == args.name for b in cfg.budgets):
            raise UserError(f"no budget named {args.name!r} (nomira budget list shows them)")
        cfg.budgets = [b for b in cfg.budgets if b.name != args.name]
        save(cfg)
        print(f"nomira: budget {args.name} removed", file=sys.stderr)
        return 0
    if not cfg.budgets:
        print("nomira: no budgets yet (nomira budget set NAME --usd 200 --window month)", file=sys.stderr)
        if args.json:
            print(json.dumps(stamp({"budgets": [], "alerts": []})))
        return 0
    statuses = evaluate(args, cfg.budgets)
    alerts = []
    if args.action == "check":
        from nomira.alerts.notify import fire
        alerts = fire(statuses, cfg.webhook)
    from nomira.alerts.evaluate import text
    if args.json:
        print(json.dumps(stamp({"budgets": [s.as_dict() for s in statuses], "alerts": alerts}), indent=1))
    else:
        for s in statuses:
            print(text(s))
        for a in alerts:
            where = ("webhook failed: " + a["error"]) if a["error"] else "sent" if a["webhook"] else "no webhook set"
            print(f"alert: {a['budget']} at {a['threshold']}% ({where})")
    return 1 if any(a["error"] for a in alerts) else 0


def evaluate(args, budgets) -> list:
    """Statuses of `budgets` now (from --db, else the local logs); also left for the statusline."""
    from nomira.alerts import evaluate as ev
    from nomira.commands.limits import gather
    now = datetime.now(timezone.utc)
    run = Run(args)
    snaps = gather(run, False, now)[0] if any(b.limit for b in budgets) else []
    if args.db is not None:
        from nomira.ledger import store
        if not args.db.is_file():
            raise Failure(f"no store at {args.db} (check --db)")
        db = store.open_db(args.db)
        try:
            statuses = ev.from_store(budgets, db, now, run.tz, snaps)
        finally:
            db.close()
    else:
        statuses = ev.from_events(budgets, recent_priced(run, run.collect(), budgets, now), now, run.tz, snaps)
    save_status(statuses, run.env)
    return statuses


def recent_priced(run: Run, collected, budgets, now) -> list:
    """(event, cost) pairs since the earliest window any budget counts (never --since/--until)."""
    from nomira.alerts.budgets import window_bounds
    from nomira.alerts.evaluate import RECENT
    earliest = min([now - RECENT, *(window_bounds(b.window, now, run.tz, now)[0] for b in budgets)])

    def task(events):
        return list(run.priced(e for e in events if e.occurred_at >= earliest))
    return collected.fold(task, lambda a, b: a + b, os.cpu_count() or 1) or []


class ReportBudgets:
    """The money budgets the terminal report shows under its totals, and how far back they count."""

    def __init__(self, budgets, env):
        from nomira.alerts.budgets import window_bounds
        from nomira.alerts.evaluate import RECENT
        from nomira import dates
        self.budgets, self.env = budgets, env
        self.now = datetime.now(timezone.utc)
        tz = dates.local_tz(None)
        self.earliest = min([self.now - RECENT, *(window_bounds(b.window, self.now, tz, self.now)[0]
                                                   for b in budgets)]) - timedelta(days=1)  # any --timezone

    def lines(self, run: Run, recent) -> list[str]:
        from nomira.alerts import evaluate as ev
        statuses = ev.from_events(self.budgets, recent, self.now, run.tz)
        save_status(statuses, run.env)
        return [ev.text(s) for s in statuses if not s.note]


def report_budgets(env) -> ReportBudgets | None:
    """None without money budgets in budgets.toml (then the report does no extra work)."""
    money = [b for b in _config(env).budgets if not b.limit]
    return ReportBudgets(money, env) if money else None


def save_status(statuses, env) -> None:
    from nomira.dirs import state_home, write_atomic
    path = state_home(env) / STATUS_FILE
    rows = [{"name": s.budget.name, "percent": s.percent, "crossed": s.crossed,
             "end": s.end.isoformat() if s.end else None} for s in statuses if s.percent is not None]
    try:
        write_atomic(path, json.dumps(rows))
    except OSError:
        pass  # the statusline then shows no budget segment; the report and check are unaffected
