"""Budget alerts on the collector: the dashboard banner (tenant-scoped, escaped) and /metrics gauges."""
import json
import re
from datetime import datetime, timedelta, timezone

from nomira.ledger import store
from test_collector import Client, ev, server  # noqa: F401 - `server` is the shared fixture

BUDGETS = """
[[budget]]
name = "acme-day"
scope = "tenant"
match = "acme"
window = "day"
usd = 10

[[budget]]
name = "zeta-day"
scope = "tenant"
match = "zeta"
window = "day"
usd = 100

[[budget]]
name = "<i>shop</i>"
scope = "project"
match = "shop"
window = "month"
usd = 5
"""


def spend(i, usd, **tags):
    at = datetime.now(timezone.utc) - timedelta(seconds=2)
    return dict(ev(i), occurred_at=at.isoformat(), cost_usd=usd, tags={"developer": "ana", "project": "shop", **tags})


def setup(server, store_target, tmp_path, monkeypatch):
    path = tmp_path / "budgets.toml"
    path.write_text(BUDGETS)
    monkeypatch.setenv("NOMIRA_BUDGETS", str(path))
    monkeypatch.setenv("NOMIRA_BUDGET_TZ", "UTC")
    db = store.open_db(store_target)
    keys = store.create_tenant(db, "acme"), store.create_tenant(db, "zeta")
    c, app = server()
    assert c.post("/ingest", {"events": [spend(1, 3.0), spend(2, 5.5)]}, token=keys[0])[0] == 200
    assert c.post("/ingest", {"events": [spend(3, 20.0), dict(spend(4, None), cost_usd=None)]}, token=keys[1])[0] == 200
    return c, app, keys


def test_banner_shows_the_views_budgets_at_a_threshold_escaped(server, store_target, tmp_path, monkeypatch):
    c, app, (acme, zeta) = setup(server, store_target, tmp_path, monkeypatch)
    status, text = c.get("/index.json?period=all")  # the operator's all-tenants view: every budget at a threshold
    alerts = {a["name"]: a for a in json.loads(text)["budget_alerts"]["alerts"]}
    assert status == 200 and set(alerts) == {"acme-day", "<i>shop</i>"}  # zeta-day is at 20%: no alert
    assert alerts["acme-day"]["spent_usd"] == 8.5 and alerts["acme-day"]["crossed"] == [50, 80]
    assert alerts["<i>shop</i>"]["spent_usd"] == 28.5 and alerts["<i>shop</i>"]["unpriced_calls"] == 1
    status, html = c.get("/?period=all")
    assert "Budget alerts" in html and "<i>shop" not in html and "&lt;i&gt;shop&lt;/i&gt;" in html
    assert "$8.50 of $10.00 today (85%, 80% threshold reached)" in html
    # a tenant's viewer sees its own tenant budget only: the project budget counts both tenants
    status, html = c.get("/?period=all", token=acme)
    assert status == 200 and "acme-day" in html and "shop</i>" not in html and "zeta-day" not in html
    status, text = c.get("/index.json?period=all&tenant=zeta", token=acme)  # asking for another tenant
    assert [a["name"] for a in json.loads(text)["budget_alerts"]["alerts"]] == ["acme-day"]
    status, html = c.get("/?period=all", token=zeta)
    assert status == 200 and "Budget alerts" not in html  # 20% of its budget: below every threshold


def test_metrics_gauges_per_budget(server, store_target, tmp_path, monkeypatch):
    c, app, _ = setup(server, store_target, tmp_path, monkeypatch)
    status, text = c.get("/metrics")
    assert status == 200
    gauges = dict(re.findall(r'^(nomira_budget_\w+\{[^}]*\}) (\S+)$', text, re.M))
    assert float(gauges['nomira_budget_spent_usd{budget="acme-day",scope="tenant",window="day"}']) == 8.5
    assert float(gauges['nomira_budget_limit_usd{budget="zeta-day",scope="tenant",window="day"}']) == 100
    assert float(gauges['nomira_budget_ratio{budget="zeta-day",scope="tenant",window="day"}']) == 0.2
    assert float(gauges['nomira_budget_ratio{budget="<i>shop</i>",scope="project",window="month"}']) == 28.5 / 5
    assert float(gauges['nomira_budget_unpriced_calls{budget="<i>shop</i>",scope="project",window="month"}']) == 1
    assert "# TYPE nomira_budget_ratio gauge" in text and len(gauges) == 12


def test_bad_budgets_file_is_a_note_for_the_operator_not_an_error(server, store_target, tmp_path, monkeypatch):
    path = tmp_path / "budgets.toml"
    path.write_text("[[budget]]\nname = 'x'\n")
    monkeypatch.setenv("NOMIRA_BUDGETS", str(path))
    c, _ = server()
    status, html = c.get("/?period=all")
    assert status == 200 and "budgets.toml not read" in html and "give exactly one of usd" in html
    status, text = c.get("/metrics")
    assert status == 200 and "nomira_budget_ratio" in text  # the HELP lines, no gauges
