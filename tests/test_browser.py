"""A real browser loads the dashboard with seeded data; a screenshot is kept under tests/output/."""
import os
import shutil
import subprocess
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from conftest import FIXTURES
from nomira.cli import main
from nomira.commands.serve import ThreadingWSGIServer, make_app

OUTPUT = Path(__file__).parent / "output"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="Debian's chromium is not installed (.ci/run installs it)")


class Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass


def test_dashboard_renders_in_chromium(tmp_path, capsys):
    assert CHROMIUM, "chromium must be installed in CI"
    db = tmp_path / "team.db"
    for dev in ("ana", "bob"):
        assert main(["ship", "--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "codex"),
                     "--path", str(FIXTURES / "claude_tools"), "--db", str(db), "--developer", dev]) == 0
    app = make_app(db, "127.0.0.1")
    httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/?period=all"
    try:
        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / "dashboard.png"
        shot.unlink(missing_ok=True)
        common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "API-equivalent value" in dom and "ana" in dom and "bob" in dom
    assert dom.count("<svg") >= 4 and dom.count('class="bar"') >= 6  # trend, projects, developers, models
    assert shot.exists() and shot.stat().st_size > 20_000
