"""Dashboard views (issue 13): filters kept in the URL, .csv twins, hourly today, stacked split,
empty states, 404 with chrome, /import results; over real HTTP on loopback."""
import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone

from nomira.ledger import store
from nomira.collector import costsplit, csvout
from nomira.collector.pages import short_model
from nomira.collector.svg import nice_ticks, trend_chart
from test_collector import Client, ev, server  # noqa: F401 - `server` is the shared fixture

NOW = datetime.now(timezone.utc)


def at(**delta) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def tagged(i, **tags):
    e = ev(i, occurred_at=at(minutes=5))
    e["tags"] = {"developer": "ana", "project": "shop", **tags}
    return e


def summary(c, query):
    status, text = c.get(f"/api/summary?{query}")
    assert status == 200, text
    return json.loads(text)


def test_every_filter_is_a_url_parameter_and_changes_the_numbers(server):
    c, _ = server()
    events = [tagged(1, feature="checkout", env="prod", customer="acme", workflow="review"),
              tagged(2, feature="checkout", env="dev"),
              tagged(3, feature="search", env="prod", developer="bob"),
              dict(tagged(4, project="infra"), source="codex", model="gpt-5-codex", provider="openai"),
              dict(tagged(5), occurred_at=at(days=40)), dict(tagged(6), occurred_at=at(days=80))]
    assert c.post("/ingest", {"events": events})[0] == 200
    calls = lambda q: summary(c, q)["kpis"]["calls"]  # noqa: E731
    assert calls("period=30d") == 4 and calls("period=90d") == 6 and calls("period=all") == 6
    assert calls("period=30d&feature=checkout") == 2
    assert calls("period=30d&feature=checkout&env=prod") == 1
    assert calls("period=30d&customer=acme") == 1 and calls("period=30d&workflow=review") == 1
    assert calls("period=30d&source=codex") == 1 and calls("period=30d&model=gpt-5-codex") == 1
    assert calls("period=30d&developer=bob") == 1 and calls("period=30d&project=shop") == 3
    # three rollup dimensions at once: no grain holds them, the events table answers
    assert calls("period=all&developer=ana&project=shop&model=claude-opus-4-7") == 4
    d = summary(c, "period=30d&feature=checkout")
    assert d["filters"] == {"period": "30d", "feature": "checkout"} and d["kpis"]["developers"] == 1
    assert sum(r["calls"] for r in d["projects"]) == 2
    day40 = (NOW - timedelta(days=40)).date().isoformat()
    assert calls(f"from={day40}&to={day40}") == 1  # a date range of one day is drawn by hour
    assert len(summary(c, f"from={day40}&to={day40}")["buckets"]) == 24
    assert c.get("/api/summary?from=2026-02-30")[0] == 400
    assert c.get("/api/summary?from=2026-03-02&to=2026-03-01")[0] == 400
    assert c.get("/api/summary?feature=" + "x" * 300)[0] == 400
    # the page keeps the filters in its links and fills the form
    status, html = c.get("/?period=7d&feature=checkout")
    assert status == 200 and 'name="feature" value="checkout"' in html
    assert "/index.csv?period=7d&amp;feature=checkout&amp;table=model" in html
    assert 'href="/developer/ana?period=7d&amp;feature=checkout"' in html
    status, html = c.get("/developer/ana?period=30d&feature=search")
    assert status == 200 and "No usage in 30 days" in html  # ana has no `search` usage


