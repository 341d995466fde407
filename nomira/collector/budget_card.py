"""Budget alerts on the dashboard (a banner) and on /metrics (gauges per budget).

The budgets are the collector host's budgets.toml (`NOMIRA_BUDGETS`, else
`$XDG_CONFIG_HOME/nomira/budgets.toml`), counted over the store exactly as `nomira budget check --db`
counts them (`alerts.evaluate.from_store`, the same windows in the host's timezone), so the banner, the
gauges and the webhook agree. A view shows every budget to the all-tenants (admin) view, and to a view
of one tenant only the budgets scoped to that tenant: a developer, project or tag budget counts every
tenant's usage, which a tenant's viewer must not see. Limit budgets (a subscription window's used %) are
read on each developer's machine and are not evaluated here. Figures are recomputed at most once per
`TTL` seconds per process: a page load costs no scan.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from nomira.collector.markup import Markup, esc, join

TTL = 60.0
MAX_GAUGES = 100  # budgets exported to /metrics: labels stay bounded whatever the file holds


class Board:
    """The collector process's cached evaluation of its budgets."""

    def __init__(self, env=os.environ, ttl: float = TTL):
        self.env, self.ttl = env, ttl
        self.lock = threading.Lock()
        self.at, self.statuses, self.error = None, [], None

    def current(self, db) -> tuple[list, str | None]:
        """(statuses of the money budgets, the file's error if it is invalid), at most `ttl` old."""
        with self.lock:
            if self.at is not None and time.monotonic() - self.at < self.ttl:
                return self.statuses, self.error
            self.statuses, self.error = evaluate(db, self.env)
            self.at = time.monotonic()
            return self.statuses, self.error


def evaluate(db, env) -> tuple[list, str | None]:
    from datetime import datetime, timezone

    from nomira import dates
    from nomira.alerts.budgets import BudgetError, load
    from nomira.alerts.evaluate import from_store
    try:
        budgets = [b for b in load(env).budgets if not b.limit]
    except BudgetError as exc:
        sys.stderr.write(f"nomira serve: budgets not shown: {exc}\n")
        return [], str(exc)
    if not budgets:
        return [], None
    return from_store(budgets, db, datetime.now(timezone.utc), dates.local_tz(env.get("NOMIRA_BUDGET_TZ"))), None


def visible(statuses, ctx: dict) -> list:
    """The budgets this view may show: all on the all-tenants view, else its tenant's own."""
    tenant = ctx.get("tenant")
    if tenant is None and ctx["viewer"].admin:
        return list(statuses)
    return [s for s in statuses if s.budget.scope == "tenant" and s.budget.match == tenant]


def card(board: Board, db, ctx: dict) -> dict:
    """The dashboard's budget alerts: budgets of this view at or over one of their thresholds."""
    statuses, error = board.current(db)
    shown = [s.as_dict() for s in visible(statuses, ctx) if s.crossed]
    return {"alerts": shown, "error": error if ctx["viewer"].admin else None}


def banner(c: dict | None) -> Markup:
    """A banner above the figures; nothing when no budget of the view is at a threshold."""
    from nomira.reports.render import usd
    if not c or not (c["alerts"] or c["error"]):
        return Markup("")
    span = {"day": "today", "week": "this week", "month": "this month", "block": "this 5-hour block"}
    items = [Markup(f"<li><b>{esc(a['name'])}</b>: {esc(usd(a['spent_usd']))} of {esc(usd(a['budget_usd']))} "
                    f"{esc(span.get(a['window'], a['window']))} ({esc(format(a['percent'], '.0f'))}%, "
                    f"{esc(a['crossed'][-1])}% threshold reached"
                    + (f"; {esc(a['unpriced_calls'])} unpriced call(s) not counted" if a["unpriced_calls"] else "")
                    + ")</li>") for a in c["alerts"]]
    if c["error"]:
        items.append(Markup(f"<li>budgets.toml not read: {esc(c['error'])}</li>"))
    return Markup('<section class="budgets" role="status" style="border-color:var(--accent)">'
                  f"<h2>Budget alerts</h2><ul>{join(items)}</ul></section>")


def _label(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped, length bounded."""
    return str(value)[:100].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metric_lines(board: Board, db) -> list[str]:
    """Gauges per money budget: spent, limit and ratio in the current window (every tenant's budgets:
    /metrics is an operator's view)."""
    statuses = [s for s in board.current(db)[0] if not s.note][:MAX_GAUGES]
    out = []
    for name, help_text, value in (
            ("nomira_budget_spent_usd", "Priced spend in the budget's current window (USD; unpriced calls not "
             "counted)", lambda s: s.spent),
            ("nomira_budget_limit_usd", "The budget's amount per window (USD)", lambda s: s.budget.usd),
            ("nomira_budget_ratio", "Spent over limit in the current window (1 = 100%)",
             lambda s: s.spent / s.budget.usd),
            ("nomira_budget_unpriced_calls", "Calls in the window without a price (not counted in spent)",
             lambda s: s.unpriced_calls)):
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        out += [f'{name}{{budget="{_label(s.budget.name)}",scope="{s.budget.scope}",window="{s.budget.window}"}} '
                f"{value(s)}" for s in statuses]
    return out
