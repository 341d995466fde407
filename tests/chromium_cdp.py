"""Headless Chromium driven over the DevTools protocol on a pipe (standard library only).

The command-line `--window-size` cannot go below 500 px, so a phone-width check needs
Emulation.setDeviceMetricsOverride: this opens one page at an exact viewport width, evaluates
JavaScript in it, and captures a PNG of exactly that viewport.
"""
from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time


def _above(fd: int, floor: int = 10) -> int:
    import fcntl
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, floor)
    os.close(fd)
    return high


class Chromium:
    def __init__(self, binary: str, flags: list[str], profile: str, timeout: float = 60.0):
        self.timeout = timeout
        cmd_r, self._cmd_w = os.pipe()  # Chromium reads commands on fd 3
        self._resp_r, resp_w = os.pipe()  # and writes replies and events on fd 4
        cmd_r, resp_w = (_above(fd) for fd in (cmd_r, resp_w))  # so dup2 onto 3 and 4 clobbers neither

        def fds():
            os.dup2(cmd_r, 3)
            os.dup2(resp_w, 4)
        self.proc = subprocess.Popen([binary, *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                                      "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=fds)
        os.close(cmd_r)
        os.close(resp_w)
        self._buf, self._id, self.session = b"", 0, None
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._resp_r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._resp_r, 1 << 20)
            if not chunk:
                raise ConnectionError("chromium closed the pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def open(self, url: str, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=width < 600)
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self, path, full_height: bool = False) -> None:
        params = {"format": "png"}
        if full_height:
            h = self.evaluate("document.documentElement.scrollHeight")
            w = self.evaluate("window.innerWidth")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": w, "height": h, "scale": 1})
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 - already gone is fine
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._resp_r)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
