"""Server-rendered HTML. Each page renders one dict; every value passes through `esc`.

Layout: one column that stacks from 360 px, cards in a grid from 760 px; tables scroll inside
their card and drop to key columns on a phone; light and dark (prefers-color-scheme) themes
with AA contrast and visible focus. No external CSS, JS or fonts; the one script (import
drop zone) is progressive enhancement.
"""
from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from nomira.collector import brand, costsplit
from nomira.collector.markup import Markup, esc, join
from nomira.collector.budget_card import banner as budget_banner
from nomira.collector.svg import hbar_chart, responsive, trend_chart
from nomira.reports.render import pct, tokens as fmt_tokens, usd as money

CSS = brand.dashboard_css() + """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--fg);background:var(--bg)}
a{color:var(--link)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--card);padding:6px;z-index:9}
header{background:var(--head);color:var(--head-fg);padding:8px 16px;display:flex;gap:6px 16px;align-items:center;
flex-wrap:wrap}
header a{color:var(--head-link);text-decoration:none;padding:4px 0}header a:hover{text-decoration:underline}
header b{font-size:16px;margin-right:8px}header .who{color:#c3cad5;font-size:13px}
header form{margin:0 0 0 auto}
main{max-width:1180px;margin:0 auto;padding:12px 16px 40px}
h1{font-size:21px;margin:8px 0;overflow-wrap:anywhere}h2{font-size:16px;margin:2px 0 10px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:12px 0}
.kpi,section{background:var(--card);border:1px solid var(--line);border-radius:8px}
.kpi{padding:10px 12px;min-width:0}.kpi .v{font-size:22px;font-weight:650;overflow-wrap:anywhere}
.kpi .l{color:var(--muted);font-size:13px}
section{padding:12px 14px;margin:12px 0;min-width:0;overflow-x:auto}
.grid{display:grid;grid-template-columns:1fr;gap:0 16px}
@media (min-width:980px){.grid{grid-template-columns:1fr 1fr}}
.note,.empty{color:var(--muted);font-size:13px}.headline{font-size:15px;font-weight:600}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
td,th{padding:5px 8px;border-bottom:1px solid var(--grid);text-align:right;white-space:nowrap}
thead th{color:var(--muted);font-weight:600;font-size:13px;border-bottom-color:var(--line)}
td:first-child,th:first-child{text-align:left;white-space:normal;overflow-wrap:anywhere;min-width:7em}
tbody th{font-weight:normal}
.periods{display:flex;flex-wrap:wrap;gap:4px 6px;margin:6px 0}
.periods a{padding:3px 10px;border:1px solid var(--line);border-radius:14px;text-decoration:none;background:var(--card)}
.periods a.on{background:var(--accent);border-color:var(--accent);color:var(--on-accent);font-weight:600}
details.filters{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 12px;margin:8px 0}
details.filters summary{cursor:pointer;font-weight:600}
.fgrid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin:10px 0}
.fgrid label{display:flex;flex-direction:column;font-size:13px;color:var(--muted);min-width:0}
input,select,button{font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--muted);
border-radius:6px;padding:5px 8px;min-width:0;max-width:100%}
button,.button{background:var(--accent);border-color:var(--accent);color:var(--on-accent);cursor:pointer;
font-weight:600;text-decoration:none;display:inline-block;border-radius:6px;padding:5px 12px}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}
.chip{border:1px solid var(--line);border-radius:14px;padding:2px 10px;background:var(--card);font-size:13px;
overflow-wrap:anywhere}
.chip a{text-decoration:none;margin-left:4px}
.chart-box svg{display:block;width:100%;height:auto}.chart-box svg.hbar{max-width:640px}
.chart-box .n{display:none}
@media (max-width:640px){.chart-box .w{display:none}.chart-box .n{display:block}
 main{padding:8px 10px 32px}section{padding:10px}td.opt,th.opt{display:none}}
svg .bar{fill:var(--accent)}svg .s-input{fill:var(--s-input)}svg .s-output{fill:var(--s-output)}
svg .s-cache_read{fill:var(--s-cache_read)}svg .s-cache_write{fill:var(--s-cache_write)}
svg .s-unsplit{fill:var(--s-unsplit)}svg .hit{fill:transparent}svg .bucket:hover .bar{opacity:.8}
svg text{fill:var(--muted);font-size:12px}svg .axis-title{font-weight:600}svg .label{fill:var(--fg)}
svg a text,svg a{fill:var(--link)}svg .grid{stroke:var(--grid)}svg .base{stroke:var(--muted)}
svg .plan line{stroke:var(--plan);stroke-width:2;stroke-dasharray:6 4}svg .plan text{fill:var(--plan);font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px;color:var(--muted);margin:6px 0 0}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.actions{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:13px;margin-top:8px}
.drop{display:block;border:2px dashed var(--muted);border-radius:10px;padding:28px 16px;text-align:center;
background:var(--bg);cursor:pointer}
.drop.over{border-color:var(--accent);background:var(--card)}
.drop input[type=file]{display:block;margin:10px auto;max-width:100%}
progress{width:100%;height:10px;margin-top:10px}
.result{border-left:4px solid var(--ok);padding:6px 12px;margin:10px 0}.result.err{border-left-color:var(--err)}
.err{color:var(--err)}.ok{color:var(--ok)}
code{overflow-wrap:anywhere}
header .brand{display:inline-flex;align-items:center;gap:7px}
"""
FAVICON = brand.data_url(brand.MARK_SVG)  # the tab icon and the header's mark

