"""The shipping path (issue 11): no redirects, store identity, batches bound to one destination, bad URLs."""
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from conftest import FIXTURES
from nomira.ledger import store
from nomira.cli import main
from nomira.commands.serve import ThreadingWSGIServer, make_app
from nomira.ledger.ship import http_post
from nomira.ledger.spool import Spool

BOTH = ["--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "codex")]
N = 9  # calls in those fixtures
LIMITS = 2  # the Codex rollout's rate_limits: its primary and secondary window, shipped as limit snapshots
ROOT = Path(__file__).resolve().parent.parent


class Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass


class Collector:
    """The real collector (nomira serve's WSGI app) on a loopback port."""

    def __init__(self, db_path, port=0):
        self.db_path = db_path
        self.httpd = make_server("127.0.0.1", port, make_app(db_path, "127.0.0.1"),
                                 server_class=ThreadingWSGIServer, handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def rows(self, sql):
        db = store.open_db(self.db_path)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port():
    """A port free now, below the ephemeral range: a test that leaves it unbound while its
    collector is down then binds it again, and an ephemeral port (port 0) can meanwhile be taken
    by any outgoing connection ("Address already in use", seen once in a full run)."""
    import random
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """No real back-off sleeps, no collector settings from the environment."""
    for var in ("NOMIRA_INGEST_TOKEN", "NOMIRA_DASHBOARD_PASSWORD", "NOMIRA_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    real = Spool.flush
    monkeypatch.setattr(Spool, "flush", lambda self, post, **kw: real(self, post, **dict(kw, sleep=lambda s: None)))


@pytest.fixture
def collectors():
    started = []

    def start(db_path, port=0):
        c = Collector(db_path, port)
        started.append(c)
        return c
    yield start
    for c in started:
        c.close()


def ship(capsys, *args):
    capsys.readouterr()
    rc = main(["ship", *BOTH, "--developer", "ana", *map(str, args)])
    return rc, capsys.readouterr().err


def spool(home):
    return Spool(home / ".local/state/nomira/spool")


# --- 3. redirects are never followed ---

class Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def _any(self):
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self._reply(200, b'{"status": "accepted", "accepted": 1, "deduped": 0}', {})

    do_GET = do_POST = _any

    def _reply(self, code, body, headers):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def serve(handler):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return httpd


def test_redirect_is_not_followed_and_not_counted_delivered(isolated_env, capsys):
    Recorder.seen = []
    target = serve(Recorder)
    where = f"http://127.0.0.1:{target.server_address[1]}"

    class Redirector(Recorder):
        def _any(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(302, b"", {"Location": where + self.path})
        do_GET = do_POST = _any
    redirector = serve(Redirector)
    try:
        url = f"http://127.0.0.1:{redirector.server_address[1]}"
        status, body = http_post(url, "s3cret")([{"x": 1}])
        assert status == 302 and where in body
        rc, err = ship(capsys, "--remote", url, "--token", "s3cret")
        assert rc == 1 and "HTTP 302" in err and "redirects are never followed" in err and "Traceback" not in err
        assert Recorder.seen == []  # the key never reached the other host; nothing at all did
        assert len(spool(isolated_env).batches()) == 1  # not delivered: kept for the right URL
        rc, err = ship(capsys, "--remote", url, "--token", "s3cret", "--json")
        assert rc == 1 and Recorder.seen == [] and len(spool(isolated_env).batches()) == 1
    finally:
        for s in (target, redirector):
            s.shutdown()
            s.server_close()


# --- 4. store identity: the ledger follows the store, not its path or URL ---

def test_migration_gives_every_store_its_own_stable_id(tmp_path):
    names = [n for n, _ in store.MIGRATIONS]
    assert names.index("0008_store_identity") > names.index("0006_drop_unused_indexes")
    assert names == sorted(names)  # 0007 (dashboard sessions) lands between them when merged
    a, b = store.open_db(tmp_path / "a.db"), store.open_db(tmp_path / "b.db")
    assert len(store.store_id(a)) == 32 and store.store_id(a) != store.store_id(b)
    assert store.store_id(store.open_db(tmp_path / "a.db")) == store.store_id(a)
    old = store.open_db(tmp_path / "old.db", migrate_upto=6)  # a store from before 0008 gets one on upgrade
    assert old.execute("SELECT COUNT(*) FROM settings WHERE key = 'store_id'").fetchone()[0] == 0
    old.close()
    assert len(store.store_id(store.open_db(tmp_path / "old.db"))) == 32


def test_recreated_local_store_gets_everything_again(tmp_path, capsys):
    team = tmp_path / "team.db"
    assert ship(capsys, "--db", team)[0] == 0
    rc, err = ship(capsys, "--db", team)
    assert rc == 0 and "0 new events" in err
    for p in tmp_path.glob("team.db*"):
        p.unlink()
    rc, err = ship(capsys, "--db", team)
    assert rc == 0 and f"{N} new events" in err and f"stored {N}" in err
    assert store.open_db(team).execute("SELECT COUNT(*) FROM events").fetchone()[0] == N


def test_replaced_collector_store_gets_everything_again(tmp_path, collectors, capsys):
    port = free_port()
    c = collectors(tmp_path / "c1.db", port)
    assert json.loads(http_get(c.url + "/healthz"))["store_id"] == store.store_id(store.open_db(tmp_path / "c1.db"))
    assert ship(capsys, "--remote", c.url)[0] == 0
    rc, err = ship(capsys, "--remote", c.url)
    assert rc == 0 and "0 new events" in err
    c.close()
    c2 = collectors(tmp_path / "c2.db", port)  # same URL, new database
    rc, err = ship(capsys, "--remote", c2.url)
    assert rc == 0 and f"delivered {N + LIMITS}" in err
    assert c2.rows("SELECT COUNT(*) FROM raw_events") == [(N,)]


@pytest.mark.parametrize("found_by", ["ship", "spool_retry"])
def test_a_damaged_spool_batch_sends_its_calls_again(tmp_path, isolated_env, collectors, capsys, found_by):
    """A batch queued while the collector was down is damaged on disk (its tail lost): which calls it
    held cannot be read, and the ledger marked them shipped when they were queued, so every call is
    queued again (the collector counts each once), by the ship that finds the damage or the next one."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rc, err = ship(capsys, "--remote", url)
    assert rc == 1 and "will retry" in err
    [batch] = spool(isolated_env).batches()
    batch.write_bytes(batch.read_bytes()[:-100])
    c = collectors(tmp_path / "c.db", port)
    if found_by == "spool_retry":
        capsys.readouterr()
        assert main(["spool", "retry", "--remote", url]) == 0
        assert "damaged batch(es) set aside" in capsys.readouterr().err
        assert c.rows("SELECT COUNT(*) FROM raw_events") == [(0,)]
    rc, err = ship(capsys, "--remote", url)
    assert rc == 0 and "Traceback" not in err
    assert c.rows("SELECT COUNT(*) FROM raw_events") == [(N,)]
    assert [p.suffix for p in spool(isolated_env).pending_dir.iterdir()] == [".resent"]
    assert "0 new events" in ship(capsys, "--remote", url)[1]  # (sent again once, not at every ship)


def http_get(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()


def test_corrupt_ledger_is_rebuilt_with_a_one_line_notice(tmp_path, isolated_env, capsys):
    ledger = isolated_env / ".local/state/nomira/shipped.sqlite"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"this is not a database\n" * 100)
    rc, err = ship(capsys, "--db", tmp_path / "team.db")
    notices = [line for line in err.splitlines() if "ship ledger" in line]
    assert rc == 0 and len(notices) == 1 and "started a new one" in notices[0] and "Traceback" not in err
    assert f"stored {N}" in err
    assert "0 new events" in ship(capsys, "--db", tmp_path / "team.db")[1]  # the new ledger works


def test_a_ledger_found_damaged_after_it_opened_is_renewed_not_blamed_on_the_store(tmp_path, isolated_env, capsys):
    """A ledger whose header reads but whose pages do not (damage met by a query, not by the open) is
    renewed with one notice, and its calls are sent again (the store dedups); the store is never blamed."""
    team = tmp_path / "team.db"
    assert ship(capsys, "--db", team)[0] == 0
    ledger = isolated_env / ".local/state/nomira/shipped.sqlite"
    import sqlite3
    db = sqlite3.connect(ledger)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("PRAGMA page_size").fetchone()[0]
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'identities'").fetchone()
    db.close()
    data = bytearray(ledger.read_bytes())
    data[(root - 1) * page:root * page] = b"\xa5" * page  # (the stores' identities: read by a ship, not by the open)
    ledger.write_bytes(bytes(data))
    rc, err = ship(capsys, "--db", team)
    assert rc == 0 and "Traceback" not in err and "damaged or not a Nomira store" not in err, err
    assert [line for line in err.splitlines() if "ship ledger" in line and "started a new one" in line]
    assert f"{N} new events" in err and f"already there {N}" in err
    assert store.open_db(team).execute("SELECT COUNT(*) FROM events").fetchone()[0] == N
    assert "0 new events" in ship(capsys, "--db", team)[1]


def test_ledger_path_that_is_a_directory_is_a_one_line_error(tmp_path, isolated_env, capsys):
    (isolated_env / ".local/state/nomira/shipped.sqlite").mkdir(parents=True)
    rc, err = ship(capsys, "--db", tmp_path / "team.db")
    assert rc == 2 and "ship ledger" in err and "Traceback" not in err


# --- 5. a spooled batch belongs to one (URL, credential) ---

def test_batches_only_ever_go_to_their_own_collector_and_key(tmp_path, isolated_env, collectors, capsys):
    db_a, db_b = store.open_db(tmp_path / "a.db"), store.open_db(tmp_path / "b.db")
    t1, t2 = store.create_tenant(db_a, "acme"), store.create_tenant(db_b, "zeta")
    port_a = free_port()
    url_a = f"http://127.0.0.1:{port_a}"
    rc, err = ship(capsys, "--remote", url_a, "--token", t1)  # A is down: queued for (A, T1)
    assert rc == 1 and len(spool(isolated_env).batches()) == 1
    b = collectors(tmp_path / "b.db")
    rc, err = ship(capsys, "--remote", b.url, "--token", "nmr_wrong")  # refused: queued for (B, wrong key)
    assert rc == 1 and "refused the token" in err
    rc, err = ship(capsys, "--remote", b.url, "--token", t2)
    assert rc == 0 and f"delivered {N + LIMITS}" in err
    assert "2 spooled batch(es) wait for other collector(s) or keys" in err and url_a in err
    assert b.rows("SELECT tenant, COUNT(*) FROM events GROUP BY tenant") == [("zeta", N)]  # nothing of A's
    assert b.rows("SELECT COUNT(*) FROM raw_events") == [(N,)]
    assert len(spool(isolated_env).batches()) == 2
    a = collectors(tmp_path / "a.db", port_a)  # A comes back
    rc, err = ship(capsys, "--remote", url_a, "--token", t1)
    assert rc == 0 and "0 new events" in err and f"delivered {N + LIMITS}" in err
    assert a.rows("SELECT tenant, COUNT(*) FROM events GROUP BY tenant") == [("acme", N)]
    assert ship(capsys, "--remote", url_a, "--token", t1)[0] == 0
    assert a.rows("SELECT COUNT(*) FROM raw_events") == [(N,)]  # exactly once
    assert b.rows("SELECT COUNT(*) FROM raw_events") == [(N,)]
    assert len(spool(isolated_env).batches()) == 1  # the wrong-key batch waits for that key, never sent under T2
    batch = json.loads(spool(isolated_env).batches()[0].read_text())
    assert "nmr_wrong" not in json.dumps(batch) and batch["destination"]["url"] == b.url + "/v1/usage/events"


def test_a_collector_under_a_new_url_gets_the_batches_queued_for_its_old_one(tmp_path, isolated_env, collectors,
                                                                             capsys):
    """Calls queued for a collector's URL that then went down, shipped next under another URL of the same
    store (localhost for 127.0.0.1, a new name): the ledger counts them shipped to that store, so the
    batches follow the store to its new URL (the two URLs answered one store id), sent once."""
    import shutil
    hist = tmp_path / "claude"
    shutil.copytree(FIXTURES / "claude", hist)
    port = free_port()
    old_url, new_url = f"http://127.0.0.1:{port}", f"http://localhost:{port}"

    def ship_to(url):
        capsys.readouterr()
        return main(["ship", "--path", str(hist), "--developer", "ana", "--remote", url]), capsys.readouterr().err
    c = collectors(tmp_path / "c.db", port)
    assert ship_to(old_url)[0] == 0
    n = c.rows("SELECT COUNT(*) FROM raw_events")[0][0]
    c.close()
    with open(next(hist.rglob("*.jsonl")), "a") as fh:
        fh.write(json.dumps({"type": "assistant", "timestamp": "2025-11-05T10:00:00.000Z", "sessionId": "s",
                             "requestId": "req_late", "message": {"id": "msg_late", "model": "claude-sonnet-4-5-20250929",
                                                                  "usage": {"input_tokens": 5, "output_tokens": 7}}}) + "\n")
    rc, err = ship_to(old_url)
    assert rc == 1 and "1 new events" in err and len(spool(isolated_env).batches()) == 1
    other = collectors(tmp_path / "other.db")  # another store: its URL never takes them
    assert ship_to(other.url)[0] == 0 and len(spool(isolated_env).batches()) == 1
    c = collectors(tmp_path / "c.db", port)
    rc, err = ship_to(new_url)
    assert rc == 0 and "0 new events" in err and "delivered 1" in err and "wait for other" not in err
    assert c.rows("SELECT COUNT(*) FROM raw_events") == [(n + 1,)] and not spool(isolated_env).batches()


def test_batch_from_an_older_version_is_kept_and_reported(isolated_env, tmp_path, collectors, capsys):
    legacy = spool(isolated_env)
    (legacy.pending_dir / "batch-00000000000000000001-1-00000000.json").write_text('{"events": []}')
    c = collectors(tmp_path / "c.db")
    rc, err = ship(capsys, "--remote", c.url)
    assert rc == 0 and "1 spooled batch(es) wait" in err and "did not record" in err
    assert len(legacy.batches()) == 1


# --- 6. invalid --remote URLs ---

@pytest.mark.parametrize("url", ["not-a-url", "ftp://example.com/x", "http://", "https:///ingest", "http://:8787",
                                 "http://host:port", "http://ana:pw@collector:8787", "http://exa mple.com",
                                 "http://[::1"])
def test_invalid_remote_is_one_line_exit_2(url, capsys):
    rc, err = ship(capsys, "--remote", url)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("nomira: --remote")


def test_invalid_remote_subprocess_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nomira", "ship", "--remote", "not-a-url", "--path", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_server_text_in_errors_cannot_drive_the_terminal(tmp_path):
    s = Spool(tmp_path / "spool")
    s.put([{"x": 1}])
    r = s.flush(lambda events: (302, "redirect to http://x/\x1b[2J\nFAKE: delivered 9"), max_attempts=1)
    assert r.error and "\x1b" not in r.error and "\n" not in r.error and r.pending_batches == 1
    r = s.flush(lambda events: (503, "\x1b]0;title\x07down"), max_attempts=1, sleep=lambda d: None)
    assert "\x1b" not in r.error and "\x07" not in r.error


def test_a_mixed_history_ships_each_call_under_its_own_sources_regime(capsys, tmp_path, isolated_env):
    """Claude Code (a plan) beside OpenCode (an API key): each call is shipped with its own source's
    regime, never the history's "mixed", so the dashboard shows the subscription value and the API cost
    apart, each equal to the local report's; an older client's "mixed" event is filed the same way."""
    import urllib.request
    paths = ["--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "opencode")]

    def local(path):
        capsys.readouterr()
        assert main(["--json", "--path", str(path)]) == 0
        return json.loads(capsys.readouterr().out)["totals"]
    claude, opencode = local(FIXTURES / "claude"), local(FIXTURES / "opencode")
    db_path = tmp_path / "mixed.db"
    assert main(["ship", *paths, "--developer", "ana", "--db", str(db_path)]) == 0
    db = store.open_db(db_path)
    try:
        regimes = dict(db.execute("SELECT source, group_concat(DISTINCT regime) FROM events GROUP BY source"))
        assert regimes == {"claude_code": "subscription", "opencode": "api"}
        bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM raw_events")]
    finally:
        db.close()
    older = store.open_db(tmp_path / "older.db")  # (what a client before this change sent)
    try:
        store.ingest(older, [dict(b, regime="mixed") for b in bodies])
        assert dict(older.execute("SELECT source, group_concat(DISTINCT regime) FROM events GROUP BY source")) == regimes
    finally:
        older.close()
    c = Collector(db_path)
    try:
        with urllib.request.urlopen(c.url + "/api/summary?period=all") as r:
            kpis = json.loads(r.read())["kpis"]
    finally:
        c.close()
    assert kpis["subscription_value_usd"] == pytest.approx(claude["cost_usd"], abs=1e-9)
    assert kpis["api_cost_usd"] == pytest.approx(opencode["cost_usd"], abs=1e-9)
    assert kpis["value_usd"] == pytest.approx(claude["cost_usd"] + opencode["cost_usd"], abs=1e-9)


def test_two_calls_under_one_message_id_are_two_calls_in_the_store(capsys, tmp_path, isolated_env):
    """One message.id under two requestIds, neither a sidechain copy: the report counts two calls (the
    key is (message.id, requestId), as ccusage's), and so does the store they are shipped to, however
    often they are shipped."""
    line = ('{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/home/a/p","sessionId":"%s",'
            '"version":"2.0.31","type":"assistant","uuid":"u%s","timestamp":"2025-11-03T10:0%s:00.000Z",'
            '"requestId":"%s","message":{"model":"claude-sonnet-4-5-20250929","id":"%s","type":"message",'
            '"role":"assistant","content":[],"usage":{"input_tokens":%d,"output_tokens":100,'
            '"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}}\n')
    folder = tmp_path / "projects" / "-home-a-p"
    folder.mkdir(parents=True)
    (folder / "s1.jsonl").write_text(line % ("s1", 1, 1, "req_1", "msg_same", 10) + line % ("s1", 2, 2, "req_x", "msg_x", 30))
    (folder / "s2.jsonl").write_text(line % ("s2", 3, 3, "req_2", "msg_same", 20))
    capsys.readouterr()
    assert main(["--json", "--path", str(tmp_path / "projects")]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["calls"] == 3
    db_path = tmp_path / "s.db"
    for _ in range(2):
        assert main(["ship", "--path", str(tmp_path / "projects"), "--developer", "ana", "--db", str(db_path)]) == 0
    db = store.open_db(db_path)
    try:
        calls, cost, tokens_in = db.execute("SELECT count(*), sum(cost_usd), sum(input) FROM events").fetchone()
    finally:
        db.close()
    assert (calls, tokens_in) == (3, 60) and cost == pytest.approx(totals["cost_usd"], abs=1e-9)


def test_a_project_keeps_the_name_it_was_shipped_under_when_a_namesake_appears(capsys, tmp_path, isolated_env):
    """`shop` shipped, then a second checkout named `shop` appears: the first keeps `shop` (in the store
    and in every local report, so the two agree), the newcomer is told apart; without the pins file
    (a fresh machine) both are told apart again, as the history's own rule says."""
    from nomira import dirs

    def call(i, cwd, folder):
        proj = tmp_path / "projects" / folder
        proj.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"type": "assistant", "sessionId": f"s{i}", "timestamp": f"2026-03-0{i}T10:00:00.000Z",
                           "requestId": f"req_{i}", "cwd": cwd, "isSidechain": False, "version": "2.1.3",
                           "message": {"id": f"msg_{i}", "model": "claude-haiku-4-5-20251001", "role": "assistant",
                                       "type": "message", "content": [], "usage": {
                                           "input_tokens": 10 * i, "output_tokens": 5, "cache_read_input_tokens": 0,
                                           "cache_creation_input_tokens": 0}}}, separators=(",", ":"))
        (proj / f"s{i}.jsonl").write_text(line + "\n")

    def store_projects():
        return sorted(r[0] for r in store.open_db(db).execute("SELECT DISTINCT project FROM canonical_events"))

    def local_projects():
        assert main(["session", "--path", str(tmp_path / "projects"), "--json"]) == 0
        return sorted({s["project"] for s in json.loads(capsys.readouterr().out)["session"]})
    db = tmp_path / "team.db"
    ship = ["ship", "--path", str(tmp_path / "projects"), "--db", str(db), "--developer", "ana", "--json"]
    call(1, "/home/ana/shop", "-home-ana-shop")
    assert main(ship) == 0
    capsys.readouterr()
    call(2, "/home/ana/work/shop", "-home-ana-work-shop")
    call(3, "/home/ana/shop", "-home-ana-shop")  # (a later call of the first checkout)
    assert main(ship) == 0
    capsys.readouterr()
    assert store_projects() == local_projects() == ["shop", "shop (work)"]
    dirs.pinned_labels().unlink()
    assert local_projects() == ["shop (ana)", "shop (work)"]
