"""The collector over real HTTP on loopback: ingest, dedup, auth, tenant isolation, escaping."""
import json
import re
import signal
import threading
import urllib.error
import urllib.request
from wsgiref.simple_server import make_server

import pytest

from nomira.ledger import store
from nomira.commands.serve import CollectorHandler, ThreadingWSGIServer, make_app, startup_warnings
from nomira.collector.auth import Config


class Quiet(CollectorHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def server(store_target, monkeypatch):
    monkeypatch.delenv("NOMIRA_INGEST_TOKEN", raising=False)
    monkeypatch.delenv("NOMIRA_DASHBOARD_PASSWORD", raising=False)
    if hasattr(signal, "SIGPIPE"):  # as `nomira serve` sets it (an in-process cli.main() may have reset it)
        previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    servers = []

    def start(env=None, host="127.0.0.1"):
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        app = make_app(store_target, host)
        httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(httpd)
        return Client(f"http://127.0.0.1:{httpd.server_port}"), app
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, previous)


class Client:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)

    def post(self, path, body, **kw):
        status, text, _ = self.call("POST", path, body, **kw)
        return status, json.loads(text) if text.startswith("{") else text

    def get(self, path, **kw):
        status, text, _ = self.call("GET", path, **kw)
        return status, text


def ev(i=0, project="shop", developer="ana", **over):
    e = {"schema_version": 1, "source": "claude_code", "provider": "anthropic", "model": "claude-opus-4-7",
         "occurred_at": "2025-11-03T14:22:07.913Z", "tokens": {"input": 100, "output": 1000, "cache_read": 5000},
         "cost_usd": 0.028, "cost_source": "bundled:2026-11-24", "regime": "subscription",
         "tags": {"developer": developer, "project": project}, "message_id": f"msg_{i}"}
    e.update(over)
    return e


def test_ingest_and_dedup_localhost_open(server):
    c, app = server()
    sid = store.store_id(app.db)
    assert c.post("/ingest", {"events": [ev(1), ev(2)]}) == (200, {"status": "accepted", "accepted": 2, "deduped": 0,
                                                                  "store_id": sid})
    status, body = c.post("/v1/usage/events", {"events": [ev(1), ev(3)]})
    assert status == 200 and {k: body[k] for k in ("status", "accepted", "deduped", "store_id")} == {
        "status": "accepted", "accepted": 1, "deduped": 1, "store_id": sid}
    assert [(e["status"], e["deduped"]) for e in body["events"]] == [("accepted", True), ("accepted", False)]
    status, text = c.get("/api/summary?period=all")
    assert status == 200 and json.loads(text)["kpis"]["calls"] == 3


def test_content_rejected_with_field(server):
    c, _ = server()
    status, body = c.post("/ingest", {"events": [ev(1), dict(ev(2), prompt="secret plans")]})
    assert status == 400 and body["field"] == "events[1].prompt"
    status, body = c.post("/ingest", {"events": [ev(1, project="/home/ana/secret")]})
    assert status == 400 and body["field"] == "events[0].tags.project"
    _, text = c.get("/api/summary?period=all")
    assert json.loads(text)["kpis"]["calls"] == 0  # a rejected batch stores nothing


def test_a_batch_member_outside_the_schema_is_rejected(server):
    """The batch is an allowlist too (docs/schemas/usage-events-request.schema.json): `events`,
    `day_zone`, `repin_day_zone`; anything else is a 400 naming it, and nothing of the batch is kept."""
    c, app = server()
    for path in ("/ingest", "/v1/usage/events"):
        status, body = c.post(path, {"events": [ev(1)], "prompt": "secret text"})
        assert status == 400 and body["field"] == "prompt", body
    assert app.db.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 0
    assert c.post("/ingest", {"events": [ev(1)], "day_zone": "UTC", "repin_day_zone": False})[0] == 200