PERIOD_LINKS = (("today", "Today"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("all", "All time"))
FILTER_LABELS = (("developer", "Developer"), ("project", "Project"), ("model", "Model"), ("source", "Source"),
                 ("feature", "Feature"), ("workflow", "Workflow"), ("customer", "Customer"), ("env", "Env"))
_DATE_SUFFIX = re.compile(r"(-\d{8}|@\d{8}|-v\d+(:\d+)?|-latest)$")


def segment(name: str) -> str:
    """A name as one URL path segment: `/` and `%` encoded, and `.` too, so a name ending in
    `.json` is not read as the page's JSON twin."""
    return quote(name, safe="").replace(".", "%2E")


def short_model(name: str) -> str:
    """A model name short enough for a phone: no vendor path or region prefix, no date stamp,
    no `claude-` (the full name stays in the title)."""
    short = (name or "").rsplit("/", 1)[-1]
    region = re.match(r"^(us|eu|apac|global)\.anthropic\.", short)
    short = short[region.end():] if region else short
    for _ in range(3):  # `-20250929-v1:0`
        short = _DATE_SUFFIX.sub("", short)
    short = re.sub(r"^claude-(?=[a-z])", "", short) + (f" · {region.group(1)}" if region else "")
    return short or name


def model_cell(name: str) -> Markup:
    return Markup(f'<span title="{esc(name)}">{esc(short_model(name))}</span>')


# --- chrome ---

def layout(title: str, body: Markup, ctx: dict) -> str:
    viewer = ctx.get("viewer")
    q = _qs(ctx)
    nav = [Markup(f'<b class="brand"><img src="{esc(FAVICON)}" alt="" width="22" height="22">Nomira</b>'),
           Markup(f'<a href="/{q}">Dashboard</a>'),
           Markup(f'<a href="/compare/developers{q}">Developers</a>'),
           Markup(f'<a href="/import{esc(tenant_qs(ctx))}">Import</a>')]
    if ctx.get("reconcile"):
        nav.append(Markup(f'<a href="/reconcile{q}">Reconcile</a>'))
    nav.append(Markup(f'<a href="/limits{q}">Limits</a>'))
    if viewer:
        who = "all tenants" if viewer.admin and not ctx.get("tenant") else f"tenant {ctx.get('tenant') or ''}"
        nav.append(Markup(f'<span class="who">{esc(who)}</span>'))
    if viewer and ctx.get("login_used"):
        nav.append(Markup('<form method="post" action="/logout"><input type="hidden" name="csrf" '
                          f'value="{esc(ctx.get("csrf"))}"><button>Log out</button></form>'))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<meta name=\"color-scheme\" content=\"light dark\">"
            f"<title>{esc(title)} · Nomira</title><link rel=\"icon\" type=\"image/svg+xml\" href=\"{esc(FAVICON)}\">"
            f"<style>{CSS}</style></head><body>"
            "<a class=\"skip\" href=\"#main\">Skip to content</a><header><nav aria-label=\"Main\" "
            "style=\"display:contents\">" + join(nav) + f"</nav></header><main id=\"main\">{tenant_chip(ctx)}{body}"
            "</main></body></html>")


def tenant_qs(ctx: dict) -> str:
    """`?tenant=X` for an admin viewing one tenant (pages without other filters keep the tenant too)."""
    viewer = ctx.get("viewer")
    return f"?{urlencode({'tenant': ctx['tenant']})}" if viewer and viewer.admin and ctx.get("tenant") else ""


def tenant_chip(ctx: dict) -> Markup:
    """An admin inside one tenant sees which, and a way back to all tenants from the same page."""
    if not tenant_qs(ctx):
        return Markup("")
    back = ctx.get("path", "/") + _qs(ctx, tenant=None)
    return Markup(f'<div class="chips"><span class="chip tenant">Viewing tenant <b>{esc(ctx["tenant"])}</b> '
                  f'<a href="{esc(back)}">switch to all tenants</a></span></div>')


