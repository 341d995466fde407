"""Drill-downs (issue 25): project and developer KPIs, the optimizer only where the transcripts are,
full paths only from this machine, and an admin's tenant kept on every link."""
import io
import json
import re
import sqlite3

from conftest import FIXTURES
from nomira.cli import main
from nomira.collector.local import LocalHistory
from nomira.commands.serve import make_app

HISTORY = [FIXTURES / "claude_context", FIXTURES / "claude"]


def get(app, path: str) -> tuple[int, str]:
    out = {}
    path, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": io.BytesIO(b""),
               "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "HTTP_ACCEPT": "text/html"}
    body = b"".join(app(environ, lambda status, headers: out.update(status=int(status.split()[0]))))
    return out["status"], body.decode()


def shipped(tmp_path, *extra):
    db = tmp_path / "team.db"
    for dev in ("ana", "bob"):
        assert main(["ship", *sum((["--path", str(p)] for p in HISTORY), []), "--db", str(db), "--developer", dev,
                     *extra]) == 0
    return db


def test_local_collector_shows_paths_and_the_optimizer_from_this_machine_only(tmp_path):
    db = shipped(tmp_path)
    app = make_app(db, "127.0.0.1", local=LocalHistory(HISTORY, user="ana"))
    status, page = get(app, "/project/ctx?period=all")
    assert status == 200
    assert re.search(r'<h1>Project: <span title="/home/ana/src/ctx">ctx</span></h1>', page)  # tooltip: full path
    # the optimizer ranks by attributed cost: big.py (2 reads into a huge context) above small.py (4 cheap reads)
    assert page.index("/src/big.py") < page.index("/src/small.py")
    assert "Bash share" in page and "Sub-agent share" in page and "Share of team" in page
    d = json.loads(get(app, "/project/ctx.json?period=all")[1])
    assert d["project_paths"] == {"ctx": "/home/ana/src/ctx"}
    assert [f["path"] for f in d["optimizer"]["files"]] == ["/src/big.py", "/src/small.py"]
    team = json.loads(get(app, "/index.json?period=all")[1])["kpis"]["value_usd"]
    # the same transcript shipped as ana and as bob: one session each in ctx (a session belongs to its developer)
    assert abs(d["kpis"]["share_of_team"] - d["totals"]["cost_usd"] / team) < 1e-12 and d["kpis"]["sessions"] == 2
    home = get(app, "/?period=all")[1]
    assert "<title>ctx — /home/ana/src/ctx:" in home  # the project bar's tooltip
    assert 'href="/compare/developers?period=all">By developer</a>' in home
    dev = get(app, "/developer/ana?period=all")[1]
    assert "Where the money went, by tool" in dev and 'title="/home/ana/src/ctx"' in dev
    other = get(app, "/developer/bob?period=all")[1]
    assert "bob is not this machine&#x27;s user (ana)" in other and "/src/big.py" not in other
    # the store holds labels only: no path ever reached it
    con = sqlite3.connect(db)
    dump = "\n".join(con.iterdump())
    assert "/home/ana" not in dump and "/src/big.py" not in dump


def test_a_tenant_viewer_never_sees_the_machine_owners_paths(tmp_path):
    from types import SimpleNamespace

    from nomira.collector.queries import Scope
    app = make_app(shipped(tmp_path), "127.0.0.1", local=LocalHistory(HISTORY, user="ana"))
    ctx = {"viewer": SimpleNamespace(admin=False, tenant="acme"), "scope": Scope("acme")}
    assert app.shown_paths(ctx, ["ctx"]) == {}
    parts = app.local_parts(ctx, "project", "ctx")
    assert parts["optimizer"] is None and "shown to its owner only" in parts["local_note"]
    ctx["viewer"] = SimpleNamespace(admin=True, tenant=None)
    assert app.shown_paths(ctx, ["ctx"]) == {"ctx": "/home/ana/src/ctx"}


def test_team_collector_says_where_the_optimizer_runs_and_shows_no_path(tmp_path):
    app = make_app(shipped(tmp_path), "127.0.0.1")
    page = get(app, "/project/ctx?period=all")[1]
    assert "this collector serves a team" in page and "/home/ana" not in page and "/src/big.py" not in page
    d = json.loads(get(app, "/developer/ana.json?period=all")[1])
    assert d["optimizer"] is None and d["project_paths"] == {}
    # developer KPIs from the store: value, share of the team, $/1k output, cache reuse
    k, t = d["kpis"], d["totals"]
    assert k["share_of_team"] == 0.5  # ana and bob shipped the same history
    assert abs(k["usd_per_1k_output"] - t["cost_usd"] / t["output"] * 1000) < 1e-12
    assert k["cache_reuse"] == t["cache_reuse"] > 0


