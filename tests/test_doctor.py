"""`nomira doctor`: exit 0 on a healthy setup, 1 when something needs action, locations never content."""
import json
import shutil
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nomira.cli import main
from nomira.commands import doctor

FIXTURES = Path(__file__).parent / "fixtures"


def healthy(home: Path) -> None:
    """Claude logs in place and a fresh price feed (so the check does not depend on the bundled table's age)."""
    shutil.copytree(FIXTURES / "claude" / "projects", home / ".claude" / "projects")
    feeds = home / ".cache" / "nomira" / "prices"
    feeds.mkdir(parents=True)
    (feeds / "litellm.json").write_text(json.dumps({"fetched_at": datetime.now(timezone.utc).isoformat(),
                                                    "source": "test", "models": {}}))


def run(capsys, *args):
    capsys.readouterr()
    rc = main(["doctor", "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def by_name(doc):
    return {c["name"]: c for c in doc["checks"]}


def test_healthy_setup_exits_zero(isolated_env, capsys):
    healthy(isolated_env)
    rc, doc = run(capsys)
    checks = by_name(doc)
    assert rc == 0 and doc["needs_action"] is False
    # the fixtures hold one malformed line on purpose: a warning, counted, not a failure
    assert checks["source claude"]["status"] == "warn" and checks["source claude"]["data"]["files"] == 4
    assert checks["source codex"]["detail"].startswith("not found")  # not installed: worth knowing, no action
    assert checks["spool"]["status"] == "ok" and checks["prices"]["status"] == "ok"
    assert checks["hook claude"]["data"]["state"] == "not installed"
    assert "last ship" in checks


def test_missing_sources_need_action(isolated_env, capsys):
    rc, doc = run(capsys)
    assert rc == 1 and by_name(doc)["sources"]["status"] == "fail"


def test_unwritable_spool_needs_action(isolated_env, capsys):
    healthy(isolated_env)
    state = isolated_env / ".local" / "state"
    state.mkdir(parents=True)
    (state / "nomira").write_text("a file where the state directory should be")
    rc, doc = run(capsys)
    assert rc == 1 and by_name(doc)["spool"]["status"] == "fail"


def test_stale_prices_need_action(isolated_env, capsys, monkeypatch):
    shutil.copytree(FIXTURES / "claude" / "projects", isolated_env / ".claude" / "projects")  # no fresh feed
    from nomira.pricing.table import load_bundled
    generated = datetime.fromisoformat(load_bundled().generated).replace(tzinfo=timezone.utc)
    check = doctor.check_prices({"HOME": str(isolated_env)}, generated + timedelta(days=61))
    assert check.status == "fail" and "older than 60 days" in check.detail and "--update" in check.detail
    assert doctor.check_prices({"HOME": str(isolated_env)}, generated + timedelta(days=59)).status == "ok"
    monkeypatch.setattr(doctor, "PRICES_STALE", timedelta(days=-1))  # the command's exit status follows
    rc, doc = run(capsys)
    assert rc == 1 and by_name(doc)["prices"]["status"] == "fail"


def test_malformed_lines_are_located_never_shown(isolated_env, capsys):
    healthy(isolated_env)
    _, before = run(capsys)
    before = by_name(before)["source claude"]["data"]
    f = next((isolated_env / ".claude" / "projects").rglob("7c1d2e3f-*.jsonl"))
    n = sum(1 for _ in open(f))
    with open(f, "a") as fh:
        fh.write('{"type":"assistant","message":{"usage":{"input_tokens": SECRET-PROMPT-TEXT\n')
    rc, doc = run(capsys)
    claude = by_name(doc)["source claude"]
    assert rc == 0 and claude["status"] == "warn"
    assert claude["data"]["malformed_lines"] == before["malformed_lines"] + 1
    assert claude["data"]["malformed_at"] == sorted([*before["malformed_at"], f"{f}:{n + 1}"])
    assert "SECRET" not in json.dumps(doc)


def test_hooks_detected(isolated_env, capsys):
    healthy(isolated_env)
    (isolated_env / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"Stop": [
        {"hooks": [{"type": "command", "command": "nomira hook claude"}]}]}}))
    (isolated_env / ".codex").mkdir()
    (isolated_env / ".codex" / "config.toml").write_text('notify = ["nomira", "hook", "codex"]\n')
    _, doc = run(capsys)
    assert by_name(doc)["hook claude"]["data"]["state"] == "installed"
    assert by_name(doc)["hook codex"]["data"]["state"] == "installed"


@pytest.fixture
def collector():
    """A fake collector /healthz whose Date header is `skew` away from this machine's clock."""
    servers = []

    def start(skew: timedelta):
        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b'{"ok": true}'
                self.send_response(200 if self.path == "/healthz" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def date_time_string(self, timestamp=None):
                return format_datetime(datetime.now(timezone.utc) + skew, usegmt=True)

            def log_message(self, *a):
                pass
        srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_remote_reachable_and_clock_skew(isolated_env, capsys, collector):
    healthy(isolated_env)
    rc, doc = run(capsys, "--remote", collector(timedelta(0)))
    c = by_name(doc)["collector"]
    assert rc == 0 and c["status"] == "ok" and abs(c["data"]["clock_skew_seconds"]) < 5
    rc, doc = run(capsys, "--remote", collector(timedelta(minutes=10)))
    c = by_name(doc)["collector"]
    assert rc == 1 and c["status"] == "fail" and 590 < c["data"]["clock_skew_seconds"] < 610
    rc, doc = run(capsys, "--remote", "http://127.0.0.1:9")
    assert rc == 1 and "unreachable" in by_name(doc)["collector"]["detail"]


def test_text_output(isolated_env, capsys):
    healthy(isolated_env)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "source claude" in out and "nothing needs action" in out
    assert "not found: codex, opencode" in out  # absent agents on one line


def test_spool_depth_oldest_and_dead_letters(isolated_env, capsys):
    import os
    import time

    from nomira.ledger.spool import Spool
    healthy(isolated_env)
    spool = Spool(isolated_env / ".local" / "state" / "nomira" / "spool")
    spool.put([{"n": 1}], batch_size=1)
    spool.put([{"n": 2}], batch_size=1)
    old = spool.batches()[0]
    os.utime(old, (time.time() - 2 * 3600,) * 2)  # waiting for two hours
    spool.dead_letter.write_text('{"status": 400, "response": "x", "event": {}}\n' * 3)
    rc, doc = run(capsys)
    c = by_name(doc)["spool"]
    assert rc == 0 and c["status"] == "warn"  # worth a look, not a failure
    assert c["data"]["batches"] == 2 and c["data"]["dead_letters"] == 3
    assert "oldest 2 h old" in c["detail"] and "3 dead-lettered" in c["detail"]