def project_title(name: str, paths: dict | None) -> str:
    """A project's full path where this machine knows it (never from the store), else its name."""
    path = (paths or {}).get(name)
    return f"{name} — {path}" if path else name


def project_cell(paths: dict | None):
    def cell(name: str) -> Markup:
        path = (paths or {}).get(name)
        return Markup(f'<span title="{esc(path)}">{esc(name)}</span>') if path else esc(name)
    return cell


def _qs(ctx: dict, **extra) -> str:
    """This view's query string (period or dates, tenant for an admin, filters), with overrides."""
    f = ctx.get("filters")
    admin = bool(ctx.get("viewer") and ctx["viewer"].admin)
    if f is None:
        return ""
    return f.query(admin, **extra)


def error_page(status: int, message: str, ctx: dict) -> str:
    hint = {404: "The page or name you asked for is not here (or not in your tenant).",
            405: "That address does not take this kind of request.",
            422: "The store is up; this one view asks for more rows than it reads within its time limit. "
                 "Views without tag filters, and views with one, read rollups and stay fast."}.get(status, "")
    body = Markup(f"<h1>{status} — {esc(message)}</h1><section><p>{esc(hint)}</p>"
                  f'<p><a href="/{esc(_qs(ctx))}">Back to the dashboard</a></p></section>')
    return layout(f"{status} {message}", body, ctx)


def periods_nav(ctx: dict, path: str) -> Markup:
    f = ctx["filters"]
    links = [Markup(f'<a class="{"on" if p == f.period else ""}" href="{esc(path + _qs(ctx, period=p))}"'
                    + (' aria-current="true"' if p == f.period else "") + f'>{esc(label)}</a>')
             for p, label in PERIOD_LINKS]
    return Markup('<nav class="periods" aria-label="Period">' + join(links) + "</nav>")


def filter_form(ctx: dict, path: str, fixed: str | None = None) -> Markup:
    """A GET form: the URL is the state. `fixed` is the page's own dimension (not a filter here)."""
    f = ctx["filters"]
    admin = bool(ctx["viewer"].admin)
    active = dict(f.eq)
    suggestions = ctx.get("suggestions", {})
    fields = []
    if f.period != "range":
        fields.append(Markup(f'<input type="hidden" name="period" value="{esc(f.period)}">'))
    ranged = f.period == "range"
    fields.append(Markup(f'<label>From<input type="date" name="from" value="{esc(f.start if ranged else "")}"'
                         f'></label><label>To<input type="date" name="to" '
                         f'value="{esc(f.end if f.period == "range" and f.end else "")}"></label>'))
    if admin:
        fields.append(Markup(f'<label>Tenant<input name="tenant" list="dl-tenant" value="{esc(f.tenant or "")}" '
                             f'placeholder="all tenants"></label>'))
    for dim, label in FILTER_LABELS:
        if dim == fixed:
            continue
        attr = f' list="dl-{dim}"' if suggestions.get(dim) else ""
        fields.append(Markup(f'<label>{esc(label)}<input name="{dim}"{attr} value="{esc(active.get(dim, ""))}" '
                             f'placeholder="any"></label>'))
    lists = [Markup(f'<datalist id="dl-{esc(dim)}">' + join(Markup(f'<option value="{esc(v)}">') for v in values)
                    + "</datalist>") for dim, values in suggestions.items() if values]
    chips = [Markup(f'<span class="chip">{esc(label)}: {esc(active[dim])}'
                    f'<a href="{esc(path + _qs(ctx, **{dim: None}))}"'
                    f' aria-label="remove {esc(label)} filter">✕</a></span>')
             for dim, label in FILTER_LABELS if dim in active]
    if f.period == "range":
        chips.insert(0, Markup(f'<span class="chip">{esc(f.describe())}<a href="{esc(path + _qs(ctx, period="30d"))}" '
                               'aria-label="remove date range">✕</a></span>'))
    clear = {dim: None for dim in active}
    return Markup(
        (('<div class="chips">' + join(chips) + "</div>") if chips else "")
        + '<details class="filters"><summary>Filters'
        + (f" ({len(active)} active)" if active else "") + f'</summary><form method="get" action="{esc(path)}">'
        + '<div class="fgrid">' + join(fields) + "</div>" + join(lists)
        + f'<button>Apply</button> <a href="{esc(path + _qs(ctx, **clear))}">Clear filters</a></form></details>')


def kpi(label: str, value: str, note: str = "") -> Markup:
    return Markup(f'<div class="kpi"><div class="v">{esc(value)}</div><div class="l">{esc(label)}</div>'
                  + (f'<div class="note">{esc(note)}</div>' if note else "") + "</div>")


