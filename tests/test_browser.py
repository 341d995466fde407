"""A real browser loads every dashboard page at a phone and a desktop width (issue 13).

Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe; stdlib
only): nothing overflows the viewport, charts have axis labels of a readable size, and a filter
submitted through the form changes the numbers. Screenshots are kept under tests/output/.
"""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from conftest import FIXTURES
from nomira.cli import main
from nomira.collector.local import LocalHistory
from nomira.commands.serve import ThreadingWSGIServer, make_app

OUTPUT = Path(__file__).parent / "output"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTHS = (360, 390, 1280, 1920)  # the issue asks 390 and 1280; 360 and 1920 are the range ends

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="Debian's chromium is not installed (.ci/run installs it)")


class Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass


class Browser:
    """The smallest DevTools-protocol client: one page, commands and events over fds 3/4."""

    def __init__(self, profile: Path):
        # both ends the child keeps are moved above fd 10 first: dup2 onto 3/4 then never clobbers
        # one with the other, nor is a no-op that would leave close-on-exec set
        to_chrome_r, self.to_chrome = (_high(fd) for fd in os.pipe())
        self.from_chrome, from_chrome_w = (_high(fd) for fd in os.pipe())

        def fds():  # Chromium reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                      "--hide-scrollbars", "about:blank"], preexec_fn=fds, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf, self.next_id, self.events = b"", 0, []
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            poll = select.poll()  # not select(): a long suite's descriptors can pass FD_SETSIZE (1024)
            poll.register(self.from_chrome, select.POLLIN)
            if left <= 0 or not poll.poll(left * 1000):
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise EOFError("chromium exited")
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: bool = True, timeout: float = 30) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply.get("method"))

    def wait_load(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "Page.loadEventFired" not in self.events:
            self.events.append(self._read(deadline).get("method"))
        self.events.clear()

    def open(self, url: str, width: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                         "mobile": width < 600})
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_load()

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self, path: Path, width: int) -> None:
        height = min(int(self.js("document.documentElement.scrollHeight")), 6000)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": width < 600})
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"]))

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (OSError, TimeoutError, EOFError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


# What each page must show: the visible charts' axis titles and tick labels, in CSS pixels.
MEASURE = """(() => {
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const charts = [...document.querySelectorAll('svg.trend')].filter(visible).map(s => ({
    titles: [...s.querySelectorAll('.axis-title')].map(t => t.textContent),
    ticks: s.querySelectorAll('.tick').length,
    smallest: Math.min(...[...s.querySelectorAll('text')].map(t => t.getBoundingClientRect().height))}));
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, charts,
          header: !!document.querySelector('header nav'), text: document.querySelector('main').innerText,
          h1: (document.querySelector('h1')||{}).textContent,
          calls: [...document.querySelectorAll('.kpi')].filter(k => k.querySelector('.l').textContent === 'Calls')
                   .map(k => k.querySelector('.v').textContent)[0] || null};
})()"""


def test_every_page_fits_phone_and_desktop_in_chromium(tmp_path):
    assert CHROMIUM, "chromium must be installed in CI"
    db = tmp_path / "team.db"
    history = [FIXTURES / "claude", FIXTURES / "codex", FIXTURES / "claude_tools", FIXTURES / "claude_context"]
    for dev in ("ana", "bob"):
        assert main(["ship", *(a for p in history for a in ("--path", str(p))), "--db", str(db),
                     "--developer", dev]) == 0
    # a collector on the laptop that has the transcripts: project and developer pages carry the optimizer
    app = make_app(db, "127.0.0.1", local=LocalHistory(history, user="ana"))
    httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    project = "ctx"  # the optimizer fixture: file paths in tables, the widest rows
    pages = {"dashboard": "/?period=all", "today": "/?period=today", "developers": "/compare/developers?period=all",
             "developer": "/developer/ana?period=all", "project": f"/project/{quote(project, safe='')}?period=all",
             "filtered": "/?period=all&source=codex", "import": "/import", "404": "/no/such/page",
             "tenant": "/compare/developers?period=all&tenant=acme"}
    OUTPUT.mkdir(exist_ok=True)
    browser = Browser(tmp_path / "profile")
    seen = {}
    try:
        for name, path in pages.items():
            for width in WIDTHS:
                browser.open(base + path, width)
                m = browser.js(MEASURE)
                seen[name, width] = m
                shot = OUTPUT / f"{name}-{width}.png"
                browser.screenshot(shot, width)
                assert shot.stat().st_size > 5_000
                assert m["innerWidth"] == width and m["scrollWidth"] <= m["innerWidth"], (name, width, m)
                assert m["header"] and m["h1"], (name, width)
        # a filter submitted through the form changes the numbers, and lands in the URL
        browser.open(base + "/?period=all", 1280)
        before = browser.js(MEASURE)["calls"]
        browser.events.clear()
        browser.js("document.querySelector('input[name=source]').value='codex';"
                   "document.querySelector('details.filters form').submit()")
        browser.wait_load()
        after = browser.js(MEASURE)["calls"]
        url = browser.js("location.search")
        # the drop zone's script uploads with progress and shows the server's result in place
        upload = tmp_path / "events.json"
        upload.write_text(json.dumps({"events": [_event(i) for i in range(3)]}))
        results = [_import(browser, base, upload) for _ in range(2)]
    finally:
        browser.close()
        httpd.shutdown()
        httpd.server_close()
    assert "source=codex" in url and "period=all" in url
    assert before and after and int(after.replace(",", "")) < int(before.replace(",", "")), (before, after)
    assert after == seen["filtered", 1280]["calls"]
    for name in ("dashboard", "developer", "project", "filtered"):
        for width in WIDTHS:
            charts = seen[name, width]["charts"]
            assert charts, (name, width)  # one visible trend chart per width, the other hidden
            for c in charts:
                assert "USD" in c["titles"] or "tokens" in c["titles"], (name, width, c)
                assert any(t.startswith(("Day", "Hour", "Week", "Month")) for t in c["titles"]), (name, width, c)
                assert c["ticks"] >= 3 and c["smallest"] >= 9, (name, width, c)  # readable, not ~4 px
    assert seen["404", 390]["h1"].startswith("404")
    for width in WIDTHS:  # issue 25: the drill-downs show their parts at every width
        assert "Most expensive file reads" in seen["project", width]["text"]
        assert "/src/big.py" in seen["project", width]["text"]
        assert "Where the money went, by tool" in seen["developer", width]["text"]
        assert "ana and bob spent about the same" in seen["developers", width]["text"]
        assert "Viewing tenant acme switch to all tenants" in seen["tenant", width]["text"]
    for width in WIDTHS:  # fixtures are old: today explains itself instead of drawing nothing
        assert "No usage in today" in seen["today", width]["text"] or seen["today", width]["charts"]
    assert "Drop events.json here" in seen["import", 390]["text"]
    (first, progress, where), (again, _, _) = results
    assert "Imported 3 new events" in first and progress == 1 and where == "/import"  # no page load: the script
    assert "Imported 0 new events; 3 were already there" in again


def _event(i: int) -> dict:
    return {"schema_version": 1, "source": "claude_code", "provider": "anthropic", "model": "claude-opus-4-7",
            "occurred_at": "2025-11-03T14:22:07.913Z", "tokens": {"input": 100, "output": 1000},
            "cost_usd": 0.028, "regime": "subscription", "tags": {"developer": "cy", "project": "shop"},
            "message_id": f"msg_browser_{i}"}


def _import(browser: Browser, base: str, path: Path) -> tuple:
    browser.open(base + "/import", 390)
    root = browser.send("DOM.getDocument")["root"]["nodeId"]
    node = browser.send("DOM.querySelector", {"nodeId": root, "selector": "input[type=file]"})["nodeId"]
    browser.send("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": node})
    browser.js("document.querySelector('#f button').click()")
    deadline = time.monotonic() + 20
    while not browser.js("document.getElementById('out').innerText") and time.monotonic() < deadline:
        time.sleep(0.1)
    return (browser.js("document.getElementById('out').innerText"), browser.js("document.getElementById('prog').value"),
            browser.js("location.pathname"))