def test_csv_twins_same_filters_same_auth_and_no_formulas(server, store_target):
    db = store.open_db(store_target)
    key_a, key_b = store.create_tenant(db, "acme"), store.create_tenant(db, "zeta")
    c, _ = server({"NOMIRA_DASHBOARD_PASSWORD": "hunter22"})
    assert c.post("/ingest", {"events": [tagged(1, developer="=HYPERLINK(1)", project="@SUM"),
                                         tagged(2, developer="-2+3", feature="search")]}, token=key_a)[0] == 200
    assert c.post("/ingest", {"events": [tagged(3, developer="zed")]}, token=key_b)[0] == 200
    assert c.get("/index.csv?period=7d")[0] == 401  # keys exist, no viewer: the same auth as the page
    status, text, headers = c.call("GET", "/index.csv?period=7d&table=developer&tenant=zeta", token=key_a)
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["developer", "calls", "input"]
    assert sorted(r[0] for r in rows[1:]) == ["'-2+3", "'=HYPERLINK(1)"]  # never zeta's `zed`
    status, text, _ = c.call("GET", "/index.csv?period=7d&table=developer&feature=search", token=key_a)
    assert [r[0] for r in csv.reader(io.StringIO(text))][1:] == ["'-2+3"]
    status, text, _ = c.call("GET", "/index.csv?period=7d&table=project", token=key_a)
    assert "'@SUM" in text
    status, text, _ = c.call("GET", "/developer/%3DHYPERLINK(1).csv?period=7d&table=model", token=key_a)
    assert status == 200 and text.splitlines()[1].startswith("claude-opus-4-7,1,")
    status, text, _ = c.call("GET", "/compare/developers.csv?period=7d", token=key_a)
    assert status == 200 and len(text.splitlines()) == 3
    assert c.call("GET", "/developer/zed.csv?period=7d", token=key_a)[0] == 404
    assert c.call("GET", "/index.csv?table=nope", token=key_a)[0] == 400
    assert csvout.cell(-2) == "-2" and csvout.cell("+1") == "'+1" and csvout.cell("\t=x") == "'\t=x"


def test_today_is_hourly_and_cost_is_stacked_by_token_type(server):
    c, _ = server()
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    assert c.post("/ingest", {"events": [dict(ev(1), occurred_at=hour.isoformat(), cost_usd=0.5),
                                         dict(ev(2), occurred_at=hour.isoformat(), cost_usd=0.25),
                                         dict(ev(3), model="no-such-model", occurred_at=hour.isoformat())]})[0] == 200
    d = summary(c, "period=today")
    assert d["hourly"] and len(d["buckets"]) == 24 and len(d["daily"]) == 1
    b = d["buckets"][hour.hour]
    assert b["name"] == f"{hour.hour:02d}:00" and b["calls"] == 3
    split = b["split"]
    assert abs(sum(split.values()) - b["cost_usd"]) < 1e-9  # the split shares out the stored cost, exactly
    assert set(split) <= set(costsplit.PARTS) | {"unsplit"} and split["cache_read"] > 0
    status, html = c.get("/?period=today")
    assert status == 200 and "Hour (UTC)" in html and "Cost per hour (UTC)" in html
    assert 'class="bar s-cache_read"' in html and "cache read" in html


def test_empty_states_explain_and_404_keeps_the_chrome(server):
    c, _ = server()
    assert c.post("/ingest", {"events": [dict(ev(1), occurred_at=at(days=45))]})[0] == 200
    day = (NOW - timedelta(days=45)).date().isoformat()
    status, html = c.call("GET", "/developer/ana?period=7d", headers={"Accept": "text/html"})[:2]
    assert status == 200 and "No usage in 7 days" in html and f"<b>{day}</b>" in html
    assert f"to={day}" in html and "nomira ship --remote" in html
    status, html = c.call("GET", "/?period=7d", headers={"Accept": "text/html"})[:2]
    assert status == 200 and f"<b>{day}</b>" in html
    for path in ("/developer/nobody?period=all", "/no/such/page"):
        status, html = c.call("GET", path, headers={"Accept": "text/html"})[:2]
        assert status == 404 and "<header>" in html and 'href="/compare/developers' in html
        assert "Back to the dashboard" in html and "<style>" in html
    status, text = c.get("/developer/nobody.json?period=all")
    assert status == 404 and json.loads(text)["status"] == "error"


def _upload(c, token, content: bytes, accept="text/html"):
    boundary = "b0und"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"events.json\"\r\n"
            f"Content-Type: application/json\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return c.call("POST", "/import", raw=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                         "Accept": accept})[:2]


def test_import_reports_imported_already_there_and_rejected_field(server):
    c, _ = server()
    status, html = c.get("/import")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
    assert 'class="drop"' in html and "<progress" in html
    doc = json.dumps({"events": [ev(1), ev(2)]}).encode()
    status, html = _upload(c, token, doc)
    assert status == 200 and "Imported 2 new events" in html and "0 were already there" in html
    status, html = _upload(c, token, doc)
    assert status == 200 and "Imported 0 new events" in html and "2 were already there" in html
    status, html = _upload(c, token, b"")
    assert status == 400 and "file: is empty" in html
    status, html = _upload(c, token, b"hello, not json")
    assert status == 400 and "file: not JSON" in html
    status, html = _upload(c, token, json.dumps({"events": [dict(ev(3), prompt="x")]}).encode())
    assert status == 400 and "events[0].prompt" in html and "nothing imported" in html
    status, text = _upload(c, token, b"  ", accept="application/json")
    assert status == 400 and json.loads(text)["field"] == "file"
    assert _upload(c, "0" * 64, doc)[0] == 403  # CSRF still checked first