def times(x: float) -> str:
    return "<0.01x" if x < 0.01 else f"{x:.2f}x" if x < 1 else f"{x:.1f}x"


def cost_text(r: dict) -> str:
    if r["calls"] and r["unpriced_calls"] == r["calls"]:
        return "unpriced"
    return money(r["cost_usd"]) + ("*" if r["unpriced_calls"] else "")


def rows_table(rows: list[dict], first: str, link=None, cell=None, csv: str | None = None,
               caption: str | None = None) -> Markup:
    """Name, calls, tokens, cache reuse, cost; on a phone only the name and the cost."""
    if not rows:
        return Markup('<p class="empty">No rows for these filters.</p>')
    head = Markup(f'<thead><tr><th scope="col">{esc(first)}</th><th scope="col" class="opt">Calls</th>'
                  '<th scope="col" class="opt">Tokens</th><th scope="col" class="opt">Cache reuse</th>'
                  '<th scope="col">Cost</th></tr></thead>')
    body = []
    for r in rows:
        name = cell(r["name"]) if cell else esc(r["name"])
        if link:
            name = Markup(f'<a href="{esc(link(r["name"]))}">{name}</a>')
        body.append(Markup(f'<tr><th scope="row">{name}</th><td class="opt">{r["calls"]:,}</td>'
                           f'<td class="opt" title="{r["tokens"]:,} tokens">{esc(fmt_tokens(r["tokens"]))}</td>'
                           f'<td class="opt">{esc(pct(r["cache_reuse"]))}</td><td>{esc(cost_text(r))}</td></tr>'))
    cap = Markup(f'<caption class="note" style="text-align:left">{esc(caption)}</caption>') if caption else ""
    return Markup('<div class="scroll"><table>' + cap + head + "<tbody>" + join(body) + "</tbody></table></div>"
                  + (csv_link(csv) if csv else ""))


def csv_link(href: str) -> Markup:
    return Markup(f'<div class="actions"><a href="{esc(href)}" download>Download CSV</a></div>')


def legend(parts: tuple[str, ...], present: set) -> Markup:
    items = [Markup(f'<span><i style="background:var(--s-{esc(p)})"></i>{esc(costsplit.PART_LABELS[p])}</span>')
             for p in (*parts, "unsplit") if p in present]
    return Markup('<div class="legend">' + join(items) + "</div>") if items else Markup("")


BUCKET_HEADINGS = {"hour": "Hourly trend", "day": "Daily trend", "week": "Weekly trend", "month": "Monthly trend"}
X_TITLES = {"hour": "Hour (UTC)", "day": "Day (UTC)", "week": "Week starting Monday (UTC)", "month": "Month"}


def trend(d: dict, plan: tuple[float, str] | None = None) -> Markup:
    """Cost per hour, day, week or month, stacked by token type, with the plan line when given."""
    points = [(_bucket_name(d, name), v, s) for name, v, s in d["trend"]]
    present = {p for _, _, s in points for p in s}
    title = f"Cost per {d['bucket']}" + (" (UTC)" if d["bucket"] in ("hour", "day") else "")
    return Markup(responsive(trend_chart, points, title, "usd", X_TITLES[d["bucket"]], costsplit.PARTS,
                             costsplit.PART_LABELS, plan, wide=900)
                  + legend(costsplit.PARTS, present)
                  + (Markup('<div class="legend"><span><i style="background:var(--plan)"></i>'
                            f'{esc(plan[1])}</span></div>') if plan and plan[0] else ""))


def _bucket_name(d: dict, name: str) -> str:
    return f"week of {name}" if d["bucket"] == "week" else name


def tokens_trend(d: dict) -> Markup:
    points = [(_bucket_name(d, name), r["tokens"], {"input": r["input"], "output": r["output"],
                                                    "cache_read": r["cache_read"],
                                                    "cache_write": r["cache_write_5m"] + r["cache_write_1h"]})
              for name, r in d["trend_rows"]]
    return Markup(responsive(trend_chart, points, f"Tokens per {d['bucket']}", "tokens", X_TITLES[d["bucket"]],
                             costsplit.PARTS, costsplit.PART_LABELS, wide=900))


