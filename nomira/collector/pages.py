"""Server-rendered HTML. Each page renders one dict; every value passes through `esc`."""
from __future__ import annotations

from urllib.parse import quote, urlencode

from nomira.collector.markup import Markup, esc, join
from nomira.collector.svg import bar_chart, hbar_chart
from nomira.reports.render import pct, usd as money

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:10px 24px;display:flex;gap:18px;align-items:center;flex-wrap:wrap}
header a{color:#cfe0ff;text-decoration:none}header b{font-size:16px}
main{max-width:1100px;margin:0 auto;padding:18px 24px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px;margin:12px 0}
.kpi{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:12px}
.kpi .v{font-size:22px;font-weight:600}.kpi .l{color:#5b6472;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:12px 16px;margin:12px 0}
h1{font-size:20px;margin:6px 0}h2{font-size:15px;margin:4px 0 10px}
table{border-collapse:collapse;width:100%}td,th{padding:4px 8px;border-bottom:1px solid #eef0f3;text-align:right}
td:first-child,th:first-child{text-align:left}.periods a{margin-right:8px}.periods a.on{font-weight:700}
svg .bar{fill:#3b6fd8}svg .axis,svg .label,svg .value{font-size:11px;fill:#5b6472}svg .base{stroke:#ccd}
svg a{fill:#1d4fb8}.note{color:#5b6472;font-size:12px}.headline{font-size:15px;font-weight:600}
.drop{border:2px dashed #9aa7bb;border-radius:8px;padding:28px;text-align:center;background:#fbfcfe}
.err{color:#b3261e}
"""




def segment(name: str) -> str:
    """A name as one URL path segment: `/` and `%` encoded, and `.` too, so a name ending in
    `.json` is not read as the page's JSON twin."""
    return quote(name, safe="").replace(".", "%2E")


def layout(title: str, body: Markup, ctx: dict) -> str:
    viewer = ctx.get("viewer")
    nav = [Markup('<b>Nomira</b>'), Markup(f'<a href="/{_qs(ctx)}">Dashboard</a>'),
           Markup(f'<a href="/compare/developers{_qs(ctx)}">Developers</a>'), Markup('<a href="/import">Import</a>')]
    if ctx.get("reconcile"):
        nav.append(Markup(f'<a href="/reconcile{_qs(ctx)}">Reconcile</a>'))
    who = "all tenants" if viewer and viewer.admin and not ctx.get("tenant") else f"tenant {ctx.get('tenant') or ''}"
    nav.append(Markup(f'<span class="note">{esc(who)}</span>'))
    if viewer and ctx.get("login_used"):
        nav.append(Markup('<form method="post" action="/logout" style="margin:0"><input type="hidden" name="csrf" '
                          f'value="{esc(ctx.get("csrf"))}"><button>Log out</button></form>'))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{esc(title)} · Nomira</title><style>{CSS}</style></head><body><header>"
            + join(nav) + f"</header><main>{body}</main></body></html>")


def _qs(ctx: dict, **extra) -> str:
    params = {"period": ctx.get("period")}
    if ctx.get("viewer") and ctx["viewer"].admin and ctx.get("tenant"):
        params["tenant"] = ctx["tenant"]
    params.update(extra)
    q = urlencode({k: v for k, v in params.items() if v})
    return f"?{q}" if q else ""


def periods_nav(ctx: dict, path: str) -> Markup:
    links = [Markup(f'<a class="{"on" if p == ctx["period"] else ""}" href="{esc(path + _qs(ctx, period=p))}">'
                    f'{esc(label)}</a>') for p, label in (("today", "Today"), ("7d", "7 days"), ("30d", "30 days"),
                                                           ("all", "All time"))]
    return Markup('<div class="periods">' + join(links) + "</div>")


def kpi(label: str, value: str, note: str = "") -> Markup:
    return Markup(f'<div class="kpi"><div class="v">{esc(value)}</div><div class="l">{esc(label)}</div>'
                  + (f'<div class="note">{esc(note)}</div>' if note else "") + "</div>")


def rows_table(rows: list[dict], first: str, link=None) -> Markup:
    head = Markup(f"<tr><th>{esc(first)}</th><th>Calls</th><th>Tokens</th><th>Cache reuse</th><th>Cost</th></tr>")
    body = []
    for r in rows:
        name = esc(r["name"])
        if link:
            name = Markup(f'<a href="{esc(link(r["name"]))}">{name}</a>')
        cost = "unpriced" if r["unpriced_calls"] == r["calls"] else money(r["cost_usd"]) + (
            "*" if r["unpriced_calls"] else "")
        body.append(Markup(f"<tr><td>{name}</td><td>{r['calls']:,}</td><td>{r['tokens']:,}</td>"
                           f"<td>{esc(pct(r['cache_reuse']))}</td><td>{esc(cost)}</td></tr>"))
    return Markup("<table>" + head + join(body) + "</table>")


def dashboard(d: dict, ctx: dict) -> str:
    k = d["kpis"]
    kpis = [kpi(d["value_label"], money(k["value_usd"]), "subscription usage at API rates, not a bill"
                if d["value_label"].startswith("API") else "")]
    if k["api_cost_usd"] and k["value_usd"] != k["api_cost_usd"]:
        kpis.append(kpi("API cost (estimated)", money(k["api_cost_usd"])))
    if k.get("value_vs_plan") is not None:
        kpis.append(kpi("Value vs plan", f"{k['value_vs_plan']:.1f}x", k["plan_note"]))
    kpis += [kpi("Cache reuse", pct(k["cache_reuse"]), "prompt tokens served from cache"),
             kpi("Developers", str(k["developers"])), kpi("Calls", f"{k['calls']:,}")]
    proj_link = lambda n: f"/project/{segment(n)}{_qs(ctx)}"  # noqa: E731
    dev_link = lambda n: f"/developer/{segment(n)}{_qs(ctx)}"  # noqa: E731
    body = Markup(
        f"<h1>{esc(d['title'])}</h1>" + periods_nav(ctx, "/") + '<div class="kpis">' + join(kpis) + "</div>"
        + "<section><h2>Daily trend</h2>" + bar_chart([(r["name"], r["cost_usd"]) for r in d["daily"]],
                                                      "Cost per day") + "</section>"
        + '<div class="grid"><section><h2>By project</h2>'
        + hbar_chart([(r["name"], r["cost_usd"], proj_link(r["name"])) for r in d["projects"][:12]], "Cost by project")
        + "</section><section><h2>By developer</h2>"
        + hbar_chart([(r["name"], r["cost_usd"], dev_link(r["name"])) for r in d["developers"][:12]],
                     "Cost by developer")
        + "</section></div><section><h2>By model</h2>"
        + hbar_chart([(r["name"], r["cost_usd"], None) for r in d["models"][:12]], "Cost by model")
        + rows_table(d["models"], "Model") + "</section>"
        + (reconcile_card(d["reconcile"], ctx) if d.get("reconcile") else ""))
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
    """A developer's or a project's page."""
    other = "project" if d["kind"] == "developer" else "developer"
    link = lambda n: f"/{other}/{segment(n)}{_qs(ctx)}"  # noqa: E731
    t = d["totals"]
    body = Markup(
        f"<h1>{esc(d['kind'].capitalize())}: {esc(d['name'])}</h1>"
        + periods_nav(ctx, f"/{d['kind']}/{segment(d['name'])}")
        + '<div class="kpis">' + join([kpi(d["value_label"], money(t["cost_usd"])), kpi("Calls", f"{t['calls']:,}"),
                                        kpi("Cache reuse", pct(t["cache_reuse"]))]) + "</div>"
        + "<section><h2>Daily trend</h2>" + bar_chart([(r["name"], r["cost_usd"]) for r in d["daily"]], "Cost per day")
        + f"</section><section><h2>By {esc(other)}</h2>"
        + rows_table(d["breakdown"], other.capitalize(), link)
        + "</section><section><h2>By model</h2>" + rows_table(d["models"], "Model") + "</section>")
    return layout(f"{d['kind']} {d['name']}", body, ctx)


def compare(d: dict, ctx: dict) -> str:
    rows = [Markup(f"<tr><td><a href=\"/developer/{esc(segment(r['name']))}{esc(_qs(ctx))}\">"
                   f"{esc(r['name'])}</a></td><td>{r['calls']:,}</td><td>{esc(money(r['cost_usd']))}</td>"
                   f"<td>{esc(money(r['usd_per_call']))}</td><td>{esc(pct(r['cache_reuse']))}</td></tr>")
            for r in d["rows"]]
    body = Markup(
        "<h1>Developers</h1>" + periods_nav(ctx, "/compare/developers")
        + (f'<p class="headline">{esc(d["headline"])}</p>' if d["headline"] else "")
        + "<section><table><tr><th>Developer</th><th>Calls</th><th>Cost</th><th>$/call</th><th>Cache reuse</th></tr>"
        + join(rows) + "</table></section>")
    return layout("Developers", body, ctx)


def login_page(csrf: str, error: str | None = None) -> str:
    body = Markup("<h1>Sign in</h1><section><form method=\"post\" action=\"/login\">"
                  f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
                  "<p>Dashboard password, or your tenant's API key:</p>"
                  "<input type=\"password\" name=\"secret\" autofocus size=\"48\"> <button>Sign in</button></form>"
                  + (f'<p class="err">{esc(error)}</p>' if error else "") + "</section>")
    return layout("Sign in", body, {})


def import_page(csrf: str, ctx: dict, message: str | None = None, error: str | None = None) -> str:
    body = Markup(
        "<h1>Import usage events</h1><section>"
        "<p>Drop an <code>events.json</code> written by <code>nomira export</code>. Only usage-only events are "
        "accepted; a file with any other field is rejected whole.</p>"
        '<form id="f" method="post" action="/import" enctype="multipart/form-data">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        '<div class="drop" id="drop">Drop events.json here, or <input type="file" name="file" accept=".json,'
        'application/json"> <button>Import</button></div></form>'
        + (f"<p>{esc(message)}</p>" if message else "") + (f'<p class="err">{esc(error)}</p>' if error else "")
        + "</section><script>const d=document.getElementById('drop'),f=document.getElementById('f');"
        "d.ondragover=e=>{e.preventDefault()};d.ondrop=e=>{e.preventDefault();"
        "f.querySelector('input[type=file]').files=e.dataTransfer.files;f.submit()};</script>")
    return layout("Import", body, ctx)