def test_an_admin_inside_a_tenant_keeps_it_on_every_link_filter_and_export(tmp_path):
    db = tmp_path / "t.db"
    for dev, tenant in (("ana", "acme"), ("bob", "acme"), ("cy", "globex")):
        assert main(["ship", "--path", str(FIXTURES / "claude"), "--db", str(db), "--developer", dev,
                     "--tenant", tenant]) == 0
    app = make_app(db, "127.0.0.1")
    for path in ("/?period=all&tenant=acme", "/developer/ana?period=all&tenant=acme",
                 "/project/shop?period=all&tenant=acme", "/compare/developers?period=all&tenant=acme",
                 "/import?tenant=acme", "/?period=today&tenant=acme"):  # the last one empty: its hints too
        status, page = get(app, path)
        assert status == 200, path
        assert "Viewing tenant <b>acme</b>" in page, path
        hrefs = [h for h in re.findall(r'href="([^"]+)"', page) if not h.startswith("data:")]  # not the favicon
        switch = [h for h in hrefs if "tenant=" not in h and h not in ("#main",)]
        # the only link without the tenant is the chip's way back to all tenants (same page)
        assert len(switch) == 1 and switch[0].startswith(path.split("?")[0]), (path, switch)
        assert all("tenant=acme" in h for h in hrefs if h not in ("#main", switch[0])), path
        actions = re.findall(r'<form method="(?:get|post)" action="([^"]+)"', page)
        assert all("tenant=acme" in a for a in actions if a.startswith("/import")), path
        if path.startswith("/?period=all"):
            assert 'name="tenant" list="dl-tenant" value="acme"' in page  # the filter form keeps it
            assert "/index.csv?period=all&amp;tenant=acme&amp;table=" in page
    d = json.loads(get(app, "/compare/developers.json?period=all&tenant=acme")[1])
    assert [r["name"] for r in d["rows"]] == ["ana", "bob"] or [r["name"] for r in d["rows"]] == ["bob", "ana"]


def test_value_vs_plan_on_project_and_developer_pages_known_by_hand(tmp_path):
    """ana: $30 of subscription value in shop, $10 in web; bo: $20 in shop; one API call in shop that no
    plan covers. Over 30 days a seat's plan is $200: shop = $50 / ($200 x 30/40 + $200 x 20/20) = 0.14x,
    web = $10 / ($200 x 10/40) = 0.20x, ana = $40 / $200 = 0.20x, bo = 0.10x; a slice (a model filter) shows none."""
    from datetime import datetime, timezone

    from nomira.ledger import store
    from test_collector import ev
    db_path = tmp_path / "team.db"
    db = store.open_db(db_path)
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    store.ingest(db, [ev(1, cost_usd=30.0, occurred_at=day), ev(2, project="web", cost_usd=10.0, occurred_at=day),
                      ev(3, developer="bo", cost_usd=20.0, occurred_at=day),
                      ev(4, developer="cy", cost_usd=99.0, regime="api", occurred_at=day)])
    db.close()
    app = make_app(db_path, "127.0.0.1")
    want = {"project/shop": "0.14x", "project/web": "0.20x", "developer/ana": "0.20x", "developer/bo": "0.10x"}
    for page, multiple in want.items():
        status, body = get(app, f"/{page}.json?period=30d")
        k = json.loads(body)["kpis"]
        assert status == 200 and f"{k['value_vs_plan']:.2f}x" == multiple, (page, k)
        assert "bill" not in k["plan_note"]
        status, html = get(app, f"/{page}?period=30d")
        assert f'<div class="v">{multiple}</div><div class="l">Value vs plan</div>' in html
    assert json.loads(get(app, "/project/shop.json?period=30d&model=claude-opus-4-7")[1])["kpis"]["value_vs_plan"] \
        is None
    assert json.loads(get(app, "/developer/cy.json?period=30d")[1])["kpis"]["value_vs_plan"] is None  # API only


def test_local_project_page_shows_cost_by_mcp_server_skill_and_subagent_type(tmp_path, run_json):
    history = [FIXTURES / "claude_mcp"]
    db = tmp_path / "t.db"
    assert main(["ship", "--path", str(history[0]), "--db", str(db), "--developer", "ana"]) == 0
    app = make_app(db, "127.0.0.1", local=LocalHistory(history, user="ana"))
    page = get(app, "/project/mcp?period=all")[1]
    assert "By MCP server" in page and page.index(">github<") < page.index(">linear<") < page.index(
        ">(no MCP server)<")
    d = json.loads(get(app, "/project/mcp.json?period=all")[1])
    rows = {r["name"]: r for r in d["optimizer"]["mcp_servers"]}
    assert rows["github"]["cost_micro_usd"] == 2055 and rows["linear"]["cost_micro_usd"] == 1185  # test_reports
    assert abs(sum(r["cost_usd"] for r in rows.values()) - d["optimizer"]["total_cost_usd"]) < 1e-12
    con = sqlite3.connect(db)
    dump = "\n".join(con.iterdump())
    con.close()
    assert "github" not in dump and "mcp__" not in dump and "Explore" not in dump
    # Sonnet 4.5 (test_reports): pdf = 100 out + 200 written + 200 read; Explore = 200 out + 1000 written
    o, w, r = 15e-6, 3.75e-6, 0.3e-6
    developer = get(app, "/developer/ana?period=all")[1]
    for key, heading, name, none, usd in (("skills", "By skill", "pdf", "(no skill)", 100 * o + 200 * w + 200 * r),
                                          ("subagents", "By sub-agent type", "Explore", "(no sub-agent)",
                                           200 * o + 1000 * w)):
        assert heading in page and page.index(f">{name}<") < page.index(f">{none}<") and heading in developer
        rows = {x["name"]: x for x in d["optimizer"][key]}
        assert set(rows) == {name, none} and rows[name]["cost_micro_usd"] == round(usd * 1e6)
        cli = run_json("optimize", "--path", history[0], "--by", "skill" if key == "skills" else "subagent")
        assert [(x["name"], x["cost_micro_usd"], x["calls"]) for x in cli["rows"]] == [
            (x["name"], x["cost_micro_usd"], x["calls"]) for x in d["optimizer"][key]]
    assert "pdf" not in dump
    team = make_app(db, "127.0.0.1")  # no LocalHistory: no optimizer, none of the three tables
    page = get(team, "/project/mcp?period=all")[1]
    assert not [t for t in ("By MCP server", "By skill", "By sub-agent type", "Explore", ">pdf<") if t in page]
    assert json.loads(get(team, "/project/mcp.json?period=all")[1])["optimizer"] is None