def empty_state(d: dict, ctx: dict, path: str) -> Markup:
    """Why a view is empty and what to do: the nearest period with data, and how to ship."""
    f = ctx["filters"]
    near = d.get("nearest_day")
    if near:
        link = path + _qs(ctx, **{"from": near[:8] + "01", "to": near, "period": None})
        hint = Markup(f'<p>The nearest day with data for these filters is <b>{esc(near)}</b>: '
                      f'<a href="{esc(link)}">view that month up to it</a> or '
                      f'<a href="{esc(path + _qs(ctx, period="all"))}">all time</a>.</p>')
    elif f.eq:
        hint = Markup('<p>No usage matches these filters in any period. '
                      f'<a href="{esc(path + _qs(ctx, **{k: None for k, _ in f.eq}))}">Clear the filters</a>.</p>')
    else:
        hint = Markup("<p>No usage has reached this collector yet.</p>")
    return Markup(f"<section><h2>No usage in {esc(f.describe())}</h2>{hint}"
                  "<p class=\"note\">Usage arrives when each developer ships it: "
                  "<code>nomira ship --remote URL --token KEY --watch</code> (the key from "
                  "<code>nomira tenant create NAME</code>), or upload a file from <code>nomira export</code> on "
                  f'<a href="/import{esc(tenant_qs(ctx))}">Import</a>.</p></section>')


# --- pages ---

def dashboard(d: dict, ctx: dict) -> str:
    k = d["kpis"]
    note = ("subscription usage at API rates, not a bill" if d["value_label"].startswith("API") else "")
    kpis = [kpi(d["value_label"], money(k["value_usd"]), note)]
    if k["api_cost_usd"] and k["value_usd"] != k["api_cost_usd"]:
        kpis.append(kpi("API cost (estimated)", money(k["api_cost_usd"])))
    if k.get("value_vs_plan") is not None:
        kpis.append(kpi("Value vs plan", times(k["value_vs_plan"]), k["plan_note"]))
    kpis += [kpi("Cache reuse", pct(k["cache_reuse"]), "prompt tokens served from cache"),
             kpi("Developers", str(k["developers"])), kpi("Calls", f"{k['calls']:,}")]
    rec = d.get("reconcile")
    if rec and rec["billed_days"]:
        kpis.append(kpi("Billed (reconciled)", money(rec["billed_usd"]),
                        f"imported bills, {rec['billed_days']} day(s)"))
    proj_link = lambda n: f"/project/{segment(n)}{_qs(ctx, project=None)}"  # noqa: E731
    dev_link = lambda n: f"/developer/{segment(n)}{_qs(ctx, developer=None)}"  # noqa: E731
    csv = lambda table: f"/index.csv{_qs(ctx, table=table)}"  # noqa: E731
    head = Markup(f"<h1>{esc(d['title'])}</h1>" + budget_banner(d.get("budget_alerts")) + periods_nav(ctx, "/")
                  + filter_form(ctx, "/"))
    if not k["calls"]:
        return layout(d["title"], Markup(head + empty_state(d, ctx, "/")), ctx)
    body = Markup(
        head + '<div class="kpis">' + join(kpis) + "</div>"
        + f"<section><h2>{esc(BUCKET_HEADINGS[d['bucket']])}</h2>" + trend(d, d.get("plan"))
        + csv_link(csv("day")) + "</section>"
        + '<div class="grid"><section><h2>By project</h2>'
        + responsive(hbar_chart, [(project_title(r["name"], d.get("project_paths")), r["cost_usd"],
                                   proj_link(r["name"]), r["name"]) for r in d["projects"][:12]],
                     "Cost by project", wide=520)
        + csv_link(csv("project")) + f'</section><section><h2><a href="/compare/developers{esc(_qs(ctx))}">'
        "By developer</a></h2>"
        + responsive(hbar_chart, [(r["name"], r["cost_usd"], dev_link(r["name"]), r["name"])
                                  for r in d["developers"][:12]], "Cost by developer", wide=520)
        + csv_link(csv("developer")) + "</section></div><section><h2>By model</h2>"
        + rows_table(d["models"], "Model", cell=model_cell, csv=csv("model"))
        + "</section>" + (reconcile_card(d["reconcile"], ctx) if d.get("reconcile") else ""))
    return layout(d["title"], body, ctx)


def reconcile_card(c: dict, ctx: dict) -> Markup:
    """Home-page card: the figures above are estimates; the bill, where imported, is the truth."""
    if not c["billed_days"]:
        text = "No bill imported for this period (nomira reconcile import FILE, or nomira reconcile fetch)."
    else:
        text = (f"Reconciled (billed): {money(c['billed_usd'])} over {c['billed_days']} day(s); "
                f"{c['adjustments']} adjustment(s) totalling {money(c['adjustments_usd'])}.")
    return Markup(f'<section><h2>Invoice reconciliation</h2><p>{esc(text)}</p><p class="note">Figures above are '
                  f'estimated from observed usage. <a href="/reconcile{esc(_qs(ctx))}">Daily comparison, deltas and '
                  f'next steps</a></p></section>')


