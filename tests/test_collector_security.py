"""Regression tests for the collector security review (issue 11, server side), on loopback HTTP.

Each test names the finding it covers; docs/SECURITY.md points back here.
"""
import http.client
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from nomira.ledger import store
from nomira.collector import auth
from test_collector import Client, ev, server  # noqa: F401 - `server` is the shared fixture

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def sigpipe_ignored():
    """In-process servers run as `nomira serve` does (an earlier in-process cli.main() restores SIG_DFL)."""
    previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGPIPE, previous)


# --- small HTTP helpers: exact headers, no redirects followed, no cookie jar ---

def req(c: Client, method, path, body=None, headers=None, timeout=10):
    host, port = c.base.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def raw(c: Client, data: bytes, timeout=10) -> bytes:
    """Send bytes as they are; return everything the server answers."""
    host, port = c.base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def cookies_of(headers) -> dict:
    out = {}
    for k, v in headers:
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            out[name] = (rest.split(";")[0], v)
    return out


def login(c: Client, secret: str, extra_headers=None):
    """A browser's login: GET the form (pre-login cookie + CSRF token), POST it. Returns (status, headers)."""
    _, headers, html = req(c, "GET", "/login", headers=extra_headers)
    pre = cookies_of(headers)[auth.PRELOGIN_COOKIE][0]
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
    status, headers, _ = req(c, "POST", "/login", body=f"csrf={token}&secret={quote(secret)}".encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "Cookie": f"{auth.PRELOGIN_COOKIE}={pre}", **(extra_headers or {})})
    return status, headers


def session_cookie(c: Client, secret: str) -> str:
    status, headers = login(c, secret)
    assert status == 303
    return cookies_of(headers)[auth.SESSION_COOKIE][0]


def as_cookie(value: str) -> dict:
    return {"Cookie": f"{auth.SESSION_COOKIE}={value}"}


@pytest.fixture
def two_tenants(server, store_target):  # noqa: F811
    db = store.open_db(store_target)
    key_a, key_b = store.create_tenant(db, "acme"), store.create_tenant(db, "zeta")
    c, app = server({"NOMIRA_DASHBOARD_PASSWORD": "hunter22-correct"})
    assert c.post("/ingest", {"events": [ev(1, developer="alice")]}, token=key_a)[0] == 200
    assert c.post("/ingest", {"events": [ev(2, developer="bob")]}, token=key_b)[0] == 200
    return c, app, db, key_a, key_b


# --- 1. tenant escape ---

def test_csrf_token_replayed_as_session_cookie_gives_no_access(two_tenants):
    c, app, db, key_a, _ = two_tenants
    bearer_a = {"Authorization": f"Bearer {key_a}"}
    for chosen in ("csrf::99999999999", "admin::99999999999", "s1.forged", "local"):
        # the attacker picks the cookie the CSRF token is computed over, then replays the token
        status, _, html = req(c, "GET", "/import", headers={**bearer_a, **as_cookie(chosen)})
        assert status == 200
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
        for forged in (f"{chosen}.{token}", f"s1.{chosen}.{token}", token, f"s1.{token}.{token}"):
            status, _, _ = req(c, "GET", "/api/summary?period=all", headers=as_cookie(forged))
            assert status == 401, forged
            status, _, text = req(c, "GET", "/api/summary?period=all&tenant=zeta",
                                  headers={**bearer_a, **as_cookie(forged)})
            assert status == 200 and json.loads(text)["tenant"] == "acme"
    # A's own CSRF token (bound to A's real session) is no cookie either
    cookie_a = session_cookie(c, key_a)
    _, _, html = req(c, "GET", "/import", headers=as_cookie(cookie_a))
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
    assert req(c, "GET", "/api/summary", headers=as_cookie(token))[0] == 401
    assert not any(token in v for _, v in [(0, cookie_a)])


