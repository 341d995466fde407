"""SQLite store: usage events only, never a content column.

- `raw_events`: every wire event exactly as received (usage-only, already validated),
  immutable, so canonical rows can be rebuilt (`replay`).
- `events`: one canonical row per API call (dedup key). A later copy of the same call
  with more tokens (a final streaming snapshot) replaces it; any other copy is marked
  superseded in `raw_events`, never lost.
- `rollups`: per UTC day and tenant, at several grains (by developer, project, model,
  regime and the pairs drill-downs need), kept in step with `events` in the same
  transaction, so dashboards never scan millions of rows.
- `tenants`, `api_keys` (SHA-256 hashes only), `bills`.

All SQL lives here, written once in SQLite's dialect; nomira/engine.py holds the few
rewrites and operations PostgreSQL needs (a store is a file path or a postgresql:// URL).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from nomira import engine
from nomira.engine import dialect_of
from nomira.events import parse_timestamp
from nomira.wire import ALLOWANCE_FIELDS, TAG_FIELDS, TOKEN_FIELDS, dedup_key

ROLLUP_KEYS = ("tenant", "day", "developer", "project", "model", "source", "regime")  # daily_rollups (0002)
# Multi-grain rollups (0005): one set of rows per question a dashboard asks, so no page
# query reads more than (days x one or two dimensions) rows, whatever the event count.
GRAINS = {
    "day": (), "developer": ("developer",), "project": ("project",), "model": ("model",), "regime": ("regime",),
    "developer_project": ("developer", "project"), "developer_model": ("developer", "model"),
    "project_model": ("project", "model"), "developer_regime": ("developer", "regime"),
}
GRAIN_DIMS = ("developer", "project", "model", "regime")
ROLLUP_COLS = ("calls", *TOKEN_FIELDS, "cost_usd", "unpriced_calls")
EVENT_COLUMNS = ("dedup_key", "tenant", "developer", "project", "feature", "workflow", "tier", "customer", "env",
                 "source", "provider", "model", "occurred_at", "day", "session_id", "turn_id", "message_id",
                 "request_id", "tool_call_id", *TOKEN_FIELDS, "cost_usd", "cost_source", "regime", "is_sidechain",
                 "allowance", "raw_id", "received_at")


# --- migrations: an ordered list of named functions; never edit an applied one ---

def _m0001_initial(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE raw_events (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL,
        dedup_key TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'canonical')""")
    db.execute("CREATE INDEX raw_events_key ON raw_events (dedup_key)")
    db.execute("""CREATE TABLE events (dedup_key TEXT PRIMARY KEY, developer TEXT NOT NULL DEFAULT '',
        project TEXT NOT NULL DEFAULT '', source TEXT, provider TEXT, model TEXT, occurred_at TEXT, day TEXT,
        session_id TEXT, message_id TEXT, input INTEGER, output INTEGER, cache_read INTEGER,
        cache_write_5m INTEGER, cache_write_1h INTEGER, reasoning INTEGER, cost_usd REAL, cost_source TEXT,
        regime TEXT, raw_id INTEGER, received_at TEXT)""")


def _m0002_tags_ids_rollups(db: sqlite3.Connection) -> None:
    for col in ("tenant", "feature", "workflow", "tier", "customer", "env"):
        db.execute(f"ALTER TABLE events ADD COLUMN {col} TEXT NOT NULL DEFAULT ''")
    for col in ("turn_id", "request_id", "tool_call_id", "allowance"):
        db.execute(f"ALTER TABLE events ADD COLUMN {col} TEXT")
    db.execute("ALTER TABLE events ADD COLUMN is_sidechain INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX events_tenant_day ON events (tenant, day)")
    db.execute(f"""CREATE TABLE daily_rollups ({", ".join(f"{k} TEXT NOT NULL" for k in ROLLUP_KEYS)},
        calls INTEGER NOT NULL, {", ".join(f"{t} INTEGER NOT NULL" for t in TOKEN_FIELDS)},
        cost_usd REAL NOT NULL, unpriced_calls INTEGER NOT NULL, PRIMARY KEY ({", ".join(ROLLUP_KEYS)}))""")
    rebuild_rollups(db)


