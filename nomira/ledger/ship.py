"""Ship local usage as wire events: into a local store, or to a remote collector via the spool.

A ledger under `$XDG_STATE_HOME/nomira/` remembers, per destination STORE (its random
identity, not its path or URL), each call's dedup key and token total, so a second
run sends only new calls (or a call that grew, e.g. its final streaming snapshot), and
a store that was deleted and recreated, or a collector whose database was replaced,
gets everything again. Reading the logs is itself incremental (the scan cache), so a
run with nothing new reads no log bytes.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

from nomira.ledger.wire import SchemaError, assert_no_content, billable_tokens, dedup_key, is_limit_snapshot, limit_key, loads

INGEST_PATHS = ("/ingest", "/v1/usage/events")


class Ledger:
    """What was sent where. Keys: "store:<id>" once a destination's identity is known; before
    that the locator ("db:<path>", "remote:<url>#<credential sha256>"), adopted by the first
    identity seen there. A remote key includes the credential's hash: events queued under a
    key the collector refused are sent again under the right one (the store dedups)."""

    def __init__(self, path: Path, warn: Callable[[str], None] = lambda line: None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.warn = path, warn
        try:
            self.db = self._open(path)
        except sqlite3.DatabaseError as exc:  # a corrupt ledger only costs re-sending (the store dedups)
            self._renew(exc)

    def _renew(self, exc: Exception) -> None:
        """A new, empty ledger in place of a damaged one, said once: what it held only saves re-sending."""
        db = getattr(self, "db", None)
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass
        path = self.path
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)
        self.warn(f"ship ledger {path} was unreadable ({exc}); started a new one "
                  "(calls already sent may be sent again; the collector deduplicates them)")
        self.db = self._open(path)

    def _safe(self, work: Callable[[], object]):
        """`work()`; damage found in the ledger meanwhile (a page that no longer reads, a key that is no
        UTF-8) renews it and does the work again, on the empty ledger: never an error blamed on the store."""
        try:
            return work()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "decode" not in str(exc):
                raise  # (locked, disk full: not damage)
            self._renew(exc)
            return work()

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS shipped (destination TEXT, dedup_key TEXT, total INTEGER, "
                       "PRIMARY KEY (destination, dedup_key))")
            db.execute("CREATE TABLE IF NOT EXISTS identities (locator TEXT PRIMARY KEY, store_id TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS deliveries (destination TEXT PRIMARY KEY, label TEXT NOT NULL, "
                       "last_success TEXT NOT NULL, events INTEGER NOT NULL)")
            db.execute("SELECT COUNT(*) FROM shipped").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def destination(self, locator: str, store_id: str | None) -> str:
        """The ledger key for `locator` whose store answered `store_id` (None: could not ask)."""
        return self._safe(lambda: self._destination(locator, store_id))

    def _destination(self, locator: str, store_id: str | None) -> str:
        row = self.db.execute("SELECT store_id FROM identities WHERE locator = ?", (locator,)).fetchone()
        known = row[0] if row else None
        suffix = locator[locator.index("#"):] if "#" in locator else ""
        if store_id is None:
            return f"store:{known}{suffix}" if known else locator
        key = f"store:{store_id}{suffix}"
        if known != store_id:
            self.db.execute("BEGIN IMMEDIATE")
            if known is None:  # first identity seen here: what was sent to this locator went to this store
                self.db.execute("INSERT INTO shipped SELECT ?, dedup_key, total FROM shipped WHERE destination = ? "
                                "ON CONFLICT (destination, dedup_key) DO UPDATE SET total = MAX(total, "
                                "excluded.total)", (key, locator))
                self.db.execute("DELETE FROM shipped WHERE destination = ?", (locator,))
            self.db.execute("INSERT INTO identities VALUES (?, ?) ON CONFLICT (locator) DO UPDATE SET "
                            "store_id = excluded.store_id", (locator, store_id))
            self.db.execute("COMMIT")
        return key

    def new_events(self, destination: str, events: Iterable[dict]) -> list[dict]:
        events = list(events)
        return self._safe(lambda: self._new_events(destination, events))

    def _new_events(self, destination: str, events: list[dict]) -> list[dict]:
        keys = [_key(e) for e in events]
        if len(keys) > 5000:  # a whole history: one scan of the destination's rows
            known = dict(self.db.execute("SELECT dedup_key, total FROM shipped WHERE destination = ?",
                                         (destination,)))
        else:  # a hook's session: look up only these keys, however much was shipped before
            known = {}
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                known.update(self.db.execute(f"SELECT dedup_key, total FROM shipped WHERE destination = ? AND "
                                             f"dedup_key IN ({', '.join('?' * len(chunk))})", (destination, *chunk)))
        return [e for e, k in zip(events, keys) if known.get(k, -1) < _total(e)]

    def mark(self, destination: str, events: Iterable[dict]) -> None:
        rows = [(destination, _key(e), _total(e)) for e in events]

        def write():
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO shipped VALUES (?, ?, ?) ON CONFLICT (destination, dedup_key) "
                                "DO UPDATE SET total = excluded.total", rows)
            self.db.execute("COMMIT")
        self._safe(write)

    def forget(self, destination: str) -> None:
        """Nothing is known to have reached `destination`: a damaged spool batch held calls this ledger
        marked as shipped when they were queued, and which they were cannot be read; every call is
        then sent again (the collector deduplicates)."""
        self._safe(lambda: self.db.execute("DELETE FROM shipped WHERE destination = ?", (destination,)))

    def delivered(self, destination: str, label: str, events: int, at: str | None = None) -> None:
        """A ship to `destination` succeeded (everything queued for it accepted): when, and how many
        records that run delivered. `label` is what `nomira doctor` shows (the URL or store path)."""
        from datetime import datetime, timezone
        at = at or datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._safe(lambda: self.db.execute(
            "INSERT INTO deliveries VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE SET "
            "label = excluded.label, last_success = excluded.last_success, events = excluded.events",
            (destination, label, at, events)))


def last_deliveries(db) -> list[dict]:
    """Each destination's last successful ship, newest first ([] for a ledger from before they were kept)."""
    try:
        rows = db.execute("SELECT label, last_success, events, destination FROM deliveries "
                          "ORDER BY last_success DESC").fetchall()
    except sqlite3.OperationalError:  # no such table: written by an older nomira
        return []
    out: dict[str, dict] = {}  # one per URL or path: a replaced collector store left an older key behind
    for label, at, n, key in rows:
        out.setdefault(label, {"destination": label, "last_success": at, "events": n, "ledger_key": key})
    return list(out.values())


