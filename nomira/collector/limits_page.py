"""/limits (HTML, .json, .csv): each developer's current subscription windows, and their ingest.

Developers ship `limit_snapshot` records beside their usage (`nomira ship`, the hooks); the
store keeps the newest per developer and window (nomira/ledger/limits.py). The page is scoped like
every other (a tenant viewer sees only their tenant; `?developer=` narrows it), reads only that
small table, and marks a snapshot older than STALE_AFTER as stale: a percentage that old says
little about a five-hour window.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from nomira.ledger import limits, wire
from nomira.collector import csvout
from nomira.collector.http import Response
from nomira.collector.markup import Markup, esc, join
from nomira.collector.pages import _qs, layout
from nomira.reports.limits import duration, project, recent_pace, window_label

STALE_AFTER = timedelta(hours=1)
CSV_COLUMNS = ("tenant", "developer", "agent", "window", "label", "used_percent", "window_minutes", "resets_at",
               "resets_in_seconds", "source", "observed_at", "age_seconds", "stale", "pace", "projection",
               "hit_at", "at_reset_percent")
EMPTY = ("No limit snapshots yet. Each developer sends theirs with `nomira ship` (or `nomira ship --watch`, or "
         "the hooks from `nomira hooks install`): Codex logs carry its rate limits; for Claude Code, set up "
         "`nomira statusline` in Claude Code's settings.json, or run `nomira limits --fetch` before shipping.")


# --- ingest: the second kind of record /ingest and /v1/usage/events accept ---------------

def limit_snapshot(item: dict, now: datetime) -> dict:
    """The item, validated by the limit snapshot allowlist (SchemaError names the field)."""
    wire.assert_limit_snapshot(item, now)
    return item


def store_limits(db, records: list[dict], tenant: str | None, metrics) -> list[tuple[bool, str]]:
    results = limits.store_snapshots(db, records, tenant)
    deduped = sum(d for d, _ in results)
    metrics.add(ingest_limit_snapshots=len(results) - deduped, ingest_deduped=deduped)
    return results


def in_item_order(items: list, event_results: list, limit_results: list) -> list:
    """One answer per received item, in the order they came."""
    ev, lim = iter(event_results), iter(limit_results)
    return [next(lim) if wire.is_limit_snapshot(item) else next(ev) for item in items]


# --- the page -----------------------------------------------------------------------

def view(app, req, ext: str | None) -> Response:
    ctx = app.ctx(req)
    developer = dict(ctx["filters"].eq).get("developer")
    now = datetime.now(timezone.utc)
    found = [w for w in limits.current(app.db, ctx["tenant"]) if developer is None or w.developer == developer]
    data = rows(found, now)
    if ext == ".json":
        return Response.json({"generated_at": now.isoformat(timespec="seconds"),
                              "stale_after_seconds": STALE_AFTER.total_seconds(), "limits": data})
    if ext == ".csv":
        return Response(to_csv(data), content_type="text/csv; charset=utf-8",
                        headers=[("Content-Disposition", 'attachment; filename="limits.csv"')])
    return Response.html(page(data, ctx))


def rows(windows: list[limits.CurrentWindow], now: datetime) -> list[dict]:
    """One dict per developer and window: figures, age, and the projection at the recent pace
    where two snapshots of the window allow it, else at the window's average pace."""
    out = []
    for w in windows:
        s = w.snapshot
        recent = recent_pace(s, w.prev_used_percent, w.prev_observed_at, now)
        p = recent or project(s, now)
        out.append({"tenant": w.tenant, "developer": w.developer, **s.as_dict(), "label": window_label(s),
                    "resets_in_seconds": (s.resets_at - now).total_seconds() if s.resets_at else None,
                    "age_seconds": (now - s.observed_at).total_seconds(), "stale": now - s.observed_at > STALE_AFTER,
                    "pace": "recent" if recent else "window average", **p.as_dict(),
                    "projection": p.status})
    return out