def _m0003_tenants_keys_bills(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_at TEXT NOT NULL)")
    db.execute("""CREATE TABLE api_keys (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL REFERENCES tenants(id),
        key_hash TEXT UNIQUE NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)""")
    db.execute("""CREATE TABLE bills (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL DEFAULT '', provider TEXT NOT NULL,
        period_start TEXT NOT NULL, period_end TEXT NOT NULL, amount_usd REAL NOT NULL, source TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL)""")


def _m0004_settings(db: sqlite3.Connection) -> None:
    # shared by every collector process (e.g. the session-signing secret): no per-process state
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _m0005_grain_rollups(db: sqlite3.Connection) -> None:
    db.execute(f"""CREATE TABLE rollups (grain TEXT NOT NULL, tenant TEXT NOT NULL, day TEXT NOT NULL,
        {", ".join(f"{d} TEXT NOT NULL" for d in GRAIN_DIMS)}, calls INTEGER NOT NULL,
        {", ".join(f"{t} INTEGER NOT NULL" for t in TOKEN_FIELDS)}, cost_usd REAL NOT NULL,
        unpriced_calls INTEGER NOT NULL, PRIMARY KEY (grain, tenant, day, {", ".join(GRAIN_DIMS)}))
        WITHOUT ROWID""")
    db.execute("DROP TABLE daily_rollups")
    rebuild_rollups(db)


def _m0006_drop_unused_indexes(db: sqlite3.Connection) -> None:
    # No query reads raw events by key, and dashboards read `rollups`, not `events` by day:
    # both indexes only cost random B-tree inserts on every ingested event.
    db.execute("DROP INDEX IF EXISTS raw_events_key")
    db.execute("DROP INDEX IF EXISTS events_tenant_day")


def _m0007_dashboard_sessions(db: sqlite3.Connection) -> None:
    # A cookie names a server-side row (stored as the SHA-256 of its id) that logout and
    # key revocation can end. A fresh secret replaces the one a 0644 file may have leaked.
    db.execute("""CREATE TABLE dashboard_sessions (id TEXT PRIMARY KEY, role TEXT NOT NULL, tenant TEXT,
        credential TEXT NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER)""")
    db.execute("DELETE FROM settings WHERE key = 'session_secret'")
    db.execute("INSERT INTO settings (key, value) VALUES ('dashboard_secret', ?)", (secrets.token_hex(32),))


def _m0008_store_identity(db: sqlite3.Connection) -> None:
    # A random id born with the store: shippers key what they sent by it, so a deleted and
    # recreated store (same path or URL) gets everything again.
    db.execute("INSERT INTO settings (key, value) VALUES ('store_id', ?) ON CONFLICT (key) DO NOTHING",
               (secrets.token_hex(16),))


def _m0009_reconcile(db: sqlite3.Connection) -> None:
    # Daily bill lines (from console exports or the providers' cost APIs) and the adjustments
    # reconciliation records against them. Kept apart from events: `replay` never touches them.
    db.execute("""CREATE TABLE bill_lines (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL, account TEXT NOT NULL DEFAULT '', day TEXT NOT NULL, model TEXT NOT NULL DEFAULT '',
        cost_usd REAL, tokens INTEGER, requests INTEGER, source TEXT NOT NULL, import_id TEXT NOT NULL,
        row_ref TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL,
        UNIQUE (tenant, provider, account, day, model))""")
    db.execute("""CREATE TABLE bill_imports (id TEXT PRIMARY KEY, tenant TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL, source TEXT NOT NULL, summary TEXT NOT NULL, created_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE reconcile_adjustments (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL DEFAULT '', cost_usd REAL NOT NULL,
        tokens INTEGER, requests INTEGER, reason TEXT NOT NULL, bill_line_ids TEXT NOT NULL,
        bill_ref TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        UNIQUE (tenant, provider, day, model))""")
    # the last `nomira reconcile` run per scope ('*' = every tenant): /reconcile reads it instead of
    # grouping millions of events on every view
    db.execute("""CREATE TABLE reconcile_runs (scope TEXT PRIMARY KEY, since TEXT, until TEXT,
        raw_watermark INTEGER NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL)""")


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("0001_initial", _m0001_initial),
    ("0002_tags_ids_rollups", _m0002_tags_ids_rollups),
    ("0003_tenants_keys_bills", _m0003_tenants_keys_bills),
    ("0004_settings", _m0004_settings),
    ("0005_grain_rollups", _m0005_grain_rollups),
    ("0006_drop_unused_indexes", _m0006_drop_unused_indexes),
    ("0007_dashboard_sessions", _m0007_dashboard_sessions),
    ("0008_store_identity", _m0008_store_identity),
    ("0009_reconcile", _m0009_reconcile),
]