def _key(record: dict) -> str:
    """The ledger key of a usage event or a limit snapshot (`limit:` keeps the two kinds apart)."""
    return "limit:" + limit_key(record) if is_limit_snapshot(record) else dedup_key(record)


def _total(record: dict) -> int:
    """How complete a record is: a call's billed tokens; a limit snapshot never grows (0)."""
    return 0 if is_limit_snapshot(record) else billable_tokens(record["tokens"])


def limit_records(snapshots: Iterable, tags: dict) -> tuple[list[dict], dict[str, int]]:
    """Limit snapshots as wire records that pass the collector's allowlist, and what did not, by reason."""
    from nomira.ledger.wire import assert_limit_snapshot, limit_to_wire
    return _passing([limit_to_wire(s, tags) for s in snapshots], assert_limit_snapshot)


def ingest_url(url: str) -> str:
    """The collector ingest URL for `--remote` (path added when missing); ValueError says what is wrong."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"--remote {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--remote needs an http:// or https:// URL with a host, e.g. http://collector:8787 "
                         f"(got {url!r})")
    if parts.username is not None or parts.password is not None:
        raise ValueError("--remote must not carry credentials; pass the API key with --token or $NOMIRA_TOKEN")
    if parts.fragment or any(c.isspace() for c in url):
        raise ValueError(f"--remote {url!r} is not a valid collector URL")
    return url if url.rstrip("/").endswith(INGEST_PATHS) else url.rstrip("/") + INGEST_PATHS[1]


def health_url(url: str) -> str:
    base = ingest_url(url)
    for suffix in INGEST_PATHS:
        if base.rstrip("/").endswith(suffix):
            base = base.rstrip("/")[:-len(suffix)]
    return base + "/healthz"


def credential_id(token: str | None) -> str | None:
    """What a spooled batch records of its credential: a SHA-256, never the key itself."""
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def _notes(body: str) -> list[str]:
    """The collector's notes in an ingest answer, as safe one-line terminal text (at most 5)."""
    try:
        doc = loads(body)
    except ValueError:
        return []
    notes = doc.get("notes") if isinstance(doc, dict) else None
    if not isinstance(notes, list):
        return []
    return ["".join(c if c.isprintable() else " " for c in n[:300]) for n in notes[:5] if isinstance(n, str)]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the Authorization header would go to whatever host it names."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect)


def _send(req: urllib.request.Request, timeout: float) -> tuple[int, str]:
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read(1 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            return exc.code, f"redirect to {exc.headers.get('Location') or '(no Location)'}"
        return exc.code, exc.read(1 << 20).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        return 0, str(getattr(exc, "reason", exc)) or type(exc).__name__


def _store_id(body: str) -> str | None:
    try:
        doc = loads(body)
    except ValueError:
        return None
    sid = doc.get("store_id") if isinstance(doc, dict) else None
    return sid if isinstance(sid, str) and 0 < len(sid) <= 128 else None


class HttpPost:
    """A `spool.Post` for one collector URL and key; remembers the store id the collector reports."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0):
        self.url, self.token, self.timeout = ingest_url(url), token, timeout
        self.destination = {"url": self.url, "credential_sha256": credential_id(token)}
        self.store_id: str | None = None
        self.notes: list[str] = []  # what the collector said about the batches (a day zone pinned elsewhere)

    def __call__(self, events: list[dict], **batch) -> tuple[int, str]:
        """POST one batch; `batch` holds its batch-level fields (day_zone, repin_day_zone)."""
        body = json.dumps({"events": events, **batch}, separators=(",", ":"), allow_nan=False).encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        status, text = _send(req, self.timeout)
        if 200 <= status < 300:
            self.store_id = _store_id(text) or self.store_id
            self.notes += [n for n in _notes(text) if n not in self.notes]
        return status, text

    def identity(self) -> str | None:
        """The collector's store id from /healthz (no credential sent); None when it cannot say."""
        status, text = _send(urllib.request.Request(health_url(self.url), method="GET"), min(self.timeout, 10.0))
        return _store_id(text) if status == 200 else None


def http_post(url: str, token: str | None, timeout: float = 30.0) -> HttpPost:
    return HttpPost(url, token, timeout)


def validated(events: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """The events that pass the allowlist the collector enforces, and how many did not, by reason.

    Every event leaves this machine only after this check. One odd call (a clock-skewed
    timestamp, a model name that looks like a file) is held back and counted, never shipped and
    never a reason to hold back every other call.
    """
    return _passing(events, assert_no_content)


def _passing(records: list[dict], check) -> tuple[list[dict], dict[str, int]]:
    """The records `check` lets through, and how many it refused, by reason."""
    ok: list[dict] = []
    refused: dict[str, int] = {}
    for r in records:
        try:
            check(r)
        except SchemaError as exc:
            refused[str(exc)] = refused.get(str(exc), 0) + 1
        else:
            ok.append(r)
    return ok, refused
