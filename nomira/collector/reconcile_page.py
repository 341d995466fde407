"""/reconcile (HTML, .json, .csv) and the dashboard's reconciliation card.

The page shows the last `nomira reconcile` run (stored by the command), narrowed to the view
and scoped exactly like every other page (a tenant viewer sees only their tenant). It reads no
events, so it stays fast at millions of them, and says when the run is older than the newest
bill import or event.
"""
from __future__ import annotations

import csv
import io

from nomira.collector import csvout
from nomira.collector.http import Response
from nomira.collector.markup import Markup, esc, join
from nomira.collector.pages import _qs, kpi, layout, periods_nav
from nomira.collector.svg import bar_chart
from nomira.reconcile import ledger
from nomira.reconcile.windows import stored
from nomira.reports.render import usd as money

CSV_COLUMNS = ("tenant", "provider", "day", "model", "accounts", "status", "basis", "billed_usd", "estimated_usd",
               "delta_usd", "billed_tokens", "estimated_tokens", "delta_tokens", "billed_requests",
               "estimated_requests", "delta_requests", "adjustment_usd", "reasons", "bill_ref")
STATUS_TEXT = {"within": "within tolerance", "over": "over tolerance", "billed_not_observed": "billed, not observed",
               "observed_not_billed": "observed, not billed"}


def view(app, req, ext: str | None) -> Response:
    ctx = dict(app.ctx(req), reconcile=True)
    report = stored(app.db, ctx["tenant"], ctx["since"])
    if ext == ".json":
        return Response.json(report)
    if ext == ".csv":
        return Response(to_csv(report["windows"]), content_type="text/csv; charset=utf-8",
                        headers=[("Content-Disposition", 'attachment; filename="reconcile.csv"')])
    return Response.html(page(report, ctx))


def _cell(value):
    """CSV cells a spreadsheet will not run as a formula (bill files are untrusted input)."""
    return csvout.cell("; ".join(map(str, value)) if isinstance(value, list) else value)


def to_csv(windows: list[dict]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for row in windows:
        w.writerow([_cell(row.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def card(db, ctx: dict) -> dict:
    """Cheap figures for the home page: bill lines and adjustments only, no event scan."""
    lines = ledger.bill_lines(db, ctx["tenant"], ctx["since"])
    adjs = ledger.adjustments(db, ctx["tenant"], ctx["since"])
    return {"billed_usd": sum(ln["cost_usd"] or 0.0 for ln in lines), "billed_days": len({ln["day"] for ln in lines}),
            "adjustments": len(adjs), "adjustments_usd": sum(a["cost_usd"] for a in adjs)}


def _money(v) -> str:
    return "—" if v is None else money(v)


def _num(v) -> str:
    return "—" if v is None else f"{v:,}"


def _silent(w: dict) -> str:
    names = ", ".join(f"{s['developer']} ({s['source']})" for s in w.get("silent") or [])
    return f"; silent that day: {names}" if names else ""


def _table(head: list[str], rows: list[list]) -> Markup:
    return Markup("<table><tr>" + join(Markup(f"<th>{esc(h)}</th>") for h in head) + "</tr>"
                  + join(Markup("<tr>" + join(Markup(f"<td>{esc(c)}</td>") for c in r) + "</tr>") for r in rows)
                  + "</table>")


def page(r: dict, ctx: dict) -> str:
    t = r["totals"]
    every = ctx["tenant"] is None
    kpis = [kpi("Reconciled (billed days)", money(t["reconciled_usd"]), "the bill: authoritative"),
            kpi("Estimated (billed days)", money(t["estimated_billed_usd"]), "from observed events"),
            kpi("Adjustments", money(t["adjustments_usd"]), f"{len(r['adjustments'])} recorded"),
            kpi("Estimated (not billed)", money(t["estimated_unbilled_usd"]), "no bill imported for these")]
    lead = (lambda x: [x["tenant"] or "(none)"]) if every else (lambda x: [])  # noqa: E731
    daily = [[*lead(d), d["day"], d["provider"], _money(d["billed_usd"]), money(d["estimated_usd"]),
              _money(d["delta_usd"]), d["basis"], STATUS_TEXT[d["status"]]] for d in r["daily"]]
    flagged = [[*lead(w), w["day"], w["provider"], w["model"] or "(all)", ", ".join(w["accounts"]) or "—",
                _money(w["billed_usd"]), money(w["estimated_usd"]), _num(w["delta_tokens"]),
                _num(w["delta_requests"]), "; ".join(w["reasons"]) + _silent(w), _money(w["adjustment_usd"])]
               for w in r["windows"] if w["status"] != "within"]
    missing = [[*lead(d), d["day"], d["provider"], STATUS_TEXT[d["class"]],
                ", ".join(f"{s['developer']} ({s['source']})" for s in d.get("silent", [])) or "—"]
               for d in r["missing_days"]]
    adjs = [[*lead(a), a["day"], a["provider"], a["model"] or "(all)", money(a["cost_usd"]), a["reason"],
             a["bill_ref"]] for a in r["adjustments"]]
    excluded = "".join(f"{x['calls']:,} {x['provider']} subscription calls ({money(x['value_usd'])} API-equivalent "
                       "value) left out. " for x in r["excluded_subscription"])
    tcol = ["Tenant"] if every else []
    billed_days = {}
    for d in r["daily"]:
        billed_days[d["day"]] = billed_days.get(d["day"], 0.0) + (d["billed_usd"] or 0.0)
    body = Markup(
        "<h1>Invoice reconciliation</h1>" + periods_nav(ctx, "/reconcile")
        + '<div class="kpis">' + join(kpis) + "</div>"
        + (Markup('<section><h2>Warnings</h2><ul>' + join(Markup(f"<li>{esc(w)}</li>") for w in r["warnings"])
                  + "</ul></section>") if r["warnings"] else "")
        + '<section><h2>Next steps</h2><ul>' + join(Markup(f"<li>{esc(s)}</li>") for s in r["next_steps"])
        + "</ul></section>"
        + "<section><h2>Billed per day (reconciled)</h2>" + bar_chart(sorted(billed_days.items()), "Billed per day")
        + "</section><section><h2>Daily comparison</h2>"
        + _table([*tcol, "Day", "Provider", "Billed", "Estimated", "Delta", "Basis", "Status"], daily)
        + "</section><section><h2>Windows outside tolerance</h2>"
        + (_table([*tcol, "Day", "Provider", "Model", "Account", "Billed", "Estimated", "Δ tokens", "Δ requests",
                   "Reason", "Adjustment"], flagged) if flagged else Markup("<p>None.</p>"))
        + "</section><section><h2>Missing days</h2>"
        + (_table([*tcol, "Day", "Provider", "Class", "Silent that day (active the week before)"], missing)
           if missing else Markup("<p>None: every billed day was observed and every observed day billed.</p>"))
        + "</section><section><h2>Adjustments recorded</h2>"
        + (_table([*tcol, "Day", "Provider", "Model", "Amount", "Reason", "From bill row"], adjs) if adjs
           else Markup("<p>None.</p>"))
        + f'</section><section><p class="note">{esc(excluded + r["subscription_note"])} Tolerances: '
        + esc(", ".join(f"{k} {v['text']}" for k, v in r["tolerances"].items()))
        + f'. <a href="/reconcile.json{esc(_qs(ctx))}">JSON</a> · <a href="/reconcile.csv{esc(_qs(ctx))}">CSV</a>'
        + "</p></section>")
    return layout("Reconciliation", body, ctx)