def test_oversized_body_is_413(server, monkeypatch):
    c, app = server()
    app.config.max_ingest_bytes = 1000
    status, _ = c.post("/ingest", {"events": [ev(i) for i in range(50)]})
    assert status == 413


def test_api_keys_and_tenant_isolation(server, store_target):
    db = store.open_db(store_target)
    key_a = store.create_tenant(db, "acme")
    key_b = store.create_tenant(db, "zeta")
    c, _ = server()
    assert c.post("/ingest", {"events": [ev(1)]})[0] == 401  # keys exist: no anonymous ingest
    assert c.post("/ingest", {"events": [ev(1)]}, token="nmr_wrong")[0] == 401
    assert c.post("/ingest", {"events": [ev(1, developer="alice")]}, token=key_a)[0] == 200
    assert c.post("/ingest", {"events": [ev(2, developer="bob")]}, token=key_b)[0] == 200
    # A's key cannot write as B
    status, body = c.post("/ingest", {"events": [dict(ev(3), tags={"developer": "x", "tenant": "zeta"})]}, token=key_a)
    assert status == 403 and body["field"] == "events[0].tags.tenant"
    assert db.execute("SELECT tenant, developer FROM events ORDER BY tenant").fetchall() == [
        ("acme", "alice"), ("zeta", "bob")]
    # A's dashboard never shows B's developer, even when asking for B
    for path in ("/?period=all", "/?period=all&tenant=zeta", "/compare/developers?period=all&tenant=zeta"):
        status, html = c.get(path, token=key_a)
        assert status == 200 and "alice" in html and "bob" not in html
    status, _ = c.get("/developer/bob?period=all", token=key_a)
    assert status == 404


def test_legacy_token_and_constant_time_path(server):
    c, _ = server({"NOMIRA_INGEST_TOKEN": "s3cret-token"})
    assert c.post("/ingest", {"events": [ev(1)]})[0] == 401
    assert c.post("/ingest", {"events": [ev(1)]}, token="s3cret-tokem")[0] == 401
    assert c.post("/ingest", {"events": [ev(1)]}, token="s3cret-token")[0] == 200