def test_tenant_session_sees_only_its_tenant(two_tenants):
    c, _, _, key_a, _ = two_tenants
    cookie_a = session_cookie(c, key_a)
    for path in ("/?period=all", "/?period=all&tenant=zeta", "/?period=all&tenant=", "/compare/developers?period=all"
                 "&tenant=zeta"):
        status, _, html = req(c, "GET", path, headers=as_cookie(cookie_a))
        assert status == 200 and "alice" in html and "bob" not in html and "all tenants" not in html
    status, _, text = req(c, "GET", "/api/summary?period=all&tenant=zeta", headers=as_cookie(cookie_a))
    assert json.loads(text)["tenant"] == "acme" and json.loads(text)["kpis"]["calls"] == 1
    assert req(c, "GET", "/developer/bob.json?period=all&tenant=zeta", headers=as_cookie(cookie_a))[0] == 404
    assert req(c, "GET", "/metrics", headers=as_cookie(cookie_a))[0] == 401  # not the admin
    # the admin sees everyone
    admin = session_cookie(c, "hunter22-correct")
    status, _, text = req(c, "GET", "/api/summary?period=all", headers=as_cookie(admin))
    assert status == 200 and json.loads(text)["kpis"]["calls"] == 2


def test_session_ends_on_logout_key_revocation_password_change_and_expiry(two_tenants, server):  # noqa: F811
    c, app, db, key_a, _ = two_tenants
    ok = lambda cookie: req(c, "GET", "/api/summary", headers=as_cookie(cookie))[0] == 200  # noqa: E731
    # logout (with its CSRF token) revokes the row: the old cookie is dead even if replayed
    admin = session_cookie(c, "hunter22-correct")
    assert ok(admin)
    assert req(c, "POST", "/logout", body=b"", headers={**as_cookie(admin), "Content-Type":
                                                       "application/x-www-form-urlencoded"})[0] == 403
    _, _, html = req(c, "GET", "/", headers={**as_cookie(admin), "Accept": "text/html"})
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
    status, headers, _ = req(c, "POST", "/logout", body=f"csrf={token}".encode(),
                             headers={**as_cookie(admin), "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and "Max-Age=0" in cookies_of(headers)[auth.SESSION_COOKIE][1]
    assert not ok(admin)
    # a revoked tenant key ends that tenant's sessions
    tenant = session_cookie(c, key_a)
    assert ok(tenant)
    db.execute("UPDATE api_keys SET revoked_at = '2026-12-01' WHERE key_hash = ?", (store.hash_key(key_a),))
    assert not ok(tenant)
    # expiry
    admin = session_cookie(c, "hunter22-correct")
    assert ok(admin)
    db.execute("UPDATE dashboard_sessions SET expires_at = ? WHERE revoked_at IS NULL", (int(time.time()) - 1,))
    assert not ok(admin)
    # a changed dashboard password ends admin sessions (another process, same store)
    admin = session_cookie(c, "hunter22-correct")
    c2, _ = server({"NOMIRA_DASHBOARD_PASSWORD": "a-new-password"})
    assert req(c2, "GET", "/api/summary", headers=as_cookie(admin))[0] == 401
    assert ok(admin)  # the first process still has the old password


def test_malformed_cookies_are_logged_out_never_500(two_tenants):
    c, app, db, _, _ = two_tenants
    keys = app.keys
    sid = "odd-but-signed"
    signed_no_row = f"s1.{sid}.{keys.mac(keys.session, 's1.' + sid)}"
    sid2 = "garbage-row"
    never = "never" if db.dialect.name == "sqlite" else 2 ** 40  # PostgreSQL's typed column holds no text
    db.execute("INSERT INTO dashboard_sessions (id, role, tenant, credential, issued_at, expires_at) VALUES "
               "(?, 'root', NULL, 'x', 0, ?)", (auth._sid_hash(sid2), never))
    signed_bad_row = f"s1.{sid2}.{keys.mac(keys.session, 's1.' + sid2)}"
    for cookie in (signed_no_row, signed_bad_row, "s1..", "a.b.c.d", "s1.x.é", "\"unterminated", "s1.x.zz"):
        assert req(c, "GET", "/api/summary", headers=as_cookie(cookie))[0] == 401, cookie
    assert status_of(raw(c, b"GET /api/summary HTTP/1.0\r\nCookie: nomira_session=s1.\xff\xfe.x\r\n\r\n")) == 401


# --- 8. cookies, login throttling, login/logout CSRF ---

def test_cookie_flags_secure_only_over_https(server):  # noqa: F811
    c, app = server({"NOMIRA_DASHBOARD_PASSWORD": "pw-123456"})
    _, headers = login(c, "pw-123456")
    flags = cookies_of(headers)[auth.SESSION_COOKIE][1]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Secure" not in flags
    https = {"X-Forwarded-Proto": "https"}
    _, headers = login(c, "pw-123456", https)
    assert "Secure" not in cookies_of(headers)[auth.SESSION_COOKIE][1]  # not trusted without --behind-proxy
    app.config.behind_proxy = True
    _, headers = login(c, "pw-123456", https)
    assert "Secure" in cookies_of(headers)[auth.SESSION_COOKIE][1]


def test_login_needs_csrf_and_is_throttled_per_client(server):  # noqa: F811
    c, app = server({"NOMIRA_DASHBOARD_PASSWORD": "pw-123456"})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert req(c, "POST", "/login", body=b"secret=pw-123456", headers=form)[0] == 403  # login CSRF
    statuses = []
    for _ in range(20):
        status, headers = login(c, "wrong-password")
        statuses.append(status)
    assert statuses.count(401) == app.config.login_free_failures
    assert set(statuses[app.config.login_free_failures:]) == {429}
    status, headers, _ = req(c, "POST", "/login", body=b"secret=x", headers=form)
    assert status == 429 and int(dict(headers)["Retry-After"]) >= 1
    assert login(c, "pw-123456")[0] == 429  # locked out: even the right password waits
    app.config.behind_proxy = True  # another client (as the proxy reports it) is not locked out
    assert login(c, "pw-123456", {"X-Forwarded-For": "203.0.113.9"})[0] == 303


def test_login_limiter_backoff_doubles_and_is_bounded():
    lim = auth.LoginLimiter(free=3, max_lockout=60, capacity=2)
    for _ in range(2):
        lim.failed("a", now=0)
    assert lim.retry_after("a", now=0) == 0
    waits = []
    for _ in range(6):
        lim.failed("a", now=0)
        waits.append(lim.retry_after("a", now=0))
    assert waits == [1, 2, 4, 8, 16, 32]
    for _ in range(4):
        lim.failed("a", now=0)
    assert lim.retry_after("a", now=0) == 60
    lim.failed("b", now=0)
    lim.failed("c", now=0)
    assert "a" not in lim.state  # bounded memory: the oldest address is forgotten


# --- 2. SIGPIPE: a real `nomira serve` process survives clients that vanish ---

def test_server_survives_clients_disconnecting_early(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path)}
    env.pop("NOMIRA_DASHBOARD_PASSWORD", None)
    env.pop("NOMIRA_INGEST_TOKEN", None)
    db = tmp_path / "team.db"
    seed = store.open_db(db)
    store.ingest(seed, [ev(i, project=f"p{i % 40}", developer=f"d{i % 30}") for i in range(300)])
    seed.close()
    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "nomira", "serve", "--port", "0", "--db", str(db)], cwd=ROOT,
                                env=env, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while not (m := re.search(r":(\d+)/", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        port = int(m.group(1))
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /?period=all HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            s.close()  # like `curl -m 1`: gone before the page is written; the server's writes then fail
        time.sleep(0.5)
        assert proc.poll() is None, f"server died with {proc.returncode}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "Traceback" not in log.read_text()


# --- 3. bodies ---

@pytest.mark.parametrize("path", ["/login", "/ingest", "/v1/usage/events", "/import"])
def test_bad_or_missing_content_length(server, path):  # noqa: F811
    c, _ = server()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
    assert status_of(raw(c, (head + "Content-Length: -1\r\n\r\n{}").encode())) == 400
    assert status_of(raw(c, (head + "Content-Length: 1e3\r\n\r\n{}").encode())) == 400
    assert status_of(raw(c, (head + "\r\n").encode())) == 411
    assert status_of(raw(c, (head + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").encode())) == 411


def test_oversized_body_gets_413_not_a_broken_pipe(server):  # noqa: F811
    c, app = server()
    app.config.max_ingest_bytes = 64 << 10
    body = b"[" + b" " * (8 << 20) + b"]"
    head = (f"POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    t0 = time.monotonic()
    answer = raw(c, head + body)  # sendall of 8 MB raises if the server resets the connection
    assert status_of(answer) == 413 and b"larger than" in answer
    assert time.monotonic() - t0 < 5
    assert c.get("/healthz")[0] == 200


def test_import_of_megabytes_of_newlines_is_fast_and_rejected(server):  # noqa: F811
    c, _ = server()
    _, _, html = req(c, "GET", "/import")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
    b = "B0undary"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n--{b}\r\n"
            f"Content-Disposition: form-data; name=\"file\"; filename=\"e.json\"\r\n\r\n").encode() \
        + b"\n" * (8 << 20) + f"\r\n--{b}--\r\n".encode()
    t0 = time.monotonic()
    status, _, text = req(c, "POST", "/import", body=body, headers={"Content-Type":
                                                                   f"multipart/form-data; boundary={b}"})
    assert status == 400 and json.loads(text)["field"] == "file"
    assert time.monotonic() - t0 < 3  # the email parser took ~2.7 s per 8 MB (17 s for 50 MB)


# --- 4. pool, timeouts, backlog ---

def test_idle_connections_do_not_starve_healthz_and_concurrent_ingests_succeed(server):  # noqa: F811
    c, app = server()
    host, port = "127.0.0.1", int(c.base.rsplit(":", 1)[1])
    threads_before = threading.active_count()
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(200)]
    try:
        idle[0].sendall(b"GET /healthz HTTP/1.1\r\n")  # a slow client, mid-request
        time.sleep(0.2)
        t0 = time.monotonic()
        assert c.get("/healthz")[0] == 200
        assert time.monotonic() - t0 < 1.0
        assert threading.active_count() <= threads_before + 2  # no thread per connection
        results = []

        def ship(i):
            try:
                results.append(c.post("/ingest", {"events": [ev(1000 * i + j) for j in range(20)]})[0])
            except OSError as exc:
                results.append(repr(exc))
        workers = [threading.Thread(target=ship, args=(i,)) for i in range(40)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=30)
        assert results == [200] * 40
    finally:
        for s in idle:
            s.close()
    assert json.loads(c.get("/api/summary?period=all")[1])["kpis"]["calls"] == 800


def test_slow_headers_are_cut_off(tmp_path):
    from nomira.commands import serve
    srv = serve.make_collector_server("127.0.0.1", 0, serve.make_app(tmp_path / "c.db", "127.0.0.1"), workers=2)
    srv.header_timeout = 0.5
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        slow = [socket.create_connection(("127.0.0.1", srv.server_port), timeout=5) for _ in range(2)]
        t0 = time.monotonic()
        for s in slow:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        time.sleep(0.3)
        for s in slow:
            s.sendall(b"X-Drip: 1\r\n")  # each drip is within the socket timeout, the sum is not
        for s in slow:
            assert s.recv(100) == b"" and time.monotonic() - t0 < 3  # dropped at the header deadline
            s.close()
        conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200  # both workers are free again
    finally:
        srv.shutdown()
        srv.server_close()


def test_listen_backlog_and_pool_are_bounded():
    from nomira.commands.serve import CollectorServer, CollectorHandler
    srv = CollectorServer(("127.0.0.1", 0), CollectorHandler, workers=3)
    try:
        assert srv.request_queue_size >= 128
        assert len([t for t in srv.threads if t.name.startswith("nomira-worker")]) == 3
        assert CollectorHandler.timeout and CollectorHandler.timeout <= 60
    finally:
        srv.server_close()


# --- 5. localhost mode: content type and Host ---

def test_ingest_needs_json_content_type_and_host_is_checked(server, monkeypatch):  # noqa: F811
    c, _ = server()
    body = json.dumps({"events": [ev(1)]}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        for path in ("/ingest", "/v1/usage/events"):
            status, _, _ = req(c, "POST", path, body=body, headers={"Content-Type": ctype} if ctype else {})
            assert status == 415
    assert json.loads(c.get("/api/summary?period=all")[1])["kpis"]["calls"] == 0
    assert req(c, "POST", "/ingest", body=body, headers={"Content-Type": "application/json; charset=utf-8"})[0] == 200
    for host in ("evil.example", "evil.example:8787", "127.0.0.1.nip.io"):
        assert req(c, "GET", "/api/summary", headers={"Host": host})[0] == 421
        assert req(c, "POST", "/ingest", body={"events": [ev(2)]}, headers={"Host": host})[0] == 421
    for host in ("localhost:8787", "127.0.0.1", "[::1]:8787"):
        assert req(c, "GET", "/api/summary", headers={"Host": host})[0] == 200
    c2, _ = server({"NOMIRA_ALLOWED_HOSTS": "nomira.internal, other.internal"})
    assert req(c2, "GET", "/api/summary", headers={"Host": "nomira.internal:8787"})[0] == 200
    assert req(c2, "GET", "/api/summary", headers={"Host": "evil.example"})[0] == 421


# --- 6. the store file is owner-only ---

def test_store_created_owner_only(tmp_path):
    db = store.open_db(tmp_path / "new.db")
    store.ingest(db, [ev(1)])
    for name in ("new.db", "new.db-wal", "new.db-shm"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    db.close()


# --- 7. sessions never write on read ---

def test_logged_in_pages_take_no_write_lock(server, store_target):  # noqa: F811
    c, _ = server({"NOMIRA_DASHBOARD_PASSWORD": "pw-123456"})
    cookie = session_cookie(c, "pw-123456")
    writer = store.open_db(store_target)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO settings (key, value) VALUES ('held', '1')")
    try:
        t0 = time.monotonic()
        for path in ("/api/summary?period=all", "/?period=all", "/import", "/compare/developers"):
            assert req(c, "GET", path, headers=as_cookie(cookie), timeout=5)[0] == 200
        assert time.monotonic() - t0 < 3
    finally:
        writer.execute("ROLLBACK")
        writer.close()


# --- 9. /metrics when exposed ---

def test_metrics_need_auth_when_exposed(server, store_target):  # noqa: F811
    c, _ = server({"NOMIRA_DASHBOARD_PASSWORD": "pw-123456", "NOMIRA_METRICS_TOKEN": "m-token-1"}, host="0.0.0.0")
    assert req(c, "GET", "/metrics")[0] == 401
    assert req(c, "GET", "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert req(c, "GET", "/metrics", headers={"Authorization": "Bearer m-token-1"})[0] == 200
    assert req(c, "GET", "/metrics", headers=as_cookie(session_cookie(c, "pw-123456")))[0] == 200
    key = store.create_tenant(store.open_db(store_target), "acme")
    assert req(c, "GET", "/metrics", headers={"Authorization": f"Bearer {key}"})[0] == 401
    assert req(c, "GET", "/healthz")[0] == 200  # liveness stays open


# --- 10. 500s that are 400s; the guard ---

def test_deep_json_and_bad_csrf_are_400(server):  # noqa: F811
    c, _ = server()
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_obj = b'{"events": [{"tags": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}]}"
    for path in ("/ingest", "/v1/usage/events"):
        for body in (deep, deep_obj):
            assert req(c, "POST", path, body=body, headers={"Content-Type": "application/json"})[0] == 400
    _, _, html = req(c, "GET", "/import")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
    assert req(c, "POST", "/import", body=deep, headers={"X-CSRF-Token": token})[0] == 400
    assert req(c, "POST", "/import", body=deep_obj, headers={"X-CSRF-Token": token})[0] == 400
    assert status_of(raw(c, b"POST /import HTTP/1.0\r\nContent-Length: 2\r\nX-CSRF-Token: \xc3\xa9t\xc3\xa9\r\n\r\n"
                            b"[]")) == 400
    b = "Bnd"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nété\r\n--{b}--\r\n").encode()
    assert req(c, "POST", "/import", body=body, headers={"Content-Type": f"multipart/form-data; boundary={b}"})[0] \
        == 400
    assert c.get("/healthz")[0] == 200


def test_unexpected_error_is_500_without_details(server, capsys):  # noqa: F811
    c, app = server()

    def boom(req):
        raise ValueError("private-" + "prompt-text")
    app.compiled = [(m, rx, boom if v == app.healthz else v) for m, rx, v in app.compiled]
    status, _, text = req(c, "GET", "/healthz")
    assert status == 500 and json.loads(text) == {"status": "error", "error": "internal error"}
    assert "Traceback" not in text and "private-prompt-text" not in text
    err = capsys.readouterr().err
    assert "ValueError" in err and "private-prompt-text" not in err


# --- 11. names in links ---

def test_links_round_trip_names_with_odd_characters(server, store_target):  # noqa: F811
    c, _ = server()
    names = ["café 東京", "a b", "100%", "50%25", "a+b&c=d?e#f"]
    assert c.post("/ingest", {"events": [ev(i, project=n, developer=n) for i, n in enumerate(names)]})[0] == 200
    odd = ["team/api", "x.json"]  # refused at ingest today, but a store may hold them
    store.ingest(store.open_db(store_target), [ev(10 + i, project=n, developer=n)
                                                            for i, n in enumerate(odd)])
    names += odd
    _, html = c.get("/?period=all")
    links = set(re.findall(r'href="(/(?:project|developer)/[^"?]+)', html))
    assert len(links) == 2 * len(names)
    for link in links:
        status, _, page = req(c, "GET", link.replace("&amp;", "&") + "?period=all")
        assert status == 200, link
    for n in names:
        for kind in ("project", "developer"):
            status, _, text = req(c, "GET", f"/{kind}/{quote(n, safe='').replace('.', '%2E')}.json?period=all")
            assert status == 200 and json.loads(text)["name"] == n and json.loads(text)["totals"]["calls"] == 1


def test_names_without_raw_uri_still_resolve(tmp_path):
    """A WSGI server that gives only PATH_INFO (PEP 3333: latin-1 decoded) still finds UTF-8 names."""
    from nomira.commands.serve import make_app
    app = make_app(tmp_path / "c.db", "127.0.0.1")
    store.ingest(app.db, [ev(1, project="café 東京")])
    out = {}
    path = "/project/café 東京.json".encode().decode("latin-1")
    body = app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "period=all", "HTTP_HOST": "localhost",
                "wsgi.input": None}, lambda status, headers: out.setdefault("status", status))
    assert out["status"].startswith("200") and json.loads(b"".join(body))["name"] == "café 東京"


# --- 12, 13. a bad row already in a store does not break pages ---

def _bad_rollup(db, day, **tokens):
    cols = ("grain", "tenant", "day", *store.GRAIN_DIMS, *store.ROLLUP_COLS)
    with_values = {"tenant": "", "developer": "", "project": "", "model": "", "regime": "api", "calls": 1,
                   **{t: 0 for t in store.TOKEN_FIELDS}, "cost_usd": 1.0, "unpriced_calls": 0, **tokens}
    for grain, dims in store.GRAINS.items():
        row = {**with_values, "grain": grain, "day": day, **{d: "" for d in store.GRAIN_DIMS if d not in dims}}
        if "developer" in dims:
            row["developer"] = "ana"
        if "project" in dims:
            row["project"] = "shop"
        keys = ("grain", "tenant", "day", *store.GRAIN_DIMS)
        db.execute(f"DELETE FROM rollups WHERE {' AND '.join(f'{k} = ?' for k in keys)}", [row[k] for k in keys])
        db.execute(f"INSERT INTO rollups ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                   [row[k] for k in cols])


def test_far_dates_in_store_keep_pages_fast_and_short(server, store_target):  # noqa: F811
    c, _ = server()
    assert c.post("/ingest", {"events": [ev(1)]})[0] == 200
    db = store.open_db(store_target)
    for day in ("9999-12-31", "3000-01-01", "0001-01-01", "not-a-day"):
        _bad_rollup(db, day)
    t0 = time.monotonic()
    for period in ("today", "7d", "30d", "all"):
        status, text = c.get(f"/api/summary?period={period}")
        assert status == 200
        daily = json.loads(text)["daily"]
        from nomira.ledger.rollups import MAX_DAILY_POINTS, MAX_MONTHLY_POINTS, PERIODS
        assert len(daily) <= (PERIODS[period] or max(MAX_DAILY_POINTS, MAX_MONTHLY_POINTS))
        for path in (f"/?period={period}", f"/project/shop?period={period}", f"/developer/ana?period={period}"):
            status, html = c.get(path)
            assert status == 200 and len(html) < 2_000_000
    assert time.monotonic() - t0 < 5


def test_day_series_bounds():
    from datetime import date
    from nomira.ledger.rollups import MAX_DAILY_POINTS, _row, FIELDS, day_series
    today = date(2026, 12, 2)
    mk = lambda d: {"name": d, **_row([1] * len(FIELDS))}  # noqa: E731
    rows = [mk("2020-01-01"), mk("2026-11-30"), mk("2026-12-02"), mk("9999-12-31")]
    points, span = day_series(rows, "7d", today)
    assert [p["name"] for p in points] == ["2026-11-30", "2026-12-01", "2026-12-02"] and span == 3
    points, span = day_series(rows, "all", today)
    assert span > MAX_DAILY_POINTS and points[0]["name"] == "2020-01" and points[-1]["name"] == "2026-12"
    assert sum(p["calls"] for p in points) == 3  # the future row is off the axis
    points, _ = day_series([mk("0001-01-01"), mk("2026-12-01")], "all", today)
    assert len(points) == 1200


def test_huge_counts_in_store_do_not_overflow_pages(server, store_target):  # noqa: F811
    c, _ = server()
    assert c.post("/ingest", {"events": [ev(1)]})[0] == 200
    db = store.open_db(store_target)
    _bad_rollup(db, "2025-11-03", input=2 ** 63 - 1, output=2 ** 63 - 1, calls=2 ** 63 - 1)
    _bad_rollup(db, "2025-11-04", cost_usd=float("inf"))
    _bad_rollup(db, "2025-11-05", cost_usd=-float("inf"))
    def strict(const):
        raise ValueError(f"{const} is not JSON")
    assert json.loads(c.get("/api/summary?period=all")[1], parse_constant=strict)["kpis"]["calls"] >= 2 ** 63
    for path in ("/api/summary?period=all", "/?period=all", "/compare/developers?period=all",
                 "/project/shop?period=all", "/developer/ana?period=all", "/metrics"):
        assert c.get(path)[0] == 200, path


def test_a_body_that_stops_short_of_its_length_is_408_not_500(tmp_path, monkeypatch):
    """A client that sends fewer bytes than its Content-Length and waits: the read times out, and the
    answer is 408 (it was a 500 with a logged TimeoutError)."""
    from nomira.commands import serve
    monkeypatch.setattr(serve, "SOCKET_TIMEOUT", 0.5)
    monkeypatch.setattr(serve.CollectorHandler, "timeout", 0.5)
    srv = serve.make_collector_server("127.0.0.1", 0, serve.make_app(tmp_path / "c.db", "127.0.0.1"), workers=2)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.server_port), timeout=10) as s:
            s.sendall(b"POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"events\"")
            answer = s.recv(200)
        assert status_of(answer) == 408
    finally:
        srv.shutdown()
        srv.server_close()
