"""Alerts: one per budget, threshold and window, to a webhook (JSON POST, Slack-compatible).

The body is `{"text": "..."}` (what a Slack incoming webhook reads) plus a `nomira` object with
the figures for other receivers. A POST is retried (3 attempts, 0.5 s then 1 s apart) on a
network error, 429 or 5xx; an alert is marked sent in `$XDG_STATE_HOME/nomira/alerts.json`
(written atomically) only once a POST succeeded, so a failed one is tried again next check and
a delivered one is never sent twice for the same threshold and window.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping

from nomira.alerts.evaluate import Status, text

STATE = "alerts.json"
ATTEMPTS = 3
KEEP = timedelta(days=62)  # a month window and its neighbour; older entries are dropped


def state_path(env: Mapping[str, str] = os.environ) -> Path:
    from nomira.dirs import state_home
    return state_home(env) / STATE


def load_state(path: Path) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text())
        return {k: v for k, v in doc.get("sent", {}).items() if isinstance(v, str)}
    except (OSError, ValueError, AttributeError):
        return {}


def save_state(path: Path, sent: dict[str, str], now: datetime) -> None:
    cutoff = (now - KEEP).isoformat()
    kept = {k: v for k, v in sent.items() if v >= cutoff}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"sent": kept}, indent=1, sort_keys=True))
    os.replace(tmp, path)


def key(s: Status, threshold: int) -> str:
    return f"{s.budget.name}|{s.window_key}|{threshold}"


def due(statuses: list[Status], sent: dict[str, str]) -> list[tuple[Status, int, list[int]]]:
    """(status, highest newly crossed threshold, every newly crossed one): one alert per budget and
    check, however many thresholds it passed since the last one."""
    out = []
    for s in statuses:
        new = [t for t in s.crossed if key(s, t) not in sent]
        if new:
            out.append((s, new[-1], new))
    return out


def post(url: str, body: dict, timeout: float = 5.0, sleep=time.sleep) -> str | None:
    """None when delivered, else the last error (after the bounded retries)."""
    data = json.dumps(body).encode()
    error = None
    for attempt in range(ATTEMPTS):
        if attempt:
            sleep(0.5 * attempt)
        req = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "nomira"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read(1 << 16)
            return None
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                return error  # the receiver refused this body: sending it again will not help
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = str(getattr(exc, "reason", exc))
    return error


def fire(statuses: list[Status], default_hook: str | None, env: Mapping[str, str] = os.environ,
         now: datetime | None = None, sleep=time.sleep) -> list[dict]:
    """Send what is due; returns one record per alert (sent, or its error, or no webhook)."""
    now = now or datetime.now(timezone.utc)
    path = state_path(env)
    sent = load_state(path)
    out = []
    for s, threshold, new in due(statuses, sent):
        hook = s.budget.webhook or default_hook
        line = text(s)
        record = {"budget": s.budget.name, "threshold": threshold, "window_key": s.window_key, "text": line,
                  "webhook": bool(hook), "error": None}
        if hook:
            record["error"] = post(hook, {"text": f"Nomira: {line}", "nomira": {**s.as_dict(), "threshold": threshold}},
                                   sleep=sleep)
        if record["error"] is None:  # delivered, or nowhere to deliver (the terminal showed it)
            for t in new:
                sent[key(s, t)] = now.isoformat()
        out.append(record)
    if out:
        save_state(path, sent, now)
    return out
