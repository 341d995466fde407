"""/mcp: MCP over Streamable HTTP on the collector (spec 2025-11-25 transports), with the spec's messages."""
import json

from nomira.ledger import rollups, store
from test_budget_alerts import BUDGETS, spend
from test_collector import Client, server  # noqa: F401 - `server` is the shared fixture

ACCEPT = "application/json, text/event-stream"
# the spec's own initialize request (basic/lifecycle, 2025-11-25), verbatim
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2024-11-05",
    "capabilities": {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {"form": {}, "url": {}},
                     "tasks": {"requests": {"elicitation": {"create": {}}, "sampling": {"createMessage": {}}}}},
    "clientInfo": {"name": "ExampleClient", "title": "Example Client Display Name", "version": "1.0.0",
                   "description": "An example MCP client application",
                   "icons": [{"src": "https://example.com/icon.png", "mimeType": "image/png", "sizes": ["48x48"]}],
                   "websiteUrl": "https://example.com"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def post(c, msg, token=None, sid=None, **headers):
    h = {"Accept": ACCEPT, **({"Mcp-Session-Id": sid} if sid else {}), **headers}
    status, text, got = c.call("POST", "/mcp", msg, token=token, headers=h)
    return status, (json.loads(text) if text else None), got


def call(id_, name, arguments=None):
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}


def test_tenant_session_initialize_list_call(server, store_target, tmp_path, monkeypatch):
    path = tmp_path / "budgets.toml"
    path.write_text(BUDGETS)
    monkeypatch.setenv("NOMIRA_BUDGETS", str(path))
    monkeypatch.setenv("NOMIRA_BUDGET_TZ", "UTC")
    db = store.open_db(store_target)
    acme, zeta = store.create_tenant(db, "acme"), store.create_tenant(db, "zeta")
    c, app = server()
    assert c.post("/ingest", {"events": [spend(1, 3.0), spend(2, 5.5, developer="bo")]}, token=acme)[0] == 200
    assert c.post("/ingest", {"events": [spend(3, 20.0, developer="zed")]}, token=zeta)[0] == 200

    status, reply, headers = post(c, INITIALIZE, token=acme)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert reply["id"] == 1 and reply["result"]["protocolVersion"] == "2024-11-05"
    assert reply["result"]["capabilities"] == {"tools": {"listChanged": False}}
    sid = headers["Mcp-Session-Id"]
    assert sid and all(0x21 <= ord(ch) <= 0x7E for ch in sid)  # visible ASCII only, as the spec requires
    status, reply, _ = post(c, INITIALIZED, token=acme, sid=sid, **{"MCP-Protocol-Version": "2024-11-05"})
    assert (status, reply) == (202, None)  # a notification: 202, no body
    status, reply, _ = post(c, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, token=acme, sid=sid)
    assert status == 200 and {t["name"] for t in reply["result"]["tools"]} == {"team_usage", "budgets"}
    assert all(t["annotations"]["readOnlyHint"] for t in reply["result"]["tools"])

    status, reply, _ = post(c, call(3, "team_usage", {"group_by": "developer", "period": "all"}), token=acme, sid=sid)
    data = reply["result"]["structuredContent"]
    assert status == 200 and not reply["result"]["isError"] and data["tenant"] == "acme"
    assert {r["name"]: r["cost_usd"] for r in data["rows"]} == {"ana": 3.0, "bo": 5.5}  # never zeta's zed
    assert data["totals"] == rollups.totals(db, "acme", None) and data["totals"]["cost_usd"] == 8.5
    assert json.loads(reply["result"]["content"][0]["text"]) == data
    status, reply, _ = post(c, call(4, "budgets"), token=acme, sid=sid)
    budgets = reply["result"]["structuredContent"]["budgets"]
    assert [(b["name"], b["spent_usd"], b["crossed"]) for b in budgets] == [("acme-day", 8.5, [50, 80])]

    # the session is bound to the viewer: zeta's key cannot use acme's session
    status, reply, _ = post(c, call(5, "team_usage"), token=zeta, sid=sid)
    assert status == 404 and reply["error"]["code"] == -32600 and reply["id"] is None
    status, _, _ = post(c, call(5, "team_usage"), token=acme, sid=sid[:-2] + ("00" if sid[-2:] != "00" else "11"))
    assert status == 404  # a forged id
    status, _, _ = post(c, call(5, "team_usage"), token=acme)
    assert status == 400  # no session id
    status, _, _ = post(c, call(5, "team_usage"), token=acme, sid=sid, **{"MCP-Protocol-Version": "1999-01-01"})
    assert status == 400
    # the operator's view (loopback, no password: admin) sees every tenant
    status, reply, headers = post(c, INITIALIZE)
    status, reply, _ = post(c, call(6, "team_usage", {"group_by": "developer", "period": "all"}),
                            sid=headers["Mcp-Session-Id"])
    assert {r["name"] for r in reply["result"]["structuredContent"]["rows"]} == {"ana", "bo", "zed"}


def test_transport_rules(server, store_target):
    db = store.open_db(store_target)
    key = store.create_tenant(db, "acme")
    c, app = server({"NOMIRA_DASHBOARD_PASSWORD": "hunter22"})  # loopback without a password is the admin
    status, reply, headers = post(c, INITIALIZE)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    status, reply, _ = post(c, INITIALIZE, token="nmr_wrong")
    assert status == 401
    status, reply, _ = post(c, INITIALIZE, token=key, Origin="http://evil.example")
    assert status == 403 and reply == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600,
                                                                               "message": "Origin not allowed"}}
    status, _, _ = post(c, INITIALIZE, token=key, Origin=c.base)  # the collector's own origin
    assert status == 200
    status, reply, _ = post(c, INITIALIZE, token=key, Accept="application/json")
    assert status == 406
    status, reply, _ = post(c, [INITIALIZE], token=key)
    assert status == 400 and reply["error"]["code"] == -32600  # no JSON-RPC batches since 2025-06-18
    status, text, _ = c.call("POST", "/mcp", raw=b"{not json", token=key, headers={"Accept": ACCEPT})
    assert status == 400 and json.loads(text)["error"]["code"] == -32700
    for method in ("GET", "DELETE"):
        status, _, headers = c.call(method, "/mcp", token=key, headers={"Accept": "text/event-stream"})
        assert status == 405 and headers["Allow"] == "POST"