def detail(d: dict, ctx: dict) -> str:
    """A developer's or a project's page: KPIs, trends, breakdowns, and the optimizer where the transcripts are."""
    other = "project" if d["kind"] == "developer" else "developer"
    link = lambda n: f"/{other}/{segment(n)}{_qs(ctx, **{other: None})}"  # noqa: E731
    path = f"/{d['kind']}/{segment(d['name'])}"
    csv = lambda table: f"{path}.csv{_qs(ctx, table=table)}"  # noqa: E731
    t, k, paths = d["totals"], d["kpis"], d.get("project_paths") or {}
    name = project_cell(paths)(d["name"]) if d["kind"] == "project" else esc(d["name"])
    head = Markup(f"<h1>{esc(d['kind'].capitalize())}: {name}</h1>" + periods_nav(ctx, path)
                  + filter_form(ctx, path, fixed=d["kind"]))
    if not t["calls"]:
        return layout(f"{d['kind']} {d['name']}", Markup(head + empty_state(d, ctx, path)), ctx)
    kpis = [kpi(d["value_label"], money(t["cost_usd"]), "API-equivalent value of the usage")]
    if k["share_of_team"] is not None:
        kpis.append(kpi("Share of team", pct(k["share_of_team"]), "of everyone's cost in this view"))
    if k.get("value_vs_plan") is not None:
        kpis.append(kpi("Value vs plan", times(k["value_vs_plan"]), k["plan_note"]))
    kpis.append(kpi("$/1k output", money(k["usd_per_1k_output"]) if k["usd_per_1k_output"] is not None else "—",
                    "cost per thousand output tokens"))
    kpis.append(kpi("Cache reuse", pct(t["cache_reuse"]), "prompt tokens served from cache"))
    if k.get("subagent_share") is not None:
        kpis.append(kpi("Sub-agent share", pct(k["subagent_share"]), "cost of sidechain calls"))
    opt = d.get("optimizer")
    if opt and d["kind"] == "project":
        bash = next((r for r in opt["tools"] if r["tool"] == "Bash"), None)
        kpis.append(kpi("Bash share", pct(bash["share_of_cost"]) if bash else "0%", "attributed, this machine"))
    kpis += [kpi("Sessions", f"{k['sessions']:,}"), kpi("Calls", f"{t['calls']:,}")]
    cell = project_cell(paths) if other == "project" else None
    body = Markup(
        head + '<div class="kpis">' + join(kpis) + "</div>"
        + f"<section><h2>{esc(BUCKET_HEADINGS[d['bucket']])}</h2>" + trend(d) + csv_link(csv("day"))
        + "</section><section><h2>Tokens by type</h2>" + tokens_trend(d)
        + legend(costsplit.PARTS, set(costsplit.PARTS) - {"unsplit"})
        + f"</section><div class=\"grid\"><section><h2>By {esc(other)}</h2>"
        + rows_table(d["breakdown"], other.capitalize(), link, cell=cell, csv=csv(other))
        + "</section><section><h2>By model</h2>" + rows_table(d["models"], "Model", cell=model_cell,
                                                              csv=csv("model")) + "</section></div>"
        + optimizer_sections(d))
    return layout(f"{d['kind']} {d['name']}", body, ctx)


# (key in the optimizer result, heading, first column, what groups it); the key comes from local.DASHBOARD_DIMENSIONS
DIMENSION_TABLES = (
    ("mcp_servers", "By MCP server", "MCP server",
     "the server in <code>mcp__&lt;server&gt;__&lt;tool&gt;</code> tool names"),
    ("skills", "By skill", "Skill", "the skill a <code>Skill</code> use invoked"),
    ("subagents", "By sub-agent type", "Sub-agent type",
     "the <code>subagent_type</code> of the <code>Task</code> that spawned each sub-agent"),
)


def table(cols, rows) -> Markup:
    """An optimizer table: (name, class) columns over rows already marked up."""
    return Markup('<div class="scroll"><table><thead><tr>'
                  + join(Markup(f'<th scope="col" class="{c}">{esc(n)}</th>') for n, c in cols)
                  + "</tr></thead><tbody>" + join(rows) + "</tbody></table></div>")


def dimension_table(rows: list[dict], heading: str, column: str, grouped_by: str) -> Markup:
    """One `optimize --by` table, shown only when something was named (more than the "(no ...)" row)."""
    if len(rows) < 2:
        return Markup("")
    shown = rows if len(rows) <= 12 else rows[:11] + rows[-1:]  # keep the "(no ...)" row: the column sums
    body = [Markup(f'<tr><th scope="row">{esc(r["name"])}</th><td class="opt">{r["calls"]:,}</td>'
                   f'<td class="opt">{r["uses"]:,}</td><td>{esc(money(r["cost_usd"]))}</td>'
                   f'<td>{esc(pct(r["share_of_cost"]))}</td></tr>') for r in shown]
    return Markup(f'</section><section><h2>{esc(heading)}</h2><p class="note">The same attribution grouped by '
                  f'{grouped_by}; the last row is everything else, so the column sums to the total.</p>'
                  + table([(column, ""), ("Calls", "opt"), ("Uses", "opt"), ("Cost", ""), ("Share", "")], body))