def test_dashboard_login_when_password_set(server):
    c, _ = server({"NOMIRA_DASHBOARD_PASSWORD": "hunter22"})
    status, text = c.get("/api/summary")
    assert status == 401
    status, _, headers = c.call("POST", "/login", raw=b"secret=wrong",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403  # no login CSRF token
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(c.base + "/login") as r:
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', r.read().decode()).group(1)
    req = urllib.request.Request(c.base + "/login", data=f"csrf={csrf}&secret=wrong".encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(req)
    assert e.value.code == 401
    req = urllib.request.Request(c.base + "/login", data=f"csrf={csrf}&secret=hunter22".encode(), method="POST")
    with opener.open(req) as r:
        assert r.status == 200 and "Usage" in r.read().decode()
    with opener.open(c.base + "/api/summary") as r:
        assert r.status == 200


def test_exposed_without_auth_warns():
    assert startup_warnings(Config(host="0.0.0.0")) and not startup_warnings(Config(host="127.0.0.1"))
    assert not Config(host="0.0.0.0").local_only


def test_xss_payload_in_project_rendered_inert(server):
    c, _ = server()
    payload = '<img src=x onerror=alert(1)>"\'&'
    assert c.post("/ingest", {"events": [ev(1, project=payload, developer='<b onmouseover=alert(2)>')]})[0] == 200
    for path in ("/?period=all", "/compare/developers?period=all"):
        status, html = c.get(path)
        assert status == 200
        assert "<img src=x" not in html and "<b onmouseover" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html or "&lt;b onmouseover=alert(2)&gt;" in html
    from urllib.parse import quote
    status, html = c.get(f"/project/{quote(payload, safe='')}?period=all")
    assert status == 200 and "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_period_windows_and_drilldowns(server):
    from datetime import datetime, timedelta, timezone
    c, _ = server()
    now = datetime.now(timezone.utc)
    old = (now - timedelta(days=20)).isoformat()
    c.post("/ingest", {"events": [ev(1, occurred_at=now.isoformat()), ev(2, occurred_at=old, project="infra"),
                                  ev(3, occurred_at=(now - timedelta(days=100)).isoformat())]})
    calls = {p: json.loads(c.get(f"/api/summary?period={p}")[1])["kpis"]["calls"] for p in
             ("today", "7d", "30d", "all")}
    assert calls == {"today": 1, "7d": 1, "30d": 2, "all": 3}
    assert c.get("/api/summary?period=1y")[0] == 400
    status, text = c.get("/project/infra.json?period=30d")
    assert status == 200 and json.loads(text)["totals"]["calls"] == 1
    status, text = c.get("/developer/ana.json?period=all")
    assert json.loads(text)["breakdown"][0]["name"] in ("shop", "infra")


def test_compare_developers_headline(server):
    c, _ = server()
    tok = lambda out: {"input": 100, "output": out, "cache_read": 5000}  # noqa: E731
    c.post("/ingest", {"events": [
        ev(1, developer="ana", cost_usd=0.20, tokens=tok(1000), session_id="s1"),
        ev(2, developer="ana", project="api", cost_usd=0.10, tokens=tok(1000), session_id="s2"),
        ev(3, developer="bob", cost_usd=0.10, tokens=tok(100), session_id="s3"),  # $1.00 per 1k output
        ev(4, developer="cy", cost_usd=0.20, tokens=tok(2000), session_id="s4")]})
    d = json.loads(c.get("/compare/developers.json?period=all")[1])
    rows = {r["name"]: r for r in d["rows"]}
    assert [r["name"] for r in d["rows"]] == ["ana", "cy", "bob"]
    assert (rows["ana"]["sessions"], rows["ana"]["projects"], rows["ana"]["calls"]) == (2, 2, 2)
    assert rows["ana"]["usd_per_1k_output"] == pytest.approx(0.15) and rows["bob"]["usd_per_1k_output"] == 1.0
    assert d["headline"] == "ana spent 3.0× more than bob ($0.30 vs $0.10); least efficient per output: bob " \
                            "($1.00/1k output)"
    page = c.get("/compare/developers?period=all")[1]
    for column in ("Sessions", "Projects", "$/call", "$/1k output", "Cache reuse"):
        assert f">{column}</th>" in page.replace("&#x27;", "'"), column
    assert "least efficient per output: bob" in page
    csv_text = c.get("/compare/developers.csv?period=all")[1]
    assert csv_text.splitlines()[0].endswith("sessions,projects,usd_per_1k_output")
    c.post("/ingest", {"events": [ev(5, developer="dee", cost_usd=0.0, session_id="s5")]})
    one = json.loads(c.get("/compare/developers.json?period=all&developer=cy")[1])
    assert one["headline"] is None  # one developer in view: nothing to compare


def test_import_requires_csrf_and_validates(server, tmp_path):
    c, _ = server()
    doc = json.dumps({"events": [ev(1), ev(2)]}).encode()
    assert c.call("POST", "/import", raw=doc)[0] == 403  # no CSRF token
    status, html = c.get("/import")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
    boundary = "XyZ123"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"events.json\"\r\n"
            f"Content-Type: application/json\r\n\r\n").encode() + doc + f"\r\n--{boundary}--\r\n".encode()
    status, text, _ = c.call("POST", "/import", raw=body,
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and json.loads(text)["accepted"] == 2
    bad = json.dumps({"events": [dict(ev(9), content="hello")]}).encode()
    status, text, _ = c.call("POST", "/import", raw=bad, headers={"X-CSRF-Token": token})
    assert status == 400 and json.loads(text)["field"] == "events[0].content"


def test_import_of_a_newer_format_or_another_tenants_events_is_refused(server, store_target):
    """/import as /ingest: a file written by a newer Nomira (its meaning unknown here) is a 400, and a
    tenant's viewer importing events another tenant claims is a 403 (was: re-filed under its own)."""
    db = store.open_db(store_target)
    key_a = store.create_tenant(db, "acme")
    store.create_tenant(db, "zeta")
    db.close()
    c, app = server()
    status, html = c.get("/import", token=key_a)
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)

    def upload(doc):
        status, text, _ = c.call("POST", "/import", raw=json.dumps(doc).encode(), token=key_a,
                                 headers={"X-CSRF-Token": token})
        return status, json.loads(text)
    for field, value in (("nomira_export", 2), ("schema_version", 2), ("nomira_export", "1"), ("schema_version", 0)):
        status, body = upload({"nomira_export": 1, "schema_version": 1, "events": [ev(1)], field: value})
        assert status == 400 and body["field"] == field, body
    status, body = upload({"events": [ev(1), dict(ev(2), tags={"developer": "ana", "tenant": "zeta"})]})
    assert status == 403 and body["field"] == "events[1].tags.tenant"
    assert app.db.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 0
    assert upload({"nomira_export": 1, "schema_version": 1, "events": [dict(ev(3), tags={"developer": "ana",
                                                                                           "tenant": "acme"})]})[0] == 200
    status, body = upload({"day_zone": "Not/AZone", "events": [ev(4)]})
    assert status == 400 and body["field"] == "day_zone"
    assert upload({"day_zone": "America/New_York", "events": [ev(4)]})[0] == 200  # (the exporting machine's days)
    assert app.db.execute("SELECT day_zone FROM raw_events ORDER BY id DESC LIMIT 1").fetchone() == (
        "America/New_York",)


def test_healthz_and_metrics(server):
    c, app = server()
    c.post("/ingest", {"events": [ev(1), ev(1)]})
    c.post("/ingest", {"events": [dict(ev(2), text="x")]})
    assert c.get("/healthz") == (200, json.dumps({"status": "ok", "store_id": store.store_id(app.db)}, indent=1))
    _, text = c.get("/metrics")
    metrics = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert metrics["nomira_ingest_events_total"] == "1" and metrics["nomira_ingest_deduped_total"] == "1"
    assert metrics["nomira_ingest_rejected_total"] == "1"
    assert float(metrics["nomira_dedup_ratio"]) == pytest.approx(0.5)


def _real_corruption_error(tmp_path):
    """The exception SQLite raises for a damaged file (pages overwritten, as a disk fault leaves them)."""
    import sqlite3
    path = tmp_path / "damaged.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    db.commit()
    db.close()
    with open(path, "r+b") as fh:
        fh.seek(4096 + 8)
        fh.write(b"\xff" * 64)
    try:
        sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone()
    except sqlite3.DatabaseError as exc:
        return exc
    raise AssertionError("the damage went unseen")


def test_damaged_store_is_a_plain_503_not_a_traceback(server, tmp_path, monkeypatch, capfd):
    """A store that SQLite finds damaged: 503 with Retry-After (shippers keep their events) and one log line."""
    from nomira.ledger import engine
    c, app = server()
    damage = _real_corruption_error(tmp_path)
    assert engine.damaged(damage) and not engine.damaged(ValueError("x"))

    def broken(req):
        raise damage
    monkeypatch.setattr(app, "dispatch", broken)
    for method, path in (("POST", "/ingest"), ("POST", "/v1/usage/events"), ("GET", "/?period=all"),
                         ("GET", "/healthz")):
        status, text, headers = c.call(method, path, {"events": [ev(1)]} if method == "POST" else None)
        assert status == 503 and "store damaged" in text and headers.get("Retry-After") == "300", (path, status)
    err = capfd.readouterr().err
    assert "the store is damaged (database disk image is malformed)" in err and "Traceback" not in err