def to_csv(data: list[dict]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in data:
        w.writerow([csvout.cell(r.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def _projection_text(r: dict, now: datetime) -> str:
    status = r["status"]
    if status == "reset":
        return "window has reset since this snapshot"
    if status == "reached":
        return "limit reached"
    if status == "unknown":
        return "too early to project" if r["resets_at"] else "no reset time: no projection"
    pace = "recent pace" if r["pace"] == "recent" else "window's average pace"
    if status == "will_hit":
        hit, resets = datetime.fromisoformat(r["hit_at"]), datetime.fromisoformat(r["resets_at"])
        when = f"in {duration(hit - now)}" if hit > now else "already"
        return f"at the {pace}: 100% {when}, {duration(resets - hit)} before the reset"
    return f"at the {pace}: won't hit it (about {r['at_reset_percent']:.0f}% at the reset)"


def _bar(percent: float) -> Markup:
    width = max(0.0, min(percent, 100.0))
    level = "over" if percent >= 90 else ""
    return Markup(f'<span class="limitbar {level}" role="img" aria-label="{esc(f"{percent:.0f}% used")}">'
                  f'<span style="width:{width:.1f}%"></span></span>')


def page(data: list[dict], ctx: dict) -> str:
    now = datetime.now(timezone.utc)
    every = ctx["tenant"] is None
    q = _qs(ctx)
    head = [*(["Tenant"] if every else []), "Developer", "Window", "Used", "Resets in", "Projection", "Seen"]
    body = []
    for r in data:
        resets = ("unknown" if r["resets_in_seconds"] is None else "reset" if r["resets_in_seconds"] <= 0
                  else duration(timedelta(seconds=r["resets_in_seconds"])))
        seen = f"{duration(timedelta(seconds=r['age_seconds']))} ago · {r['source']}"
        stale = Markup(' <b class="stale" title="older than '
                       f'{esc(duration(STALE_AFTER))}: the window may have moved since">stale</b>') if r["stale"] else ""
        link = f"/developer/{quote(r['developer'], safe='')}{q}"
        cells = [*([esc(r["tenant"] or "(none)")] if every else []),
                 Markup(f'<a href="{esc(link)}">{esc(r["developer"] or "(none)")}</a>'), esc(r["label"]),
                 Markup(_bar(r["used_percent"]) + " " + esc(f"{r['used_percent']:.0f}%")), esc(resets),
                 esc(_projection_text(r, now)), Markup(esc(seen) + stale)]
        body.append(Markup("<tr>" + join(Markup(f"<td>{c}</td>") for c in cells) + "</tr>"))
    table = (Markup('<div class="scroll"><table><thead><tr>' + join(Markup(f"<th>{esc(h)}</th>") for h in head)
                    + "</tr></thead><tbody>" + join(body) + "</tbody></table></div>") if data
             else Markup(f'<p class="empty">{esc(EMPTY)}</p>'))
    style = Markup("<style>.limitbar{display:inline-block;width:80px;height:8px;border-radius:4px;"
                   "background:var(--line,#ddd);vertical-align:middle;overflow:hidden}.limitbar span{display:block;"
                   "height:100%;background:var(--accent,#3b6)}.limitbar.over span{background:#c33}"
                   ".stale{color:#b60;font-weight:600}</style>")
    developers = len({(r["tenant"], r["developer"]) for r in data})
    note = (f"{developers} developer(s), {len(data)} window(s). The projection uses the recent pace where two "
            "snapshots of the same window allow it, else the window's average pace since it opened. A snapshot "
            f"older than {duration(STALE_AFTER)} is marked stale.")
    body_html = Markup(
        style + "<h1>Subscription limits</h1><section><h2>Current windows per developer</h2>" + table
        + f'<p class="note">{esc(note)} <a href="/limits.json{esc(q)}">JSON</a> · '
        f'<a href="/limits.csv{esc(q)}">CSV</a></p></section>')
    return layout("Limits", body_html, ctx)