def test_charts_have_axes_ticks_units_and_sane_bars():
    assert nice_ticks(0.93) == [0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(1234) == [0, 500, 1000, 1500]
    assert nice_ticks(0) == [0.0, 1.0]
    one = str(trend_chart([("2026-11-03", 2.5, {})], "Cost per day"))
    width = float(re.search(r'<rect class="bar" x="[^"]+" y="[^"]+" width="([0-9.]+)"', one).group(1))
    assert width <= 44  # one day never fills the chart
    assert "USD" in one and "Day (UTC)" in one and "Nov 3" in one and "<title>2026-11-03: $2.50</title>" in one
    many = str(trend_chart([(f"2026-01-{d:02d}", float(d), {}) for d in range(1, 31)], "t", width=360))
    assert many.count('class="tick"') <= 4 + 1 + 5  # few x labels on a phone, plus y ticks
    toks = str(trend_chart([("01:00", 1500.0, {"input": 500, "output": 1000})], "Tokens", "tokens",
                           "Hour (UTC)", ("input", "output")))
    assert "tokens" in toks and "input 500, output 1.0k" in toks
    plan = str(trend_chart([("2026-11-03", 1.0, {})], "t", plan=(2.5, "plan $2.50/day")))
    assert '<g class="plan"><title>plan $2.50/day</title><line' in plan
    far = str(trend_chart([("2026-11-03", 1.0, {})], "t", plan=(60.0, "plan $60/day")))
    assert "plan $60/day (off scale)" in far and "$60" not in far.split("</g>")[0]  # bars keep the scale
    assert short_model("us.anthropic.claude-sonnet-4-5-20250929-v1:0") == "sonnet-4-5 · us"
    assert short_model("claude-opus-4-7") == "opus-4-7" and short_model("gpt-5-codex") == "gpt-5-codex"


def test_events_path_reads_the_dashboard_index(server):
    from nomira.collector import queries
    c, app = server()
    assert queries.ensure_index(app.db)  # built on the collector's start, outside the migrations
    if app.db.dialect.name != "sqlite":  # PostgreSQL plans by table statistics: a few rows are read by seq scan
        assert app.db.dialect.has_index(app.db, queries.INDEX)
        return
    # two tag filters at once: the events path
    scope = queries.Scope("acme", "2026-11-01", "2026-11-30", (("env", "prod"), ("feature", "search")))
    source = queries._source((), scope)
    assert source == ("events", None)
    for sql, params in (("SELECT substr(occurred_at, 12, 2), " + queries._EVENT_SUMS + " FROM events"
                         + queries._where(scope.days("2026-11-30", "2026-11-30"))[0] + " GROUP BY 1",
                         queries._where(scope.days("2026-11-30", "2026-11-30"))[1]),
                        ("SELECT developer, " + queries._EVENT_SUMS + " FROM events" + queries._where(scope)[0]
                         + " GROUP BY developer", queries._where(scope)[1])):
        plan = " ".join(str(r) for r in app.db.execute("EXPLAIN QUERY PLAN " + sql, params))
        assert f"COVERING INDEX {queries.INDEX}" in plan, plan
    # a filtered view: one range of the index, grouped as it streams; only the two small outer sums sort
    plan = [r[3] for r in app.db.execute("EXPLAIN QUERY PLAN " + queries._cubes_sql(scope, source)[0],
                                         queries._cubes_sql(scope, source)[1])]
    assert f"SEARCH events USING COVERING INDEX {queries.INDEX} (day>? AND day<?)" in plan, plan
    assert plan.count("USE TEMP B-TREE FOR GROUP BY") == 2, plan
    # one tag filter: per (tenant, developer) pair, one range of tag_rollups' primary key (0018: the pairs
    # from the developer grain), never `events`; with or without a tenant and a developer
    for one in (queries.Scope("acme", "2026-11-01", "2026-11-30", (("developer", "ana"), ("feature", "search"))),
                queries.Scope(None, "2026-11-01", "2026-11-30", (("feature", "search"),))):
        source = queries._source((), one)
        assert source == ("tag_rollups", ("feature", "search"))
        plan = " ".join(r[3] for r in app.db.execute("EXPLAIN QUERY PLAN " + queries._cubes_sql(one, source)[0],
                                                     queries._cubes_sql(one, source)[1]))
        assert "SEARCH tag_rollups USING PRIMARY KEY (tenant=? AND developer=? AND tag=? AND value=? AND day>? " \
               "AND day<?)" in plan, plan
        assert "SCAN tag_rollups" not in plan and "events" not in plan, plan
    # filters on rollup dimensions never touch `events`: a grain, or tag_rollups' every-event rows
    assert queries.on_rollups(("day", "model"), queries.Scope(eq=(("developer", "ana"),)))
    assert queries._source(("model",), queries.Scope(eq=(("developer", "ana"), ("project", "p")))) == \
        ("tag_rollups", ("", ""))
    assert queries._source(("developer",), queries.Scope(eq=(("env", "prod"),))) == ("tag_rollups", ("env", "prod"))


def test_events_view_is_fresh_after_every_ingest(server):
    c, _ = server()
    for i in range(1, 4):
        assert c.post("/ingest", {"events": [tagged(i, feature="search")]})[0] == 200
        d = summary(c, "period=7d&feature=search")
        assert d["kpis"]["calls"] == i and sum(r["calls"] for r in d["daily"]) == i


def test_trend_csv_is_daily_even_when_the_chart_is_weekly(server):
    c, _ = server()
    old, new = dict(ev(1), occurred_at=at(days=150)), dict(ev(2), occurred_at=at(days=1))
    assert c.post("/ingest", {"events": [old, new]})[0] == 200
    d = summary(c, "period=all")
    assert d["bucket"] == "week" and len(d["buckets"]) < len(d["daily"]) == 151
    _, text, _ = c.call("GET", "/index.csv?period=all&table=day")
    rows = text.splitlines()
    assert rows[0].startswith("day,calls") and len(rows) == 152 and sum(int(r.split(",")[1]) for r in rows[1:]) == 2
    _, text, _ = c.call("GET", "/index.csv?period=today&table=day")
    assert text.startswith("hour,calls") and len(text.splitlines()) == 25


def test_bar_chart_keeps_its_signature_for_other_pages():
    from nomira.collector.svg import bar_chart
    out = str(bar_chart([("2026-11-03", 1.5), ("2026-11-04", 0.5)], "Billed per day"))
    assert out.count("<svg") == 2 and "Day (UTC)" in out and "<title>2026-11-03: $1.50</title>" in out


def test_text_colours_meet_wcag_aa_contrast_in_light_and_dark():
    """Every text colour on the surface it is drawn on: WCAG 2.1 contrast >= 4.5:1 (AA, normal text)."""
    from nomira.collector.brand import DASHBOARD_DARK, DASHBOARD_LIGHT

    def luminance(hex_colour: str) -> float:
        h = hex_colour.lstrip("#")
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        def channel(c: float) -> float:
            return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b = (channel(int(h[i:i + 2], 16) / 255) for i in (0, 2, 4))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    def ratio(a: str, b: str) -> float:
        hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)
    assert abs(ratio("#000", "#fff") - 21) < 1e-9 and abs(ratio("#777", "#fff") - 4.48) < 0.01  # the formula
    pairs = [("fg", "bg"), ("fg", "card"), ("muted", "card"), ("muted", "bg"), ("link", "card"), ("err", "card"),
             ("ok", "card"), ("plan", "card"), ("on-accent", "accent"), ("head-link", "head")]
    for name, theme in (("light", DASHBOARD_LIGHT), ("dark", {**DASHBOARD_LIGHT, **DASHBOARD_DARK})):
        low = {f"{a} on {b}": round(ratio(theme[a], theme[b]), 2) for a, b in pairs
               if ratio(theme[a], theme[b]) < 4.5}
        assert not low, (name, low)
    assert ratio(DASHBOARD_LIGHT["head-fg"], DASHBOARD_LIGHT["head"]) >= 4.5