def optimizer_sections(d: dict) -> Markup:
    """Attributed cost by tool and file, sub-agents, top sessions, advice: from this machine's transcripts."""
    opt = d.get("optimizer")
    if not opt:
        return Markup(f'<section><h2>Optimizer</h2><p class="note">{esc(d.get("local_note") or "")}</p></section>')
    total = opt["total_cost_usd"]
    tools = [Markup(f'<tr><th scope="row">{esc(r["tool"])}</th><td class="opt">{r["calls"]:,}</td>'
                    f'<td class="opt">{r["uses"]:,}</td><td>{esc(money(r["cost_usd"]))}</td>'
                    f'<td>{esc(pct(r["share_of_cost"]))}</td></tr>') for r in opt["tools"][:12]]
    files = [Markup(f'<tr><th scope="row"><code>{esc(r["path"])}</code></th><td>{r["reads"]:,}</td>'
                    f'<td>{esc(money(r["cost_usd"]))}</td><td class="opt">{esc(money(r["saving_estimate_usd"]))}'
                    f'</td></tr>') for r in opt["files"][:10]]
    sessions = [Markup(f'<tr><th scope="row"><code>{esc(r["session_id"][:8])}</code></th><td>{esc(r["project"])}</td>'
                       f'<td>{esc(money(r["cost_usd"]))}</td></tr>') for r in opt["top_sessions"][:8]]
    side = opt["sidechain_cost_usd"]
    advice = [Markup(f"<li>{esc(a)}</li>") for a in opt["recommendations"]]
    return Markup(
        '<section><h2>Where the money went, by tool</h2><p class="note">From this machine\'s transcripts in this '
        "period (other filters do not apply), read now and never stored: each call's cost attributed by what put "
        "its tokens into the context (a Read's "
        f"share of the following calls' prompts; sub-agent calls to the Task that spawned them). Total "
        f"{esc(money(total))}.</p>"
        + table([("Tool", ""), ("Calls", "opt"), ("Uses", "opt"), ("Cost", ""), ("Share", "")], tools)
        + join(dimension_table(opt.get(key) or [], *labels) for key, *labels in DIMENSION_TABLES)
        + '</section><div class="grid"><section><h2>Most expensive file reads</h2>'
        + (table([("File", ""), ("Reads", ""), ("Cost", ""), ("Pin saves", "opt")], files) if files else
           Markup('<p class="empty">No file reads attributed.</p>'))
        + '<p class="note">Pin saves: the cost of repeat reads in a session; ignoring a file saves all of its '
        "cost.</p></section><section><h2>Sub-agents and top sessions</h2>"
        + Markup(f'<p>Sub-agents: {esc(money(side))} ({esc(pct(side / total if total else 0))} of the cost).</p>')
        + table([("Session", ""), ("Project", ""), ("Cost", "")], sessions) + "</section></div>"
        + "<section><h2>Savings</h2>" + (Markup("<ul>" + join(advice) + "</ul>") if advice else
                                         Markup('<p class="empty">Nothing stands out.</p>')) + "</section>")


def compare(d: dict, ctx: dict) -> str:
    head = Markup("<h1>Developers</h1>" + periods_nav(ctx, "/compare/developers")
                  + filter_form(ctx, "/compare/developers", fixed="developer"))
    if not d["rows"]:
        return layout("Developers", Markup(head + empty_state(d, ctx, "/compare/developers")), ctx)
    per_k = lambda r: money(r["usd_per_1k_output"]) if r["usd_per_1k_output"] is not None else "—"  # noqa: E731
    rows = [Markup(f'<tr><th scope="row"><a href="/developer/{esc(segment(r["name"]))}'
                   f'{esc(_qs(ctx, developer=None))}">{esc(r["name"])}</a></th>'
                   f'<td class="opt">{r["sessions"]:,}</td><td class="opt">{r["projects"]:,}</td>'
                   f'<td class="opt">{r["calls"]:,}</td><td>{esc(cost_text(r))}</td>'
                   f'<td class="opt">{esc(money(r["usd_per_call"]))}</td><td>{esc(per_k(r))}</td>'
                   f'<td class="opt">{esc(pct(r["cache_reuse"]))}</td></tr>') for r in d["rows"]]
    cols = [("Developer", ""), ("Sessions", "opt"), ("Projects", "opt"), ("Calls", "opt"), ("Cost", ""),
            ("$/call", "opt"), ("$/1k output", ""), ("Cache reuse", "opt")]
    body = Markup(
        head + (f'<p class="headline">{esc(d["headline"])}</p>' if d["headline"] else
                '<p class="note">A headline compares developers once two or more have priced usage here.</p>')
        + '<section><div class="scroll"><table><thead><tr>'
        + join(Markup(f'<th scope="col" class="{c}">{esc(n)}</th>') for n, c in cols)
        + "</tr></thead><tbody>" + join(rows) + "</tbody></table></div>"
        + '<p class="note">Sessions: counted on the day of their first call (with a model filter: sessions '
        "with a call of that model); $/1k output: cost per thousand output tokens (lower is more efficient); "
        "cache reuse: share of prompt tokens served from the cache (higher is cheaper).</p>"
        + csv_link(f"/compare/developers.csv{_qs(ctx)}") + "</section>")
    return layout("Developers", body, ctx)


