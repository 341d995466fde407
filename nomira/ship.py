"""Ship local usage as wire events: into a local store, or to a remote collector via the spool.

A ledger under `$XDG_STATE_HOME/nomira/` remembers, per destination, each call's
dedup key and token total, so a second run sends only new calls (or a call that
grew, e.g. its final streaming snapshot). Reading the logs is itself incremental
(the scan cache), so a run with nothing new reads no log bytes.
"""
from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

from nomira.wire import assert_no_content, billable_tokens, dedup_key


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS shipped (destination TEXT, dedup_key TEXT, total INTEGER, "
                        "PRIMARY KEY (destination, dedup_key))")

    def new_events(self, destination: str, events: Iterable[dict]) -> list[dict]:
        known = dict(self.db.execute("SELECT dedup_key, total FROM shipped WHERE destination = ?", (destination,)))
        out = []
        for e in events:
            if known.get(dedup_key(e), -1) < billable_tokens(e["tokens"]):
                out.append(e)
        return out

    def mark(self, destination: str, events: Iterable[dict]) -> None:
        rows = [(destination, dedup_key(e), billable_tokens(e["tokens"])) for e in events]
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO shipped VALUES (?, ?, ?) ON CONFLICT (destination, dedup_key) "
                            "DO UPDATE SET total = excluded.total", rows)
        self.db.execute("COMMIT")


def http_post(url: str, token: str | None, timeout: float = 30.0):
    """A `spool.Post` for a collector at `url` (the ingest path is added when missing)."""
    if not url.rstrip("/").endswith(("/ingest", "/v1/usage/events")):
        url = url.rstrip("/") + "/v1/usage/events"

    def post(events: list[dict]) -> tuple[int, str]:
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(getattr(exc, "reason", exc))
    return post


def validated(events: list[dict]) -> list[dict]:
    """Every event leaves this machine only after passing the same allowlist the collector enforces."""
    for e in events:
        assert_no_content(e)
    return events