def migrate(db: sqlite3.Connection, upto: int | None = None) -> list[str]:
    """Apply pending migrations in order, each in one transaction with its record.

    Several processes may start at once: each migration is re-checked under the lock."""
    dialect = dialect_of(db)
    if "_nomira_migrations" not in dialect.tables(db):
        db.execute("BEGIN IMMEDIATE")
        try:
            dialect.exclusive(db)
            db.execute("CREATE TABLE IF NOT EXISTS _nomira_migrations (name TEXT PRIMARY KEY, "
                       "applied_at TEXT NOT NULL)")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    done = {r[0] for r in db.execute("SELECT name FROM _nomira_migrations")}
    applied = []
    for name, fn in MIGRATIONS[:upto]:
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            dialect.exclusive(db)
            if db.execute("SELECT 1 FROM _nomira_migrations WHERE name = ?", (name,)).fetchone():
                db.execute("COMMIT")  # another process applied it meanwhile
                continue
            dialect.no_timeout(db)
            fn(db)
            db.execute("INSERT INTO _nomira_migrations VALUES (?, ?)", (name, _now()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def open_db(path: str | Path, migrate_upto: int | None = None) -> sqlite3.Connection:
    """The one way into the database: pragmas, migrations, ready connection.

    `path` is an SQLite file, or a postgresql:// URL (needs `nomira[postgres]`)."""
    if engine.is_postgres(path):
        db = engine.connect_postgres(path)
        migrate(db, migrate_upto)
        return db
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:  # created owner-only: it holds the dashboard secret (SQLite gives -wal/-shm the same mode)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30, check_same_thread=False,
                         factory=engine.SqliteConnection)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA cache_size=-262144")  # 256 MiB cap: the dedup-key index stays in memory at millions of events
    db.execute("PRAGMA mmap_size=1073741824")
    migrate(db, migrate_upto)
    return db


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


# --- ingest ---

COL = {c: i for i, c in enumerate(EVENT_COLUMNS)}
_TOKENS_AT = [COL[t] for t in TOKEN_FIELDS]
_BILLED_AT = [COL[t] for t in TOKEN_FIELDS if t != "reasoning"]
_FINE_AT = [COL[c] for c in ("tenant", "day", "developer", "project", "model", "regime")]
_COST_AT, _RAW_AT, _KEY_AT = COL["cost_usd"], COL["raw_id"], COL["dedup_key"]
_TAG_COLUMNS = EVENT_COLUMNS[1:1 + len(TAG_FIELDS)]
assert set(_TAG_COLUMNS) == set(TAG_FIELDS)


def _row(event: dict, key: str, raw_id: int, received_at: str) -> tuple:
    """An `events` row, as a tuple in EVENT_COLUMNS order (the shape SELECT returns)."""
    tags = event.get("tags") or {}
    at = parse_timestamp(event["occurred_at"])
    tokens = event["tokens"]
    allowance = event.get("allowance")
    g = event.get
    return (key, *(tags.get(t) or "" for t in _TAG_COLUMNS), event["source"], event["provider"], event["model"],
            at.isoformat(), at.date().isoformat(), g("session_id"), g("turn_id"), g("message_id"), g("request_id"),
            g("tool_call_id"), *(int(tokens.get(t, 0)) for t in TOKEN_FIELDS), g("cost_usd"), g("cost_source"),
            g("regime") or "api", int(bool(g("is_sidechain"))),
            json.dumps({k: allowance.get(k) for k in ALLOWANCE_FIELDS}) if allowance else None, raw_id, received_at)


def _total(row: tuple) -> int:
    return sum(row[i] for i in _BILLED_AT)


class Rollups:
    """Per-batch rollup deltas: summed per finest key first, expanded to every grain on write."""

    FINE = ("tenant", "day", *GRAIN_DIMS)

    def __init__(self):
        self.delta: dict[tuple, list] = {}

    def add(self, row: tuple, sign: int) -> None:
        key = tuple(row[i] for i in _FINE_AT)
        cost = row[_COST_AT]
        values = (sign, *(sign * row[i] for i in _TOKENS_AT), sign * (cost or 0.0), sign * (cost is None))
        d = self.delta.get(key)
        if d is None:
            self.delta[key] = list(values)
        else:
            for i, v in enumerate(values):
                d[i] += v

    def write(self, db: sqlite3.Connection) -> None:
        """Fine deltas into a temp table; SQLite sums them into every grain."""
        fine_cols = (*self.FINE, *ROLLUP_COLS)
        types = {c: "TEXT" for c in self.FINE} | {c: "INTEGER" for c in ROLLUP_COLS} | {"cost_usd": "REAL"}
        db.execute(f"CREATE TEMP TABLE IF NOT EXISTS rollup_delta ({', '.join(f'{c} {types[c]}' for c in fine_cols)})")
        db.execute("DELETE FROM rollup_delta")
        dialect_of(db).insert_rows(db, "rollup_delta", fine_cols, [(*k, *v) for k, v in self.delta.items()])
        keys = ("grain", "tenant", "day", *GRAIN_DIMS)
        for grain, dims in GRAINS.items():
            select = ", ".join(["?", "tenant", "day", *(d if d in dims else "''" for d in GRAIN_DIMS),
                                *(f"SUM({c})" for c in ROLLUP_COLS)])
            db.execute(f"INSERT INTO rollups ({', '.join(keys + ROLLUP_COLS)}) SELECT {select} FROM rollup_delta "
                       f"WHERE 1 = 1 GROUP BY {', '.join(['tenant', 'day', *dims])} "
                       f"ORDER BY {', '.join(['tenant', 'day', *dims])} "  # one lock order for every writer
                       f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                       f"{', '.join(f'{c} = rollups.{c} + excluded.{c}' for c in ROLLUP_COLS)}", (grain,))
        self.delta.clear()


def _apply(db: sqlite3.Connection, items: list[tuple[int, dict, str, str]]) -> tuple[int, int]:
    """Make raw events canonical or superseded. items: (raw_id, event, key, received_at).

    Nearly every call arrives once, so rows are inserted first (ON CONFLICT DO NOTHING);
    only when some were not inserted are their keys looked up and resolved in order.
    """
    rows = [_row(event, key, raw_id, received_at) for raw_id, event, key, received_at in items]
    cols = ", ".join(EVENT_COLUMNS)
    before = db.total_changes
    # in key order (stable: a key's first copy in the batch still goes in): concurrent writers lock alike
    dialect_of(db).insert_rows(db, "events", EVENT_COLUMNS, sorted(rows, key=lambda r: r[_KEY_AT]),
                               "ON CONFLICT (dedup_key) DO NOTHING")
    rollups = Rollups()
    if db.total_changes - before == len(rows):
        for row in rows:
            rollups.add(row, +1)
        rollups.write(db)
        return len(rows), 0
    keys = sorted({r[_KEY_AT] for r in rows})
    current: dict[str, tuple] = {}
    lock = dialect_of(db).lock_rows
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        for r in db.execute(f"SELECT {cols} FROM events WHERE dedup_key IN ({', '.join('?' * len(chunk))})"
                            f" ORDER BY dedup_key{lock}", chunk):
            current[r[_KEY_AT]] = r
    # the rows this batch inserted, by raw id; every other row met an existing copy
    inserted = {r[_RAW_AT] for r in current.values()} & {r[_RAW_AT] for r in rows}
    accepted = deduped = 0
    state: dict[str, tuple] = {}  # the canonical row per key as of each step, replayed in batch order
    replaces, superseded = {}, []
    for row in rows:
        key = row[_KEY_AT]
        if row[_RAW_AT] in inserted:
            state[key] = row
            rollups.add(row, +1)
            accepted += 1
            continue
        old = state.get(key) or current[key]
        deduped += 1
        if _total(row) > _total(old):  # a more complete copy of the same call (final streaming snapshot)
            superseded.append(old[_RAW_AT])
            rollups.add(old, -1)
            rollups.add(row, +1)
            state[key] = replaces[key] = row
        else:
            superseded.append(row[_RAW_AT])
    db.executemany(f"UPDATE events SET {', '.join(f'{c} = ?' for c in EVENT_COLUMNS[1:])} WHERE dedup_key = ?",
                   [(*r[1:], r[0]) for _k, r in sorted(replaces.items())])
    db.executemany("UPDATE raw_events SET status = 'superseded' WHERE id = ?", [(i,) for i in sorted(superseded)])
    if superseded:
        db.execute("INSERT INTO settings (key, value) VALUES ('superseded_count', ?) ON CONFLICT (key) DO UPDATE "
                   "SET value = CAST(CAST(settings.value AS INTEGER) + ? AS TEXT)", (len(superseded), len(superseded)))
    rollups.write(db)
    return accepted, deduped


def ingest(db: sqlite3.Connection, events: Iterable[dict], tenant: str | None = None) -> tuple[int, int]:
    """Store validated wire events; `tenant`, when given, is forced onto every event.

    Returns (accepted, deduped). Idempotent: the same events twice add no rows to `events`.
    """
    received_at = _now()
    prepared = []
    for e in events:
        if tenant is not None:
            e = dict(e, tags=dict(e.get("tags") or {}, tenant=tenant))
        prepared.append((json.dumps(e, separators=(",", ":")), e))
    keys = [dedup_key(e) for _b, e in prepared]
    for attempt in range(5):
        db.execute("BEGIN IMMEDIATE")
        try:
            # ids assigned here, inside the write transaction (SQLite: dense; PostgreSQL: a sequence)
            ids = dialect_of(db).next_raw_ids(db, len(prepared))
            items = [(i, e, key, received_at) for i, (_b, e), key in zip(ids, prepared, keys)]
            dialect_of(db).insert_rows(db, "raw_events", ("id", "received_at", "dedup_key", "body", "status"),
                                       [(i, received_at, key, body, "canonical")
                                        for i, (body, _e), key in zip(ids, prepared, keys)])
            result = _apply(db, items)
            db.execute("COMMIT")
            return result
        except BaseException as exc:
            db.execute("ROLLBACK")
            if not engine.retryable(exc) or attempt == 4:
                raise
    raise AssertionError("unreachable")


def rebuild_rollups(db: sqlite3.Connection) -> None:
    """Recompute rollups from `events` (the shape the migrations have reached so far)."""
    sums = ", ".join(["COUNT(*)", *(f"SUM({t})" for t in TOKEN_FIELDS), "SUM(COALESCE(cost_usd, 0))",
                      "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"])
    tables = dialect_of(db).tables(db)
    if "rollups" not in tables:
        db.execute("DELETE FROM daily_rollups")
        db.execute(f"INSERT INTO daily_rollups SELECT {', '.join(ROLLUP_KEYS)}, {sums} FROM events "
                   f"GROUP BY {', '.join(ROLLUP_KEYS)}")
        return
    db.execute("DELETE FROM rollups")
    for grain, dims in GRAINS.items():
        cols = ", ".join(d if d in dims else "''" for d in GRAIN_DIMS)
        group = ", ".join(["tenant", "day", *dims])
        db.execute(f"INSERT INTO rollups SELECT ?, tenant, day, {cols}, {sums} FROM events GROUP BY {group}",
                   (grain,))


def replay(db: sqlite3.Connection, batch: int = 5000) -> int:
    """Rebuild `events` and `rollups` from `raw_events`, deterministically (id order)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        dialect_of(db).no_timeout(db)
        db.execute("DELETE FROM events")
        db.execute("DELETE FROM rollups")
        db.execute("UPDATE raw_events SET status = 'canonical'")
        db.execute("DELETE FROM settings WHERE key = 'superseded_count'")
        last, n = 0, 0
        while True:
            rows = db.execute("SELECT id, body, dedup_key, received_at FROM raw_events WHERE id > ? ORDER BY id "
                              "LIMIT ?", (last, batch)).fetchall()
            if not rows:
                break
            _apply(db, [(i, json.loads(body), key, at) for i, body, key, at in rows])
            last, n = rows[-1][0], n + len(rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return n


# --- tenants and keys ---

def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_tenant(db: sqlite3.Connection, name: str) -> str:
    """Create a tenant (or add a key to it) and return a new API key; only its hash is stored."""
    key = "nmr_" + secrets.token_urlsafe(32)
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO tenants (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, _now()))
        tid = db.execute("SELECT id FROM tenants WHERE name = ?", (name,)).fetchone()[0]
        db.execute("INSERT INTO api_keys (tenant_id, key_hash, created_at) VALUES (?, ?, ?)",
                   (tid, hash_key(key), _now()))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return key


def tenant_for_key(db: sqlite3.Connection, key: str) -> str | None:
    return tenant_for_key_hash(db, hash_key(key))


def tenant_for_key_hash(db: sqlite3.Connection, digest: str) -> str | None:
    row = db.execute("SELECT t.name, k.key_hash FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
                     "WHERE k.key_hash = ? AND k.revoked_at IS NULL", (digest,)).fetchone()
    return row[0] if row and hmac.compare_digest(row[1], digest) else None


def list_tenants(db: sqlite3.Connection) -> list[dict]:
    return [{"name": n, "keys": k, "created_at": c} for n, k, c in db.execute(
        "SELECT t.name, COUNT(k.id), t.created_at FROM tenants t LEFT JOIN api_keys k ON k.tenant_id = t.id "
        "AND k.revoked_at IS NULL GROUP BY t.id, t.name, t.created_at ORDER BY t.name")]


def setting(db: sqlite3.Connection, key: str, make: Callable[[], str]) -> str:
    """A shared setting, created once (first writer wins) by `make`."""
    db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, make()))
    return db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]


def store_id(db: sqlite3.Connection) -> str:
    """This store's identity (migration 0008): what shippers key their ledger by."""
    return db.execute("SELECT value FROM settings WHERE key = 'store_id'").fetchone()[0]


def has_api_keys(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None


def canonical_rows(db: sqlite3.Connection) -> list[tuple]:
    """Every canonical event, ordered: what replay must reproduce exactly."""
    return db.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY dedup_key").fetchall()


# --- dashboard sessions (read on every page: SELECTs only; writes at login and logout) ---

def setting_value(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def create_session(db: sqlite3.Connection, sid_hash: str, role: str, tenant: str | None, credential: str,
                   issued: int, expires: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM dashboard_sessions WHERE expires_at < ?", (issued,))
        db.execute("INSERT INTO dashboard_sessions (id, role, tenant, credential, issued_at, expires_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (sid_hash, role, tenant, credential, issued, expires))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def get_session(db: sqlite3.Connection, sid_hash: str) -> tuple | None:
    """(role, tenant, credential, expires_at) of a live (not revoked) session row."""
    return db.execute("SELECT role, tenant, credential, expires_at FROM dashboard_sessions "
                      "WHERE id = ? AND revoked_at IS NULL", (sid_hash,)).fetchone()


def revoke_session(db: sqlite3.Connection, sid_hash: str, at: int) -> None:
    db.execute("UPDATE dashboard_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, sid_hash))