def login_page(csrf: str, error: str | None = None) -> str:
    body = Markup("<h1>Sign in</h1><section><form method=\"post\" action=\"/login\">"
                  f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
                  '<p><label for="secret">Dashboard password, or your tenant\'s API key:</label></p>'
                  "<input type=\"password\" id=\"secret\" name=\"secret\" autofocus autocomplete=\"current-password\" "
                  "style=\"width:28em\"> <button>Sign in</button></form>"
                  + (f'<p class="err" role="alert">{esc(error)}</p>' if error else "") + "</section>")
    return layout("Sign in", body, {})


IMPORT_JS = """(()=>{const f=document.getElementById('f'),d=document.getElementById('drop'),
i=f.querySelector('input[type=file]'),p=document.getElementById('prog'),o=document.getElementById('out'),
n=document.getElementById('fname');if(!window.fetch||!window.FormData)return;
const show=()=>{n.textContent=i.files.length?i.files[0].name+' ('+i.files[0].size.toLocaleString()+' bytes)':''};
i.addEventListener('change',show);
['dragenter','dragover'].forEach(e=>d.addEventListener(e,v=>{v.preventDefault();d.classList.add('over')}));
['dragleave','drop'].forEach(e=>d.addEventListener(e,v=>{v.preventDefault();d.classList.remove('over')}));
d.addEventListener('drop',v=>{i.files=v.dataTransfer.files;show()});
f.addEventListener('submit',v=>{v.preventDefault();const x=new XMLHttpRequest();x.open('POST',f.action);
x.setRequestHeader('Accept','text/html');p.hidden=false;p.value=0;
x.upload.onprogress=e=>{if(e.lengthComputable)p.value=e.loaded/e.total};
x.onload=()=>{p.value=1;const r=new DOMParser().parseFromString(x.responseText,'text/html'),t=r.getElementById('out'),
h=r.querySelector('h1');if(t){o.innerHTML=t.innerHTML;return}const e=document.createElement('p');e.className='err';
e.textContent='Upload failed: '+(h?h.textContent:x.status);o.replaceChildren(e)};
x.onerror=()=>{o.innerHTML='<p class="err">Upload failed: the collector did not answer.</p>'};
x.send(new FormData(f))})})();"""


def import_page(csrf: str, ctx: dict, message: str | None = None, error: str | None = None,
                result: dict | None = None) -> str:
    out = ""
    if result is not None:
        out = (f'<div class="result" role="status"><p class="ok"><b>Imported {result["accepted"]:,} new events</b>; '
               f'{result["deduped"]:,} were already there.</p></div>')
    elif message:
        out = f'<div class="result" role="status"><p>{esc(message)}</p></div>'
    if error:
        out += f'<div class="result err" role="alert"><p class="err"><b>{esc(error)}</b></p></div>'
    body = Markup(
        "<h1>Import usage events</h1><section>"
        "<p>Upload an <code>events.json</code> written by <code>nomira export</code>. Only usage-only events are "
        "accepted; a file with any other field is rejected whole, naming the field.</p>"
        f'<form id="f" method="post" action="/import{esc(tenant_qs(ctx))}" enctype="multipart/form-data">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        '<label class="drop" id="drop"><b>Drop events.json here</b> or choose a file'
        '<input type="file" name="file" accept=".json,application/json" required>'
        '<span id="fname" class="note"></span></label>'
        '<p><button>Import</button></p><progress id="prog" max="1" value="0" hidden></progress></form>'
        f'<div id="out" aria-live="polite">{out}</div></section><script>{IMPORT_JS}</script>')
    return layout("Import", body, ctx)
