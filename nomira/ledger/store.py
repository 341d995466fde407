"""SQLite store: usage events only, never a content column.

- `raw_events`: every accepted event exactly as received (usage-only, validated), with its
  provenance (UUID, source system/channel/schema version, payload SHA-256, workspace, agent
  session). Immutable: triggers refuse UPDATE and DELETE (retention, 0011, is the one exception).
- `events`: one canonical row per API call (dedup key), derived from a raw row by `normalize`
  (NORMALIZATION_VERSION). When several copies of one call arrive, source priority picks the
  winner (agent-native > transcript > derived), then completeness; every loser is listed in
  `superseded_events`, never lost. `replay` rebuilds all of it from raw rows, deterministically.
- `rollups`: per day and tenant, at several grains (by developer, project, model,
  regime and the pairs drill-downs need), kept in step with `events` in the same
  transaction, so dashboards never scan millions of rows. A call's day is taken in its developer's
  pinned day zone (`day_zones`, 0017: the first shipped batch naming a zone pins it), else UTC, and
  is never recomputed once filed, so a laptop changing zone moves no team total.
- `tenants`, `api_keys` (SHA-256 hashes only), `bills`.

All SQL lives here, written once in SQLite's dialect; nomira/ledger/engine.py holds the few
rewrites and operations PostgreSQL needs (a store is a file path or a postgresql:// URL).
"""
from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import operator
import os
import secrets
import sqlite3
import threading
import uuid
from collections import Counter
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from nomira.ledger import engine, retention
from nomira.ledger.engine import dialect_of
from nomira.ledger.events import SUBSCRIPTION_SOURCES, parse_timestamp
from nomira.pricing.table import canonical_model
from nomira.ledger.wire import ALLOWANCE_FIELDS, CHANNEL_PRIORITY, TAG_FIELDS, TOKEN_FIELDS, channel_of, \
    dedup_key

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
                 "allowance", "raw_id", "received_at",
                 # the ledger's canonical columns (0010), derived from the raw row by `normalize`; the design's
                 # names for what the columns above already hold (model_raw, source_system, workspace, agent,
                 # raw_event_id) are given by the `canonical_events` view, so no fact is stored twice
                 "event_id", "event_type", "status", "model_canonical", "model_lineage", "total_tokens", "requests",
                 "tool_name", "account_id", "workspace_id", "agent", "source_channel", "source_priority",
                 "normalization_version",
                 "branch")  # 0016: the git branch tag (wire.BRANCH_TAG)
LEDGER_COLUMNS = EVENT_COLUMNS[EVENT_COLUMNS.index("event_id"):EVENT_COLUMNS.index("normalization_version") + 1]
RAW_COLUMNS = ("id", "received_at", "dedup_key", "body", "raw_event_id", "source_system", "source_channel",
               "source_schema_version", "source_payload_hash", "workspace", "agent_session_id")
# What `normalize` derives from a raw row. Bump it when a rule changes: `nomira replay` re-derives
# every canonical row and reports what changed. 1: rows derived before the ledger (migrated). 3: an
# event sent with the regime "mixed" (a whole history's, by clients before 2026-12-05) takes its own
# source's (`SUBSCRIPTION_SOURCES`): the dashboard sums subscription value and API cost apart.
NORMALIZATION_VERSION = 3
EVENT_ID_NAMESPACE = uuid.UUID("5b0f3d2a-9c1e-4e57-a2f4-6e0c1d7a8b24")  # event_id = uuid5(this, dedup_key)
_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
_EMPTY_NOT_NULL = ("tool_name", "account_id", "workspace_id", "agent")


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


def _m0010_ledger(db: sqlite3.Connection) -> None:
    """The ledger (issue 24). raw_events is rebuilt without its mutable `status` (which copy won is
    the canonical side's business now: `superseded_events`) and with its provenance backfilled;
    events gain the design's columns, derived from each row's own values (normalization_version 1),
    so every total stays what it was."""
    db.execute("""CREATE TABLE raw_events_v10 (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL,
        dedup_key TEXT NOT NULL, body TEXT NOT NULL, raw_event_id TEXT NOT NULL, source_system TEXT NOT NULL,
        source_channel TEXT NOT NULL, source_schema_version TEXT NOT NULL, source_payload_hash TEXT NOT NULL,
        workspace TEXT, agent_session_id TEXT)""")
    sid = store_id(db)
    last = 0
    while True:
        rows = db.execute("SELECT id, received_at, dedup_key, body FROM raw_events WHERE id > ? ORDER BY id LIMIT 5000",
                          (last,)).fetchall()
        if not rows:
            break
        values = []
        for i, at, key, body in rows:
            try:
                event = json.loads(body)
            except ValueError:
                event = None
            values.append((i, at, key, body, *_provenance(event if isinstance(event, dict) else {}, body,
                                                          str(uuid.uuid5(EVENT_ID_NAMESPACE, f"raw:{sid}:{i}")))))
        db.executemany(f"INSERT INTO raw_events_v10 ({', '.join(RAW_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(RAW_COLUMNS))})", values)
        last = rows[-1][0]
    db.execute("""CREATE TABLE superseded_events (raw_id INTEGER PRIMARY KEY, dedup_key TEXT NOT NULL,
        reason TEXT NOT NULL, normalization_version INTEGER NOT NULL)""")
    db.execute("INSERT INTO superseded_events (raw_id, dedup_key, reason, normalization_version) "
               "SELECT id, dedup_key, 'legacy', 1 FROM raw_events WHERE status = 'superseded'")
    db.execute("DROP TABLE raw_events")
    db.execute("ALTER TABLE raw_events_v10 RENAME TO raw_events")
    dialect_of(db).reset_ids(db, "raw_events")  # ids were copied in: new ones continue after them
    dialect_of(db).raw_events_immutable(db)
    # '' rather than NULL for an absent tool, account, workspace or agent: the canonical_events view
    # gives NULL back, and binding '' is ~30x cheaper than binding None in sqlite3 (no adapter lookup)
    types = {"total_tokens": "INTEGER", "requests": "INTEGER", "source_priority": "INTEGER",
             "normalization_version": "INTEGER", **dict.fromkeys(_EMPTY_NOT_NULL, "TEXT NOT NULL DEFAULT ''")}
    for col in LEDGER_COLUMNS:
        db.execute(f"ALTER TABLE events ADD COLUMN {col} {types.get(col, 'TEXT')}")
    db.execute(f"UPDATE events SET total_tokens = {' + '.join(t for t in TOKEN_FIELDS if t != 'reasoning')}, "
               "requests = 1, status = 'ok', normalization_version = 1")
    last = ""
    while True:  # in chunks, by key (PostgreSQL has no rowid): millions of events in bounded memory
        rows = db.execute("SELECT dedup_key, dedup_key, source, model, tool_call_id, turn_id, message_id FROM events "
                          "WHERE dedup_key > ? ORDER BY dedup_key LIMIT 5000", (last,)).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        values = []
        for row_key, key, source, model, tool_call, turn, message in rows:
            channel = channel_of({"source": source or ""})
            values.append((event_id(key),
                           _event_type({"tool_call_id": tool_call, "turn_id": turn, "message_id": message}),
                           *canonical_model(model or ""), channel, CHANNEL_PRIORITY[channel], row_key))
        db.executemany("UPDATE events SET event_id = ?, event_type = ?, model_canonical = ?, model_lineage = ?, "
                       "source_channel = ?, source_priority = ? WHERE dedup_key = ?", values)
    # serving views: daily by provider and by tool (materialized like rollups); model and project
    # are rollup grains already. Current limits: the newest allowance snapshot per developer.
    db.execute(f"""CREATE TABLE daily_views (view TEXT NOT NULL, tenant TEXT NOT NULL, day TEXT NOT NULL,
        name TEXT NOT NULL, calls INTEGER NOT NULL, {", ".join(f"{t} INTEGER NOT NULL" for t in TOKEN_FIELDS)},
        cost_usd REAL NOT NULL, unpriced_calls INTEGER NOT NULL, PRIMARY KEY (view, tenant, day, name))
        WITHOUT ROWID""")
    db.execute(f"""CREATE TABLE current_limits (tenant TEXT NOT NULL, developer TEXT NOT NULL, provider TEXT NOT NULL,
        occurred_at TEXT NOT NULL, {", ".join(f"{f} REAL" for f in ALLOWANCE_FIELDS)},
        PRIMARY KEY (tenant, developer, provider))""")
    sums = ", ".join(f"{c}" for c in ("calls", *TOKEN_FIELDS, "cost_usd", "unpriced_calls"))
    for view, source, col in (("provider", "daily_views", "name"), ("tool", "daily_views", "name"),
                              ("model", "rollups", "model"), ("project", "rollups", "project")):
        where = f"view = '{view}'" if source == "daily_views" else f"grain = '{view}'"
        db.execute(f"CREATE VIEW usage_daily_by_{view} AS SELECT tenant, day, {col} AS {view}, {sums} "
                   f"FROM {source} WHERE {where}")
    _rebuild_views(db)
    db.execute(f"""CREATE VIEW canonical_events AS SELECT e.event_id, e.dedup_key, e.occurred_at, e.day, e.provider,
        COALESCE(NULLIF(e.agent, ''), e.source) AS agent, NULLIF(e.account_id, '') AS account_id,
        COALESCE(NULLIF(e.workspace_id, ''), e.project) AS workspace,
        e.session_id, e.turn_id, e.message_id, e.request_id, e.tool_call_id, e.event_type, e.model AS model_raw,
        e.model_canonical, e.model_lineage, {", ".join(f"e.{t}" for t in TOKEN_FIELDS)}, e.total_tokens, e.cost_usd,
        e.cost_source, e.requests, NULLIF(e.tool_name, '') AS tool_name, e.status, e.source AS source_system,
        e.source_channel,
        e.source_priority, e.raw_id, r.raw_event_id, e.normalization_version, e.regime, e.is_sidechain, e.allowance,
        {", ".join(f"e.{t}" for t in TAG_FIELDS)}, e.received_at
        FROM events e LEFT JOIN raw_events r ON r.id = e.raw_id""")


def _m0011_retention(db: sqlite3.Connection) -> None:
    """Retention may delete raw rows (nomira/ledger/retention.py); nothing else may, and nothing may update one."""
    dialect_of(db).raw_events_retention(db)


# Tag rollups (0012): per value of one business tag (source, feature, workflow, customer, env; '' = every
# event), by day and the four rollup dimensions, so a tag filter, or three rollup dimensions at once,
# reads (days x a few hundred) rows of one range, never the events of those days.
TAG_ROLLUPS = ("", "source", "feature", "workflow", "customer", "env")
# (tenant, developer) first (0018): one developer's batch, whatever days it spans, upserts one contiguous
# run of each table instead of a row on nearly every leaf (0012 led with tag, value, day). A tag's rows
# exist only for set values (0018): no view filters on an unset tag; every event is under tag ''.
TAG_ROLLUP_KEYS = ("tenant", "developer", "tag", "value", "day", "project", "model", "regime")
assert set(TAG_ROLLUP_KEYS) == {"tag", "value", "day", "tenant", *GRAIN_DIMS}


# Sessions (0012): one row per (tenant, developer, project, session id) with its first call's day and
# tags, and per tag value, day, developer and project the number of sessions that started there, so a
# sessions column is a sum of a few rows, never a distinct count over millions of events.
SESSION_KEYS = ("tenant", "developer", "project", "session_id")
SESSION_COLS = (*SESSION_KEYS, "day", *TAG_ROLLUPS[1:])
SESSION_COUNT_KEYS = ("tenant", "developer", "tag", "value", "day", "project")  # 0018, as TAG_ROLLUP_KEYS
_TAG_ROLLUP_KEYS_0012 = ("tag", "value", "day", "tenant", *GRAIN_DIMS)  # the keys as 0012 made them
_SESSION_COUNT_KEYS_0012 = ("tag", "value", "day", "tenant", "developer", "project")


def _tag_rollups_ddl(name: str, keys: tuple[str, ...]) -> str:
    return f"""CREATE TABLE {name} ({", ".join(f"{k} TEXT NOT NULL" for k in keys)}, calls INTEGER NOT NULL,
        {", ".join(f"{t} INTEGER NOT NULL" for t in TOKEN_FIELDS)}, cost_usd REAL NOT NULL,
        unpriced_calls INTEGER NOT NULL, PRIMARY KEY ({", ".join(keys)})) WITHOUT ROWID"""


def _session_counts_ddl(name: str, keys: tuple[str, ...]) -> str:
    return f"""CREATE TABLE {name} ({", ".join(f"{c} TEXT NOT NULL" for c in keys)},
        sessions INTEGER NOT NULL, PRIMARY KEY ({", ".join(keys)})) WITHOUT ROWID"""


def _m0012_tag_rollups(db: sqlite3.Connection) -> None:
    db.execute(_tag_rollups_ddl("tag_rollups", _TAG_ROLLUP_KEYS_0012))
    rebuild_tag_rollups(db)
    db.execute(f"""CREATE TABLE usage_sessions ({", ".join(f"{c} TEXT NOT NULL" for c in SESSION_COLS)},
        PRIMARY KEY ({", ".join(SESSION_KEYS)})) WITHOUT ROWID""")
    db.execute(_session_counts_ddl("session_counts", _SESSION_COUNT_KEYS_0012))
    rebuild_sessions(db)


def rebuild_sessions(db: sqlite3.Connection) -> None:
    """Sessions and their counts from `events`: each session's first call (by time, then key)."""
    db.execute("DELETE FROM usage_sessions")
    db.execute("DELETE FROM session_counts")
    cols = ", ".join(SESSION_COLS)
    firsts = ", ".join([*SESSION_KEYS, "day", *(f"COALESCE({t}, '') AS {t}" for t in TAG_ROLLUPS[1:])])
    db.execute(f"INSERT INTO usage_sessions ({cols}) SELECT {cols} FROM (SELECT {firsts}, ROW_NUMBER() OVER "
               f"(PARTITION BY {', '.join(SESSION_KEYS)} ORDER BY occurred_at, dedup_key) AS n_ FROM events "
               "WHERE session_id IS NOT NULL AND session_id != '') AS first_calls WHERE n_ = 1")
    for tag in TAG_ROLLUPS:
        value = tag or "''"
        group = ", ".join([*([tag] if tag else []), "day", "tenant", "developer", "project"])
        db.execute(f"INSERT INTO session_counts (tag, value, day, tenant, developer, project, sessions) SELECT ?, "
                   f"{value}, day, tenant, developer, project, COUNT(*) FROM usage_sessions WHERE {value} <> '' "
                   f"OR ? = '' GROUP BY {group}", (tag, tag))


def _count_new_sessions(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """Record the sessions these new canonical rows start (the first of each to reach the store; its
    earliest call in the batch), and count them by tag value, day, developer and project."""
    first: dict[tuple, tuple] = {}
    for r in rows:
        if not r[_SESSION_AT]:
            continue
        key = _session_key(r)
        seen = first.get(key)
        if seen is None or _session_order(r) < _session_order(seen):  # as the backfill orders a session's calls
            first[key] = r
    _count_new_session_models(db, rows)
    if not first:
        return
    db.execute(_SESSION_DELTA_TABLE)
    db.execute("DELETE FROM session_delta")
    dialect_of(db).insert_rows(db, "session_delta", SESSION_COLS,
                               [(*k, *_session_first(r)) for k, r in sorted(first.items())])
    new = db.execute(_NEW_SESSIONS).fetchall()
    # normalize gives every tag column a string, so the five tags need no `or ""` here
    counts = Counter((tenant, developer, tag, value, day, project) for tenant, developer, project, _sid, day, *tags
                     in new for tag, value in zip(TAG_ROLLUPS, ("", *tags)) if value or not tag)  # set tags only
    db.executemany(_COUNT_SESSIONS, [(*k, n) for k, n in sorted(counts.items())])


def _count_new_session_models(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """Record each session's first call of each model among these new canonical rows (the first to reach
    the store), and count them in session_counts under tag 'model' (0019)."""
    first: dict[tuple, tuple] = {}
    for r in rows:
        if not r[_SESSION_AT]:
            continue
        key = _session_model_key(r)
        seen = first.get(key)
        if seen is None or _session_order(r) < _session_order(seen):
            first[key] = r
    if not first:
        return
    db.execute(_SESSION_MODEL_DELTA_TABLE)
    db.execute("DELETE FROM session_model_delta")
    dialect_of(db).insert_rows(db, "session_model_delta", SESSION_MODEL_COLS,
                               [(*k, r[_DAY_AT]) for k, r in sorted(first.items())])
    new = db.execute(_NEW_SESSION_MODELS).fetchall()
    counts = Counter((tenant, developer, "model", model, day, project)
                     for tenant, developer, project, _sid, model, day in new)
    db.executemany(_COUNT_SESSIONS, [(*k, n) for k, n in sorted(counts.items())])


def rebuild_tag_rollups(db: sqlite3.Connection) -> None:
    """Recompute tag rollups from `events` (the canonical rows a store holds)."""
    sums = ", ".join(["COUNT(*)", *(f"SUM({t})" for t in TOKEN_FIELDS), "SUM(COALESCE(cost_usd, 0))",
                      "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"])
    db.execute("DELETE FROM tag_rollups")
    for tag in TAG_ROLLUPS:
        value = f"COALESCE({tag}, '')" if tag else "''"
        group = ", ".join([*([value] if tag else []), "day", "tenant", *GRAIN_DIMS])
        db.execute(f"INSERT INTO tag_rollups (tag, value, day, tenant, {', '.join(GRAIN_DIMS + ROLLUP_COLS)}) "
                   f"SELECT ?, {value}, day, tenant, {', '.join(GRAIN_DIMS)}, {sums} FROM events "
                   f"WHERE {value} <> '' OR ? = '' GROUP BY {group}", (tag, tag))  # set tags only (0018)


def _m0013_call_links(db: sqlite3.Connection) -> None:
    """Telemetry copies of a call (no message id) by request id or usage fingerprint, so a transcript
    copy arriving later finds them (`_link_copies`). Only telemetry copies get a row: the transcript
    rows, nearly all of the store, pay nothing."""
    db.execute("CREATE TABLE call_links (tenant TEXT NOT NULL, link TEXT NOT NULL, occurred_at TEXT NOT NULL, "
               "dedup_key TEXT NOT NULL)")
    db.execute("CREATE INDEX call_links_link ON call_links (tenant, link)")


def _m0015_limit_windows(db: sqlite3.Connection) -> None:
    """Each developer's current subscription windows, shipped as limit_snapshot records (nomira/ledger/limits.py)."""
    from nomira.ledger.limits import create_table
    create_table(db)


def _m0016_branch(db: sqlite3.Connection) -> None:
    """The git branch tag (issue 28); '' for rows stored before (replay derives it from the raw body)."""
    db.execute("ALTER TABLE events ADD COLUMN branch TEXT NOT NULL DEFAULT ''")


def _m0017_day_zones(db: sqlite3.Connection) -> None:
    """Pinned day boundaries (issue 28): the IANA zone each developer's calls are filed under, set by
    their first shipped batch that names one (`pin_day_zones`); `noted_zone` is the other zone a
    laptop last reported, so the mismatch is said once. `raw_events.day_zone` is the zone a raw row
    was filed under (NULL: UTC, every row before this), so replay files it on the same day."""
    db.execute("CREATE TABLE day_zones (tenant TEXT NOT NULL, developer TEXT NOT NULL, zone TEXT NOT NULL, "
               "pinned_at TEXT NOT NULL, noted_zone TEXT, PRIMARY KEY (tenant, developer))")
    db.execute("ALTER TABLE raw_events ADD COLUMN day_zone TEXT")


def _m0018_developer_first(db: sqlite3.Connection) -> None:
    """tag_rollups and session_counts re-keyed with (tenant, developer) first, in place (TAG_ROLLUP_KEYS),
    without the rows of unset tags (value '' under a tag other than ''), which no view reads: every
    figure a page shows stays what it was (issue 24: ingest cost)."""
    for table, ddl, keys, sums in (("tag_rollups", _tag_rollups_ddl, TAG_ROLLUP_KEYS, ROLLUP_COLS),
                                   ("session_counts", _session_counts_ddl, SESSION_COUNT_KEYS, ("sessions",))):
        cols = ", ".join(keys + sums)
        db.execute(ddl(f"{table}_0018", keys))
        db.execute(f"INSERT INTO {table}_0018 ({cols}) SELECT {cols} FROM {table} WHERE tag = '' OR value <> '' "
                   f"ORDER BY {', '.join(keys)}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_0018 RENAME TO {table}")


# Hour and sub-agent rollups (0019): what the dashboard still read from `events` at 10M events. Per UTC
# hour of a day and the four rollup dimensions, so `today`'s hourly trend is one range of a day's rows;
# and the sums of sub-agent (sidechain) calls by day, developer, project and model, so a project's
# sub-agent share is a few rows, not a seek through each of its developers' events. Day first: a view
# reads a range of days, and a batch appends at the end (today's rows).
HOUR_KEYS = ("day", "tenant", "developer", "project", "model", "regime", "hour")
SIDECHAIN_KEYS = ("day", "tenant", "developer", "project", "model")
_HOUR_EXPR = "COALESCE(substr(occurred_at, 12, 2), '')"  # occurred_at is UTC ISO text: the hour at 12-13


def _sums_ddl(name: str, keys: tuple[str, ...]) -> str:
    return f"""CREATE TABLE {name} ({", ".join(f"{k} TEXT NOT NULL" for k in keys)}, calls INTEGER NOT NULL,
        {", ".join(f"{t} INTEGER NOT NULL" for t in TOKEN_FIELDS)}, cost_usd REAL NOT NULL,
        unpriced_calls INTEGER NOT NULL, PRIMARY KEY ({", ".join(keys)})) WITHOUT ROWID"""


# Sessions by model (0019): each session's first call of each model, and in session_counts under tag
# 'model' the number of sessions whose first call of that model fell on a day, so a model filter's sessions
# column is counted like every other (on the first call) and never a distinct count over `events`.
SESSION_MODEL_KEYS = (*SESSION_KEYS, "model")
SESSION_MODEL_COLS = (*SESSION_MODEL_KEYS, "day")


def _m0019_hour_sidechain_rollups(db: sqlite3.Connection) -> None:
    """hour_rollups, sidechain_rollups and session_models, backfilled from the canonical events in place."""
    db.execute(_sums_ddl("hour_rollups", HOUR_KEYS))
    db.execute(_sums_ddl("sidechain_rollups", SIDECHAIN_KEYS))
    rebuild_hour_sidechain(db)
    db.execute(f"""CREATE TABLE session_models ({", ".join(f"{c} TEXT NOT NULL" for c in SESSION_MODEL_COLS)},
        PRIMARY KEY ({", ".join(SESSION_MODEL_KEYS)})) WITHOUT ROWID""")
    rebuild_session_models(db)


def rebuild_session_models(db: sqlite3.Connection) -> None:
    """session_models and session_counts' 'model' rows from `events`: each (session, model)'s first call
    (by time, then key, as usage_sessions)."""
    db.execute("DELETE FROM session_models")
    db.execute("DELETE FROM session_counts WHERE tag = 'model'")
    cols = ", ".join(SESSION_MODEL_COLS)
    db.execute(f"INSERT INTO session_models ({cols}) SELECT {cols} FROM (SELECT {', '.join(SESSION_KEYS)}, "
               f"COALESCE(model, '') AS model, day, ROW_NUMBER() OVER (PARTITION BY {', '.join(SESSION_KEYS)}, "
               "COALESCE(model, '') ORDER BY occurred_at, dedup_key) AS n_ FROM events "
               "WHERE session_id IS NOT NULL AND session_id != '') AS first_calls WHERE n_ = 1")
    db.execute(f"INSERT INTO session_counts ({', '.join(SESSION_COUNT_KEYS)}, sessions) SELECT tenant, developer, "
               "'model', model, day, project, COUNT(*) FROM session_models GROUP BY tenant, developer, model, day, "
               "project")


def rebuild_hour_sidechain(db: sqlite3.Connection, where: str = "1 = 1") -> None:
    """Recompute hour_rollups and sidechain_rollups from `events` (the rows matching `where`)."""
    sums = ", ".join(["COUNT(*)", *(f"SUM({t})" for t in TOKEN_FIELDS), "SUM(COALESCE(cost_usd, 0))",
                      "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"])
    for table, keys, exprs, only in (("hour_rollups", HOUR_KEYS, {"hour": _HOUR_EXPR}, ""),
                                     ("sidechain_rollups", SIDECHAIN_KEYS, {}, " AND is_sidechain = 1")):
        db.execute(f"DELETE FROM {table} WHERE {where}")
        select = ", ".join(exprs.get(k, k) for k in keys)
        db.execute(f"INSERT INTO {table} ({', '.join(keys + ROLLUP_COLS)}) SELECT {select}, {sums} FROM events "
                   f"WHERE ({where}){only} GROUP BY {select}")


# Deferred tag grains (0020, issue 24's "within 10%"): an ingest files its new canonical rows in a queue
# (`rollup_batches` / `rollup_pending`, below) instead of writing their tag_rollups, hour_rollups,
# sidechain_rollups, usage_sessions, session_models and session_counts rows; `fold` sums the pending rows
# into those tables batch by batch with the ingest's own code: in `nomira serve`'s thread every 2 s, before
# a view reads them (queries), after an ingest at FOLD_AFTER pending rows, and around replay and prune. `fresh` = the first raw id of the batch that brought the key to the store
# (its session may start there: a session's first call is its earliest in the first batch that named it,
# as when counted on ingest); 0 = a winning copy replacing a row already folded (taken back at once).
# `owner` = a random token of the ingest that filed the row: a fold in the same process takes the row it
# still holds under that token (`_HELD`) instead of reading it back from `events` (through raw_events).
# A batch of new calls only, with raw ids fresh..last and nothing else between (SQLite always), is filed as
# one `rollup_batches` row instead of a row per call; a copy replacing one of its calls before the fold
# turns it back into rows per call (`_explode`).
PENDING_COLS = ("raw_id", "fresh", "owner")


def _m0020_deferred_tag_rollups(db: sqlite3.Connection) -> None:
    """rollup_pending and rollup_batches, empty: every table they feed is complete when they are created."""
    db.execute("CREATE TABLE rollup_pending (raw_id INTEGER PRIMARY KEY, fresh INTEGER NOT NULL, "
               "owner INTEGER NOT NULL)")
    db.execute("CREATE TABLE rollup_batches (fresh INTEGER PRIMARY KEY, last INTEGER NOT NULL, "
               "owner INTEGER NOT NULL)")


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
    ("0010_ledger", _m0010_ledger),
    ("0011_retention", _m0011_retention),
    ("0012_tag_rollups", _m0012_tag_rollups),
    ("0013_call_links", _m0013_call_links),
    ("0015_limit_windows", _m0015_limit_windows),
    ("0016_branch", _m0016_branch),
    ("0017_day_zones", _m0017_day_zones),
    ("0018_developer_first", _m0018_developer_first),
    ("0019_hour_sidechain_rollups", _m0019_hour_sidechain_rollups),
    ("0020_deferred_tag_rollups", _m0020_deferred_tag_rollups),
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
_FINE_AT = [COL[c] for c in ("tenant", "day", "developer", "project", "model", "regime", "provider", "tool_name")]
_COST_AT, _RAW_AT, _KEY_AT = COL["cost_usd"], COL["raw_id"], COL["dedup_key"]
_PRIORITY_AT, _EVENT_ID_AT, _CHANNEL_AT = COL["source_priority"], COL["event_id"], COL["source_channel"]
_ALLOWANCE_AT, _OCCURRED_AT, _PROVIDER_AT = COL["allowance"], COL["occurred_at"], COL["provider"]
_TENANT_AT, _DEVELOPER_AT = COL["tenant"], COL["developer"]
_SESSION_AT = COL["session_id"]
_DAY_AT = COL["day"]
_SIDECHAIN_AT = COL["is_sidechain"]
VIEWS = ("provider", "tool")  # daily_views (0010), summed from the last two columns of the fine rollup key
# rollups' finest key (Rollups.FINE) and the five tags (tag_rollups, 0012): what a batch's rows are grouped by
_group_key = operator.itemgetter(*_FINE_AT, *(COL[c] for c in TAG_ROLLUPS[1:]))
_tokens_of = operator.itemgetter(*_TOKENS_AT)
_session_key = operator.itemgetter(*(COL[c] for c in SESSION_KEYS))  # sessions (0012)
_session_order = operator.itemgetter(_OCCURRED_AT, _KEY_AT)
_session_first = operator.itemgetter(*(COL[c] for c in SESSION_COLS[len(SESSION_KEYS):]))
_session_model_key = operator.itemgetter(*(COL[c] for c in SESSION_MODEL_KEYS))  # session_models (0019)
_SESSION_MODEL_DELTA_TABLE = (f"CREATE TEMP TABLE IF NOT EXISTS session_model_delta "
                              f"({', '.join(f'{c} TEXT' for c in SESSION_MODEL_COLS)})")
_NEW_SESSION_MODELS = (f"INSERT INTO session_models ({', '.join(SESSION_MODEL_COLS)}) SELECT "
                       f"{', '.join(SESSION_MODEL_COLS)} FROM session_model_delta WHERE 1 = 1 ORDER BY "
                       f"{', '.join(SESSION_MODEL_KEYS)} ON CONFLICT ({', '.join(SESSION_MODEL_KEYS)}) DO NOTHING "
                       f"RETURNING {', '.join(SESSION_MODEL_COLS)}")
_SESSION_DELTA_TABLE = f"CREATE TEMP TABLE IF NOT EXISTS session_delta ({', '.join(f'{c} TEXT' for c in SESSION_COLS)})"
_NEW_SESSIONS = (f"INSERT INTO usage_sessions ({', '.join(SESSION_COLS)}) SELECT {', '.join(SESSION_COLS)} FROM "
                 f"session_delta WHERE 1 = 1 ORDER BY {', '.join(SESSION_KEYS)} ON CONFLICT ({', '.join(SESSION_KEYS)}) "
                 f"DO NOTHING RETURNING {', '.join(SESSION_COLS)}")
_COUNT_SESSIONS = (f"INSERT INTO session_counts ({', '.join(SESSION_COUNT_KEYS)}, sessions) VALUES "
                   f"(?, ?, ?, ?, ?, ?, ?) ON CONFLICT ({', '.join(SESSION_COUNT_KEYS)}) DO UPDATE SET "
                   "sessions = session_counts.sessions + excluded.sessions")
_TAG_COLUMNS = EVENT_COLUMNS[1:1 + len(TAG_FIELDS)]
_BILLED = TOKEN_FIELDS.index("reasoning")  # the billed token types come first; reasoning is inside output
assert _BILLED == len(TOKEN_FIELDS) - 1
assert set(_TAG_COLUMNS) == set(TAG_FIELDS)


def event_id(key: str) -> str:
    """A canonical event's UUID: uuid5(EVENT_ID_NAMESPACE, dedup key), so every replay and every
    duplicate submit gives the same id, and no lookup is needed to answer one."""
    return _uuid_text(hashlib.sha1(_NAMESPACE_BYTES + key.encode()).hexdigest(), 5)


def _uuid_text(h: str, version: int) -> str:
    """RFC 4122 text of 32 hex digits with `version` and the variant set (what uuid.UUID does,
    without its objects: this runs twice per ingested event)."""
    return f"{h[:8]}-{h[8:12]}-{version}{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 4122 variant bits


_COMPACT = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps(**kw) builds one per call


def _event_type(event: dict) -> str:
    if event.get("event_type"):
        return event["event_type"]
    if event.get("tool_call_id") or event.get("tool_name"):
        return "tool_usage"
    if event.get("turn_id") and not event.get("message_id"):
        return "turn_completed"
    return "message_usage"


def _provenance(event: dict, body: str, raw_event_id: str) -> tuple:
    """A raw row's columns after (id, received_at, dedup_key, body), in RAW_COLUMNS order."""
    tags = event.get("tags") if isinstance(event.get("tags"), dict) else {}
    return (raw_event_id, event.get("source") or "unknown", event.get("source_channel") or channel_of(event),
            str(event.get("source_schema_version") or event.get("schema_version") or ""),
            hashlib.sha256(body.encode()).hexdigest(), event.get("workspace_id") or tags.get("project") or None,
            event.get("session_id"))


def normalize(event: dict, key: str, raw_id: int, received_at: str, zone: str | None = None) -> tuple:
    """The canonical `events` row of a raw event, as a tuple in EVENT_COLUMNS order (the shape
    SELECT returns), its day taken in `zone` (the raw row's `day_zone`; None: UTC). Pure: replay
    gets the same row from the same raw row, every run."""
    tags = event.get("tags") or {}
    at = parse_timestamp(event["occurred_at"])
    tokens = event["tokens"]
    counts = [int(tokens.get(t, 0)) for t in TOKEN_FIELDS]
    allowance = event.get("allowance")
    g = event.get
    model = event["model"]
    channel = g("source_channel") or channel_of(event)
    total = g("total_tokens")
    requests = g("requests")
    return (key, *(tags.get(t) or "" for t in _TAG_COLUMNS), event["source"], event["provider"], model,
            at.isoformat(), (at.astimezone(_zone(zone)) if zone else at).date().isoformat(), g("session_id"), g("turn_id"), g("message_id"), g("request_id"),
            g("tool_call_id"), *counts, g("cost_usd"), g("cost_source"),
            _regime(g("regime"), event["source"]), int(bool(g("is_sidechain"))),
            json.dumps({k: allowance.get(k) for k in ALLOWANCE_FIELDS}) if allowance else None, raw_id, received_at,
            event_id(key), _event_type(event), g("status") or "ok", *canonical_model(model),
            sum(counts[:_BILLED]) if total is None else total, 1 if requests is None else requests,
            g("tool_name") or "", g("account_id") or "", g("workspace_id") or "", g("agent") or "", channel,
            CHANNEL_PRIORITY.get(channel, 2),
            NORMALIZATION_VERSION, tags.get("branch") or "")


def _regime(regime: str | None, source: str) -> str:
    if regime == "mixed":  # (no single call is both: it is its source's)
        return "subscription" if source in SUBSCRIPTION_SOURCES else "api"
    return regime or "api"


@lru_cache(maxsize=64)
def _zone(name: str):
    """A pinned zone's tzinfo; a name the tz database of this host lacks files under UTC, never fails."""
    if name == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return timezone.utc


def _total(row: tuple) -> int:
    return sum(row[i] for i in _BILLED_AT)


def _wins(new: tuple, old: tuple) -> str | None:
    """Why `new` replaces the canonical `old` copy of the same call (None: it does not). Source
    priority first (agent-native > transcript > derived), whatever the arrival order; within one
    priority, the more complete copy (a final streaming snapshot) wins."""
    if new[_PRIORITY_AT] != old[_PRIORITY_AT]:
        return "lower_priority" if new[_PRIORITY_AT] < old[_PRIORITY_AT] else None
    if _total(new) == _total(old) and old[_CHANNEL_AT] == "otlp" != new[_CHANNEL_AT]:
        return "less_complete"  # a linked telemetry copy (0013): the agent's own record has its ids and tags
    return "less_complete" if _total(new) > _total(old) else None


class Rollups:
    """Per-batch rollup deltas: the rows added (and taken back) grouped by their finest key and tags,
    summed once per group on write and expanded to every grain, view and tag there."""

    FINE = ("tenant", "day", *GRAIN_DIMS, "provider", "tool")

    def __init__(self):
        self.groups: tuple[dict[tuple, list], dict[tuple, list]] = ({}, {})  # rows added (+1), taken back (-1)
        self.limits: list[tuple] = []

    def add(self, row: tuple, sign: int) -> None:
        if sign > 0 and row[_ALLOWANCE_AT]:
            allowance = json.loads(row[_ALLOWANCE_AT])
            self.limits.append((row[_TENANT_AT], row[_DEVELOPER_AT], row[_PROVIDER_AT], row[_OCCURRED_AT],
                                *(allowance.get(f) for f in ALLOWANCE_FIELDS)))
        groups = self.groups[sign < 0]
        k = _group_key(row)
        rows = groups.get(k)
        if rows is None:  # a list of rows, summed on write: one append per event, not nine additions twice
            groups[k] = [row]
        else:
            rows.append(row)

    def deltas(self) -> list[tuple[tuple, list]]:
        """(fine key and tags, [calls, tokens..., cost, unpriced]) per group; a taken-back group negative."""
        out = []
        for sign, groups in ((1, self.groups[0]), (-1, self.groups[1])):
            for k, rows in groups.items():
                v = _sums(rows)
                out.append((k, v if sign > 0 else [-x for x in v]))
        return out

    def hour_sidechain(self) -> tuple[list[tuple], list[tuple]]:
        """hour_rollups and sidechain_rollups deltas (HOUR_KEYS / SIDECHAIN_KEYS, then sums), in key order:
        the groups' rows bucketed by hour (one slice and one append per row) and their sidechain rows."""
        out: tuple[list[tuple], list[tuple]] = ([], [])
        for sign, groups in ((1, self.groups[0]), (-1, self.groups[1])):
            hours: dict[tuple, list] = {}
            side: dict[tuple, list] = {}
            for k, rows in groups.items():
                tenant, day, developer, project, model, regime = k[:6]
                base = (day, tenant, developer, project, model, regime)
                for r in rows:
                    hk = (*base, (r[_OCCURRED_AT] or "")[11:13])
                    bucket = hours.get(hk)
                    if bucket is None:
                        hours[hk] = [r]
                    else:
                        bucket.append(r)
                    if r[_SIDECHAIN_AT]:
                        side.setdefault(base[:5], []).append(r)
            for table, acc in zip(out, (hours, side)):
                for key, rows in acc.items():
                    v = _sums(rows)
                    table.append((*key, *(v if sign > 0 else [-x for x in v])))
        out[0].sort(key=lambda r: r[:len(HOUR_KEYS)])  # one lock order for every writer
        out[1].sort(key=lambda r: r[:len(SIDECHAIN_KEYS)])
        return out

    def clear(self) -> None:
        self.groups = ({}, {})  # new dicts: a batch's groups may be held for its fold (s24e)
        self.limits.clear()

    def write(self, db: sqlite3.Connection, grains: bool = True, tags: bool = True,
              deltas: list | None = None) -> list:
        """Fine deltas into a temp table; SQLite sums them into every grain. The serving views
        (by provider, by tool) are summed here from the same deltas: a few hundred rows a batch.
        grains: the rollups, views and limits; tags: the tag, hour and sub-agent grains (an ingest
        writes the first and leaves the second to the fold, 0020). Returns the deltas (`deltas`: the
        ones an ingest already summed from these groups)."""
        deltas = self.deltas() if deltas is None else deltas
        grain_key = len(self.FINE) - len(VIEWS)
        if grains:
            self._write_grains(db, deltas, grain_key)
        if tags:
            _write_tag_rollups(db, [(*k[:grain_key], *k[len(self.FINE):], *v) for k, v in deltas])
            for (table, keys), rows in zip((("hour_rollups", HOUR_KEYS), ("sidechain_rollups", SIDECHAIN_KEYS)),
                                           self.hour_sidechain()):
                if rows:
                    db.executemany(f"INSERT INTO {table} ({', '.join(keys + ROLLUP_COLS)}) VALUES "
                                   f"({', '.join('?' * (len(keys) + len(ROLLUP_COLS)))}) ON CONFLICT "
                                   f"({', '.join(keys)}) DO UPDATE SET "
                                   f"{', '.join(f'{c} = {table}.{c} + excluded.{c}' for c in ROLLUP_COLS)}", rows)
        self.clear()
        return deltas

    def _write_grains(self, db: sqlite3.Connection, deltas: list, grain_key: int) -> None:
        fine_cols = (*self.FINE[:grain_key], *ROLLUP_COLS)
        types = {c: "TEXT" for c in self.FINE} | {c: "INTEGER" for c in ROLLUP_COLS} | {"cost_usd": "REAL"}
        db.execute(f"CREATE TEMP TABLE IF NOT EXISTS rollup_delta ({', '.join(f'{c} {types[c]}' for c in fine_cols)})")
        db.execute("DELETE FROM rollup_delta")
        # a fine key may come once per tag combination: the grains' GROUP BY sums them
        dialect_of(db).insert_rows(db, "rollup_delta", fine_cols, [(*k[:grain_key], *v) for k, v in deltas])
        views: dict[tuple, list] = {}
        for k, v in deltas:
            for pos, view in enumerate(VIEWS, grain_key):
                vk = (view, k[0], k[1], k[pos])
                d = views.get(vk)
                if d is None:
                    views[vk] = list(v)
                else:
                    for i, x in enumerate(v):
                        d[i] += x
        keys = ("grain", "tenant", "day", *GRAIN_DIMS)
        for grain, dims in GRAINS.items():
            select = ", ".join(["?", "tenant", "day", *(d if d in dims else "''" for d in GRAIN_DIMS),
                                *(f"SUM({c})" for c in ROLLUP_COLS)])
            db.execute(f"INSERT INTO rollups ({', '.join(keys + ROLLUP_COLS)}) SELECT {select} FROM rollup_delta "
                       f"WHERE 1 = 1 GROUP BY {', '.join(['tenant', 'day', *dims])} "
                       f"ORDER BY {', '.join(['tenant', 'day', *dims])} "  # one lock order for every writer
                       f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                       f"{', '.join(f'{c} = rollups.{c} + excluded.{c}' for c in ROLLUP_COLS)}", (grain,))
        db.executemany(f"INSERT INTO daily_views (view, tenant, day, name, {', '.join(ROLLUP_COLS)}) VALUES "
                       f"({', '.join('?' * (4 + len(ROLLUP_COLS)))}) ON CONFLICT (view, tenant, day, name) DO UPDATE "
                       f"SET {', '.join(f'{c} = daily_views.{c} + excluded.{c}' for c in ROLLUP_COLS)}",
                       [(*k, *v) for k, v in sorted(views.items())])
        if self.limits:
            db.executemany(f"INSERT INTO current_limits (tenant, developer, provider, occurred_at, "
                           f"{', '.join(ALLOWANCE_FIELDS)}) VALUES ({', '.join('?' * (4 + len(ALLOWANCE_FIELDS)))}) "
                           "ON CONFLICT (tenant, developer, provider) DO UPDATE SET "
                           "occurred_at = excluded.occurred_at, "
                           f"{', '.join(f'{f} = excluded.{f}' for f in ALLOWANCE_FIELDS)} "
                           "WHERE excluded.occurred_at > current_limits.occurred_at", self.limits)


def _sums(rows: list[tuple]) -> list:
    """[calls, tokens..., cost, unpriced] of canonical rows."""
    cost, unpriced = 0.0, 0
    for r in rows:
        c = r[_COST_AT]
        if c is None:
            unpriced += 1
        else:
            cost += c
    tokens = [sum(col) for col in zip(*map(_tokens_of, rows))] if len(rows) > 1 else list(_tokens_of(rows[0]))
    return [len(rows), *tokens, cost, unpriced]


def _write_tag_rollups(db: sqlite3.Connection, tagged: list[tuple]) -> None:
    """Tagged deltas (_TAG_DELTA_COLS) into a temp table; SQLite sums them into each tag's rows (one lock order)."""
    if not tagged:
        return
    db.execute(_TAG_DELTA_TABLE)
    db.execute("DELETE FROM tag_delta")
    dialect_of(db).insert_rows(db, "tag_delta", _TAG_DELTA_COLS, tagged)
    for tag, sql in _TAG_UPSERTS:
        db.execute(sql, (tag,))


_TAG_DELTA_COLS = ("tenant", "day", *GRAIN_DIMS, *TAG_ROLLUPS[1:], *ROLLUP_COLS)
_TAG_DELTA_TABLE = "CREATE TEMP TABLE IF NOT EXISTS tag_delta ({})".format(", ".join(
    f"{c} {'REAL' if c == 'cost_usd' else 'INTEGER' if c in ROLLUP_COLS else 'TEXT'}" for c in _TAG_DELTA_COLS))
# in the key's order (one lock order for every writer); a tag's rows only where it is set (0018)
_TAG_UPSERTS = [(tag, f"INSERT INTO tag_rollups ({', '.join(TAG_ROLLUP_KEYS + ROLLUP_COLS)}) SELECT tenant, "
                      f"developer, ?, {value}, day, project, model, regime, "
                      f"{', '.join(f'SUM({c})' for c in ROLLUP_COLS)} FROM tag_delta WHERE {where} GROUP BY {group} "
                      f"ORDER BY {group} ON CONFLICT ({', '.join(TAG_ROLLUP_KEYS)}) DO UPDATE SET "
                      f"{', '.join(f'{c} = tag_rollups.{c} + excluded.{c}' for c in ROLLUP_COLS)}")
                for tag in TAG_ROLLUPS
                for value, where, group in [(tag or "''", f"{tag} <> ''" if tag else "1 = 1", ", ".join(
                    ["tenant", "developer", *([tag] if tag else []), "day", "project", "model", "regime"]))]]


def _apply(db: sqlite3.Connection, items: list[tuple[int, dict, str, str, str | None]]) -> list[tuple[bool, str]]:
    """Make raw events canonical or superseded. items: (raw_id, event, key, received_at, day zone).
    Returns (deduped, event_id) per item.

    Nearly every call arrives once, so rows are inserted first (ON CONFLICT DO NOTHING);
    only when some were not inserted are their keys looked up and resolved in order.
    """
    rows = [normalize(event, key, raw_id, at, zone) for raw_id, event, key, at, zone in items]
    cols = ", ".join(EVENT_COLUMNS)
    before = db.total_changes
    # in key order (stable: a key's first copy in the batch still goes in): concurrent writers lock alike
    dialect_of(db).insert_rows(db, "events", EVENT_COLUMNS, sorted(rows, key=lambda r: r[_KEY_AT]),
                               "ON CONFLICT (dedup_key) DO NOTHING")
    rollups = Rollups()  # written without the tag grains: new rows are folded later (0020)
    if db.total_changes - before == len(rows):
        for row in rows:
            rollups.add(row, +1)
        groups = rollups.groups[0]
        deltas = rollups.write(db, tags=False)
        batch, last, token = min(r[_RAW_AT] for r in rows), max(r[_RAW_AT] for r in rows), _token()
        if last - batch + 1 == len(rows):  # raw ids batch..last, nobody else's between: one row for all
            db.execute("INSERT INTO rollup_batches (fresh, last, owner) VALUES (?, ?, ?)", (batch, last, token))
            _hold(token, rows, (groups, deltas))  # its fold sums nothing again: these are its groups
        else:
            _defer(db, sorted((r[_RAW_AT], batch, token) for r in rows))
            _hold(token, rows)
        return [(False, row[_EVENT_ID_AT]) for row in rows]
    keys = sorted({r[_KEY_AT] for r in rows})
    current: dict[str, tuple] = {}
    lock = dialect_of(db).lock_rows
    for chunk, marks in _in_lists(keys):
        for r in db.execute(f"SELECT {cols} FROM events WHERE dedup_key IN ({marks}) ORDER BY dedup_key{lock}",
                            chunk):
            current[r[_KEY_AT]] = r
    # the rows this batch inserted, by raw id; every other row met an existing copy
    inserted = {r[_RAW_AT] for r in current.values()} & {r[_RAW_AT] for r in rows}
    results = []
    state: dict[str, tuple] = {}  # the canonical row per key as of each step, replayed in batch order
    replaces, superseded = {}, []
    for row in rows:
        key = row[_KEY_AT]
        results.append((row[_RAW_AT] not in inserted, row[_EVENT_ID_AT]))
        if row[_RAW_AT] in inserted:
            state[key] = row
            rollups.add(row, +1)
            continue
        old = state.get(key) or current[key]
        reason = _wins(row, old)
        if reason and row[_DAY_AT] != old[_DAY_AT] and row[_OCCURRED_AT] == old[_OCCURRED_AT]:
            # a day already filed never moves for a zone (its zone was pinned); a copy logged at another
            # time (the final streaming snapshot, past midnight) is filed under its own time's day, as
            # the laptop's reports date the call by the snapshot they keep
            row = (*row[:_DAY_AT], old[_DAY_AT], *row[_DAY_AT + 1:])
        if reason:
            superseded.append((old[_RAW_AT], key, reason, NORMALIZATION_VERSION))
            rollups.add(old, -1)
            rollups.add(row, +1)
            state[key] = replaces[key] = row
        else:
            superseded.append((row[_RAW_AT], key, "duplicate" if row[_PRIORITY_AT] == old[_PRIORITY_AT]
                               else "lower_priority", NORMALIZATION_VERSION))
    db.executemany(f"UPDATE events SET {', '.join(f'{c} = ?' for c in EVENT_COLUMNS[1:])} WHERE dedup_key = ?",
                   [(*r[1:], r[0]) for _k, r in sorted(replaces.items())])
    db.executemany("INSERT INTO superseded_events (raw_id, dedup_key, reason, normalization_version) "
                   "VALUES (?, ?, ?, ?)", sorted(superseded))
    if superseded:
        db.execute("INSERT INTO settings (key, value) VALUES ('superseded_count', ?) ON CONFLICT (key) DO UPDATE "
                   "SET value = CAST(CAST(settings.value AS INTEGER) + ? AS TEXT)", (len(superseded), len(superseded)))
    rollups.write(db, tags=False)
    _defer_replacing(db, state, {k: r for k, r in current.items() if r[_RAW_AT] not in inserted},
                     min(r[_RAW_AT] for r in rows))
    return results


def _in_lists(values: list, size: int = 500) -> Iterator[tuple[list, str]]:
    """(chunk, its "?, ?, ..." placeholders): an IN list of at most `size` values, within every engine's
    limit on parameters."""
    for i in range(0, len(values), size):
        chunk = values[i:i + size]
        yield chunk, ", ".join("?" * len(chunk))


def _defer(db: sqlite3.Connection, pending: list[tuple]) -> None:
    """File canonical rows (raw_id, fresh, owner) for the next fold (0020), in raw id order."""
    if pending:
        dialect_of(db).insert_rows(db, "rollup_pending", PENDING_COLS, pending)


def _defer_replacing(db: sqlite3.Connection, state: dict[str, tuple], before: dict[str, tuple], batch: int) -> None:
    """The pending rows of a batch that met existing copies: each key's canonical row as the batch left it.
    A replaced row still pending leaves the queue (it never reached the tag grains) and hands its `fresh`
    on; one already folded is taken back from the tag, hour and sub-agent grains at once (its session,
    counted on the first call as first received, stays)."""
    queued: dict[int, int] = {}
    ids = sorted(before[k][_RAW_AT] for k in state if k in before)  # the rows replaced
    _explode(db, ids)
    for chunk, marks in _in_lists(ids):
        # (the rows this statement took out of the queue, not the ones a read saw there: on PostgreSQL a
        # fold that committed in between, which a read does not wait for, has summed them already, and they
        # are taken back below like any row folded before)
        queued.update(db.execute(f"DELETE FROM rollup_pending WHERE raw_id IN ({marks}) RETURNING raw_id, fresh",
                                 chunk).fetchall())
    takeback = Rollups()
    pending, token = [], _token()
    for key, row in state.items():
        old = before.get(key)
        if old is None:
            pending.append((row[_RAW_AT], batch, token))
        elif old[_RAW_AT] in queued:
            pending.append((row[_RAW_AT], queued[old[_RAW_AT]], token))
        else:
            takeback.add(old, -1)
            pending.append((row[_RAW_AT], 0, token))
    _defer(db, sorted(pending))
    _hold(token, state.values())
    takeback.write(db, grains=False)


def _explode(db: sqlite3.Connection, ids: list[int]) -> None:
    """The pending batches holding any of these raw ids (sorted) filed again as one row per call, with
    their fresh and owner, so the per-call logic can take a replaced call out (rare: a copy that wins
    over a call not yet folded). PostgreSQL: a batch two writers explode at once is filed once (the
    second's DELETE, after the first commits, finds no row)."""
    if not ids:
        return
    for fresh, last, owner in db.execute("SELECT fresh, last, owner FROM rollup_batches WHERE fresh <= ? AND "
                                         "last >= ? ORDER BY fresh", (ids[-1], ids[0])).fetchall():
        i = bisect.bisect_left(ids, fresh)
        if i < len(ids) and ids[i] <= last and \
                db.execute("DELETE FROM rollup_batches WHERE fresh = ?", (fresh,)).rowcount == 1:
            _defer(db, [(raw_id, fresh, owner) for raw_id in range(fresh, last + 1)])


# Held rows (s24e): reading the pending rows back from `events` cost the fold more than the inline write it
# replaced, and the process that ingested a batch still has them. A token is random per batch (per `_apply`),
# so a queue row's (owner, raw_id) names one content that never changes: a row held under that token is the
# row stored. Another process, a restart, a rolled-back batch whose ids were taken again, a replaced row or a
# replay file other tokens, which this process does not hold: the fold reads those back. Bounded: past
# HOLD_MAX rows (0.8-1.3 kB each with their batch's groups: FOLD_AFTER's queue and the batch that crosses it,
# 50-80 MB) the oldest batches are let go (read back if still pending); `nomira serve`'s fold thread lets go
# every 2 s.
HOLD_MAX = 60_000
_HELD: dict[int, dict[int, tuple]] = {}  # token -> raw_id -> canonical row, oldest batch first
_GROUPED: dict[int, tuple[dict, list]] = {}  # token of a whole batch -> its Rollups groups and deltas
_held = [0, threading.Lock()]  # rows held, the lock for _HELD's changes
os.register_at_fork(after_in_child=lambda: _held.__setitem__(1, threading.Lock()))


def _token() -> int:
    return int.from_bytes(os.urandom(8), "big") >> 1  # 63 bits: a signed 64-bit integer in both engines


def _hold(token: int, rows: Iterable[tuple], grouped: tuple[dict, list] | None = None) -> None:
    held = {r[_RAW_AT]: r for r in rows}
    with _held[1]:
        _HELD[token] = held
        if grouped is not None:
            _GROUPED[token] = grouped
        _held[0] += len(held)
        while _held[0] > HOLD_MAX and _HELD:
            oldest = next(iter(_HELD))
            _held[0] -= len(_HELD.pop(oldest))
            _GROUPED.pop(oldest, None)


def _let_go(tokens: Iterable[int]) -> None:
    with _held[1]:
        for token in tokens:
            _held[0] -= len(_HELD.pop(token, ()))
            _GROUPED.pop(token, None)


# --- the fold (0020): pending canonical rows summed into the tag, hour and sub-agent grains and sessions ---
FOLD_AFTER = 50_000  # pending rows an ingest folds at (after its commit), so no page read meets a long queue
_FOLD_CHUNK = 20_000  # rows per pass, whole batches (bounded memory)


def pending_rows(db: sqlite3.Connection) -> bool:
    return any(db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("rollup_batches", "rollup_pending"))


def oldest_pending(db: sqlite3.Connection) -> int | None:
    """The lowest raw id still pending (raw ids grow: the span to the newest bounds the queue)."""
    ids = [db.execute(sql).fetchone()[0] for sql in ("SELECT MIN(fresh) FROM rollup_batches",
                                                    "SELECT MIN(raw_id) FROM rollup_pending")]
    return min((i for i in ids if i is not None), default=None)


def fold(db: sqlite3.Connection) -> int:
    """Fold the pending rows (0020) in a transaction of its own; the rows folded (0: none pending).
    Called before a view reads a table the fold feeds, so every figure is as if summed on ingest."""
    if not pending_rows(db):
        return 0
    return engine.write_transaction(db, lambda: fold_in(db))


def fold_loop(target, stop, interval: float = 2.0, log=None) -> None:
    """The collector's background fold (a thread of `nomira serve`): every `interval` seconds, the calls
    ingested meanwhile are folded, so neither an ingest nor a view waits for them; until `stop` (a
    threading.Event) is set. A failure is logged and tried again at the next turn, never raised."""
    import sys
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    db = None
    while not stop.wait(interval):
        try:
            db = db or open_db(target)
            fold(db)
        except Exception as exc:  # the server keeps serving; a view folds what is left
            log(f"nomira: folding the tag rollups failed: {engine.first_line(exc)} (next try in {interval:.0f} s)")
            if db is not None:
                db.close()
            db = None
    if db is not None:
        db.close()


def fold_in(db: sqlite3.Connection) -> int:
    """`fold` inside the caller's write transaction. PostgreSQL: the queue is locked against ingests
    (which file rows in it before touching a tag grain: no lock cycle) and other folds."""
    if dialect_of(db).name == "postgresql":
        db.execute("LOCK TABLE rollup_batches, rollup_pending IN EXCLUSIVE MODE")
    n = 0
    while True:
        singles = db.execute("SELECT fresh, raw_id, owner FROM rollup_pending LIMIT ?", (_FOLD_CHUNK + 1,)).fetchall()
        bound, where = None, ""
        if len(singles) > _FOLD_CHUNK:  # a long queue: whole batches up to a bound, in passes
            bound = db.execute("SELECT fresh FROM rollup_pending ORDER BY fresh LIMIT 1 OFFSET ?",
                               (_FOLD_CHUNK - 1,)).fetchone()[0]
            where = " WHERE fresh <= ?"
            singles = db.execute(f"SELECT fresh, raw_id, owner FROM rollup_pending{where}", (bound,)).fetchall()
        batches = db.execute(f"SELECT fresh, last, owner FROM rollup_batches{where}",
                             () if bound is None else (bound,)).fetchall()
        if not singles and not batches:
            return n
        # batch by batch (fresh), each in raw id order, as the ingest would have written them; a batch is
        # either one rollup_batches row or rows per call (`_explode` leaves no row behind)
        groups: dict[int, list] = {fresh: [(fresh, last, owner)] for fresh, last, owner in batches}
        for q in sorted(singles):
            groups.setdefault(q[0], []).append(q)
        whole = {b[0] for b in batches}
        for fresh in sorted(groups):
            queue = groups[fresh]
            if fresh in whole:
                rows, grouped = _batch_rows(db, *queue[0])
                _fold_batch(db, rows, fresh > 0, grouped)
            else:
                _fold_batch(db, _queued_rows(db, queue), fresh=fresh > 0)
        for table in ("rollup_batches", "rollup_pending"):  # all of it read: no ingest runs meanwhile
            db.execute(f"DELETE FROM {table}{where}", () if bound is None else (bound,))
        n += len(singles) + sum(last - fresh + 1 for fresh, last, _o in batches)
        _let_go({owner for _f, _r, owner in singles} | {owner for _f, _l, owner in batches})


def _batch_rows(db: sqlite3.Connection, fresh: int, last: int, owner: int) -> tuple[list[tuple], tuple | None]:
    """A rollup_batches row's canonical rows (raw ids fresh..last) and, when held, the ingest's groups of
    them; else read back (None)."""
    held = _HELD.get(owner)
    if held is not None and len(held) == last - fresh + 1:
        try:
            return [held[raw_id] for raw_id in range(fresh, last + 1)], _GROUPED.get(owner)
        except KeyError:
            pass
    return [r[1:] for r in db.execute(_FOLD_ROWS.format("BETWEEN ? AND ? ORDER BY r.id"), (fresh, last))], None


def _queued_rows(db: sqlite3.Connection, queue: list[tuple]) -> list[tuple]:
    """One batch's canonical rows, in raw id order: held ones from memory, the rest read back."""
    rows = [_HELD.get(owner, {}).get(raw_id) for _f, raw_id, owner in queue]
    missing = [q[1] for q, row in zip(queue, rows) if row is None]
    if missing:
        read = {}
        for chunk, marks in _in_lists(missing):
            read.update((r[0], r[1:]) for r in db.execute(_FOLD_ROWS.format(f"IN ({marks})"), chunk))
        rows = [row or read[q[1]] for q, row in zip(queue, rows)]
    return rows


# pending rows read back (not held: filed by another process, or before a restart), with the columns the
# grains and sessions read (the rest NULL; allowance NULL: the limits were written on ingest)
_FOLD_READS = {*Rollups.FINE[:-1], "tool_name", *TAG_ROLLUPS[1:], *TOKEN_FIELDS, "cost_usd", "occurred_at",
               "is_sidechain", "session_id", "dedup_key"}
_FOLD_ROWS = (f"SELECT r.id, {', '.join(f'e.{c}' if c in _FOLD_READS else 'NULL' for c in EVENT_COLUMNS)} "
              "FROM raw_events r JOIN events e ON e.dedup_key = r.dedup_key WHERE r.id {}")


def _fold_batch(db: sqlite3.Connection, rows: list[tuple], fresh: bool, grouped: tuple | None = None) -> None:
    """One batch's canonical rows into the tag, hour and sub-agent grains, and the sessions they start:
    the same deltas, summed in the same order, as when they were written on ingest (before 0020).
    grouped: the (groups, deltas) the ingest made of these very rows (held), not made again."""
    rollups = Rollups()
    if grouped is None:
        for row in rows:
            rollups.add(row, +1)
        rollups.write(db, grains=False)
    else:
        rollups.groups = (grouped[0], {})
        rollups.write(db, grains=False, deltas=grouped[1])
    if fresh:
        _count_new_sessions(db, rows)


# --- one call reported by telemetry and by a transcript (0013) ---

LINK_WINDOW_S = 300  # a transcript line and the telemetry event of one request are seconds apart, never minutes
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SCAN = ("dedup_key", "source", "request_id", "session_id", "model", "occurred_at", "input", "output", "cache_read",
         "cache_write_5m", "cache_write_1h")


def _telemetry(e: dict) -> bool:
    """A copy from agent telemetry: usage (and for Claude Code a request id) but not the message id
    transcripts are keyed on (Codex rollouts have none either: their copies are keyed on usage)."""
    return not e.get("message_id") and e.get("source_channel") == "otlp"


def _fingerprint(source, session, model, tokens) -> str:
    """Exact usage of one call in one session; cache writes summed (telemetry does not split them by TTL)."""
    return "fp:" + "|".join(map(str, (source, session, model, tokens[0], tokens[1], tokens[2], tokens[3] + tokens[4])))


def _links(e: dict, telemetry: bool, fingerprints: bool = True) -> list[str]:
    """What a copy is found by: its request id; without one (older Claude Code builds), its fingerprint.
    A transcript copy also looks for the fingerprint of a telemetry copy that had no request id
    (`fingerprints`: only where the tenant has such copies)."""
    req = ["req:" + e["source"] + ":" + e["request_id"]] if e.get("request_id") else []
    if (telemetry and req) or not fingerprints or not e.get("session_id"):
        return req
    t = e.get("tokens") or {}
    return req + [_fingerprint(e["source"], e["session_id"], e["model"], [int(t.get(k, 0)) for k in _SCAN[6:]])]


def _nearest(candidates: list[tuple[str, str]], link: str, at: datetime, window: float = LINK_WINDOW_S) -> str | None:
    """The key of the copy a link points at: any for a request id; the nearest within the window for a
    fingerprint (two calls of one session with identical usage minutes apart stay two calls)."""
    if link.startswith("req:"):
        return candidates[0][1] if candidates else None
    best = min(((abs((parse_timestamp(t) - at).total_seconds()), k) for t, k in candidates), default=None)
    return best[1] if best is not None and best[0] <= window else None


def _taken(db: sqlite3.Connection, key: str, own: str, telemetry: bool) -> bool:
    """Whether the call under `key` already has a copy from the same side (telemetry, or the agent's own
    record) that is another call than `own`: a fingerprint joins one telemetry copy to one record."""
    return any(dedup_key(json.loads(body)) != own for body, in db.execute(
        f"SELECT body FROM raw_events WHERE dedup_key = ? AND source_channel {'=' if telemetry else '<>'} 'otlp'",
        (key,)))


def _link_copies(db: sqlite3.Connection, events: list[dict], keys: list[str]) -> list[str]:
    """Claude Code's telemetry (`claude_code.api_request`: request id, no message id) and its transcript
    (message id + request id) give one call two dedup keys; so do Codex's (`codex.sse_event`: no id) and
    its rollout (keyed on usage and time). The later copy is filed under the key of the copy already
    stored, in either arrival order; source priority then keeps one canonical row and the other copy
    superseded. Match: same tenant, source and request id; without one, same session, model and exact
    token counts within LINK_WINDOW_S, one to one (docs/CAPTURE.md, "One call, several channels")."""
    tele = {i for i, e in enumerate(events) if _telemetry(e)}
    if not tele and db.execute("SELECT 1 FROM call_links LIMIT 1").fetchone() is None:
        return keys  # a store that never took telemetry: one indexed probe per batch
    todo, bare = [], {}  # bare: whether a tenant has telemetry copies without a request id
    for i, e in enumerate(events):
        telemetry = i in tele
        tenant = (e.get("tags") or {}).get("tenant") or ""
        if tenant not in bare:
            bare[tenant] = db.execute("SELECT 1 FROM call_links WHERE tenant = ? AND link = 'fp' LIMIT 1",
                                      (tenant,)).fetchone() is not None  # the marker written below
        links = _links(e, telemetry, telemetry or bare[tenant])
        if links:
            todo.append((i, e, tenant, links))
    stored: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for tenant in sorted(bare):
        links = sorted({link for _i, _e, t, links in todo if t == tenant for link in links})
        for chunk, marks in _in_lists(links):
            for link, at, key in db.execute(f"SELECT link, occurred_at, dedup_key FROM call_links WHERE tenant = ? "
                                            f"AND link IN ({marks}) ORDER BY occurred_at, dedup_key", (tenant, *chunk)):
                stored.setdefault((tenant, link), []).append((at, key))
    own, keys, scan, new = keys, list(keys), [], []
    for i, e, tenant, links in todo:
        if i not in tele and not any((tenant, link) in stored for link in links):
            continue  # nearly every transcript copy: no telemetry copy to join
        at = parse_timestamp(e["occurred_at"])
        # a telemetry copy finds its own earlier copy (a re-sent export: the same time); a transcript copy, the
        # telemetry copy of its call
        window = 0 if i in tele else LINK_WINDOW_S
        key = next(filter(None, (_nearest([c for c in stored.get((tenant, link), []) if link.startswith("req:")
                                           or i in tele or not _taken(db, c[1], own[i], False)], link, at, window)
                                 for link in links)), None)
        if key is not None:
            keys[i] = key
        elif i in tele:
            scan.append((i, e, tenant, at, own[i]))
            new += [(tenant, link, at.isoformat(), i) for link in links]
    for i, key in _transcript_copies(db, scan):
        keys[i] = key
    # a tenant's first fingerprint link also writes the marker "fp": from then on its transcript copies
    # look fingerprints up too (an equality probe: a range over link would depend on PostgreSQL's collation)
    marks = sorted({tenant for tenant, link, _at, _i in new if link.startswith("fp:") and not bare.get(tenant)})
    if new:
        db.executemany("INSERT INTO call_links (tenant, link, occurred_at, dedup_key) VALUES (?, ?, ?, ?)",
                       [(tenant, link, at, keys[i]) for tenant, link, at, i in new] + [(t, "fp", "", "") for t in marks])
    return keys


def _transcript_copies(db: sqlite3.Connection, scan: list[tuple[int, dict, str, datetime, str]]):
    """(index, key) of stored copies from the agent's own records (not telemetry) of new telemetry copies: one read of
    the tenant's rows of those days and sessions per 400 copies (telemetry batches only)."""
    for n in range(0, len(scan), 400):
        part = scan[n:n + 400]
        for tenant in sorted({t for _i, _e, t, _a, _o in part}):
            mine = [(i, e, at, o) for i, e, t, at, o in part if t == tenant]
            days = sorted({(at + timedelta(days=d)).date().isoformat() for _i, _e, at, _o in mine for d in (-1, 0, 1)})
            requests = sorted({e["request_id"] for _i, e, _a, _o in mine if e.get("request_id")})
            bare = [(e, at) for _i, e, at, _o in mine if not e.get("request_id") and e.get("session_id")]
            sessions = sorted({e["session_id"] for e, _a in bare})
            slack = timedelta(seconds=LINK_WINDOW_S + 1)
            span = (min(at for _e, at in bare) - slack, max(at for _e, at in bare) + slack) if bare else None
            rows = db.execute(
                f"SELECT {', '.join(_SCAN)} FROM events WHERE tenant = ? AND day IN ({', '.join('?' * len(days))}) "
                f"AND source_channel <> 'otlp' AND (request_id IN ({', '.join('?' * len(requests)) or 'NULL'}) "
                f"OR session_id IN ({', '.join('?' * len(sessions)) or 'NULL'}) AND occurred_at BETWEEN ? AND ?) "
                f"ORDER BY occurred_at, dedup_key",
                (tenant, *days, *requests, *sessions, *(at.isoformat() for at in span or (_EPOCH, _EPOCH)))).fetchall()
            by_link: dict[str, list[tuple[str, str]]] = {}
            for key, source, request, session, model, at, *tokens in rows:
                if request:
                    by_link.setdefault(f"req:{source}:{request}", []).append((at, key))
                if session:
                    by_link.setdefault(_fingerprint(source, session, model, tokens), []).append((at, key))
            for i, e, at, o in mine:
                link = _links(e, True)
                found = [c for c in by_link.get(link[0], []) if link[0].startswith("req:")
                         or not _taken(db, c[1], o, True)] if link else []
                key = _nearest(found, link[0], at) if link else None
                if key is not None:
                    yield i, key


def ingest(db: sqlite3.Connection, events: Iterable[dict], tenant: str | None = None,
           day_zone: str | None = None) -> tuple[int, int]:
    """Store validated wire events; `tenant`, when given, is forced onto every event.

    Returns (accepted, deduped). Idempotent: the same events twice add no rows to `events`.
    A developer's calls are filed under the day of their pinned day zone, if any (0017), else UTC;
    `day_zone`: the zone the events came from (an export's), as a shipped batch's (`ingest_batch`).
    """
    results = ingest_batch(db, events, tenant, day_zone)[0]
    deduped = sum(d for d, _ in results)
    return len(results) - deduped, deduped


def scoped(db: sqlite3.Connection, records: Iterable[dict], tenant: str | None = None) -> list[dict]:
    """Records as this store keeps them: the key's tenant forced (when given), the developer hashed
    when the store hashes identifiers. Usage events and limit snapshots alike."""
    hash_key = setting_value(db, "identifier_hash_key") if setting_value(db, "hash_identifiers") == "1" else None
    out = []
    for r in records:
        if tenant is not None:
            r = dict(r, tags=dict(r.get("tags") or {}, tenant=tenant))
        if hash_key:
            r = _hash_identifiers(r, hash_key)
        out.append(r)
    return out


def ingest_batch(db: sqlite3.Connection, events: Iterable[dict], tenant: str | None = None,
                 day_zone: str | None = None, repin: bool = False) -> tuple[list[tuple[bool, str]], list[str]]:
    """`ingest` of a batch shipped from a machine in `day_zone` (a validated IANA name, or None: not
    said), answering (deduped, event_id) per event, in order, and the day-zone notes (`pin_day_zones`)."""
    received_at = _now()
    prepared = [(_COMPACT(e), e) for e in scoped(db, events, tenant)]
    keys = [dedup_key(e) for _b, e in prepared]
    randomness = os.urandom(16 * len(prepared)).hex()  # raw_event_id: a version-4 UUID each
    provenance = [_provenance(e, body, _uuid_text(randomness[32 * i:32 * i + 32], 4))
                  for i, (body, e) in enumerate(prepared)]
    def write():  # under the write lock; again after a deadlock between concurrent writers (PostgreSQL)
        filed = _link_copies(db, [e for _b, e in prepared], keys)
        zones, notes = pin_day_zones(db, [e for _b, e in prepared], day_zone, repin, received_at)
        filed_in = [zones.get(_pair(e)) for _b, e in prepared] if zones else [None] * len(prepared)
        # ids assigned here, inside the write transaction (SQLite: dense; PostgreSQL: a sequence)
        ids = dialect_of(db).next_raw_ids(db, len(prepared))
        raws = [(i, received_at, key, body, *p, z)
                for i, (body, _e), key, p, z in zip(ids, prepared, filed, provenance, filed_in)]
        items = [(i, e, key, received_at, z) for i, (_b, e), key, z in zip(ids, prepared, filed, filed_in)]
        dialect_of(db).insert_rows(db, "raw_events", (*RAW_COLUMNS, "day_zone"), raws)
        return _apply(db, items), notes, ids
    result, notes, ids = engine.write_transaction(db, write)
    # raw ids grow: the span from the oldest pending row bounds the queue
    if ids and ids[-1] - (oldest_pending(db) or ids[-1]) >= FOLD_AFTER:
        try:
            fold(db)
        except engine.errors():  # the batch is stored: a later fold (a view, the serve thread) does it
            pass
    return result, notes


# --- pinned day boundaries (0017) ---

def _pair(event: dict) -> tuple[str, str]:
    tags = event.get("tags") or {}
    return tags.get("tenant") or "", tags.get("developer") or ""


def pin_day_zones(db: sqlite3.Connection, events: list[dict], zone: str | None, repin: bool,
                  now: str) -> tuple[dict[tuple[str, str], str], list[str]]:
    """The zone each (tenant, developer) of `events` has its calls filed under, and what to tell the
    shipper. A developer's first batch that names a zone pins it; a batch from another zone is filed
    under the pinned one (said once per new zone, in a note); `repin` moves the pin to `zone` from
    this batch on (days already filed never move: `_apply` keeps a stored call's day). A batch that
    names no zone (an older nomira, an import) pins nothing. Inside the ingest transaction."""
    pairs = sorted({_pair(e) for e in events})
    if zone:
        db.executemany("INSERT INTO day_zones (tenant, developer, zone, pinned_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (tenant, developer) DO NOTHING", [(t, d, zone, now) for t, d in pairs])
    lock = dialect_of(db).lock_rows if zone else ""
    zones, notes = {}, []
    for tenant, developer in pairs:
        row = db.execute(f"SELECT zone, pinned_at, noted_zone FROM day_zones WHERE tenant = ? AND developer = ?{lock}",
                         (tenant, developer)).fetchone()
        if row is None:
            continue
        pinned, since, noted = row
        who = f" for developer {developer}" if developer else ""
        if zone is None or zone == pinned:
            if zone and noted:  # back in the pinned zone: a later trip is said again
                db.execute("UPDATE day_zones SET noted_zone = NULL WHERE tenant = ? AND developer = ?",
                           (tenant, developer))
        elif repin:
            db.execute("UPDATE day_zones SET zone = ?, pinned_at = ?, noted_zone = NULL WHERE tenant = ? AND "
                       "developer = ?", (zone, now, tenant, developer))
            notes.append(f"day boundary{who} re-pinned to {zone} (was {pinned}): calls from now on are filed "
                         f"under {zone} days; days already filed do not move")
            pinned = zone
        elif noted != zone:
            db.execute("UPDATE day_zones SET noted_zone = ? WHERE tenant = ? AND developer = ?",
                       (zone, tenant, developer))
            notes.append(f"day boundary{who} pinned to {pinned} since {since[:10]}; this laptop is in {zone}; "
                         f"calls are filed under {pinned} days; use --repin-day-zone to change")
        zones[(tenant, developer)] = pinned
    return zones, notes


def day_zone_of(db: sqlite3.Connection, developer: str, tenant: str = "") -> dict | None:
    """A developer's pinned day zone: {"zone", "pinned_at"}, or None when none is pinned."""
    row = db.execute("SELECT zone, pinned_at FROM day_zones WHERE tenant = ? AND developer = ?",
                     (tenant, developer)).fetchone()
    return {"zone": row[0], "pinned_at": row[1]} if row else None


# --- identifier hashing (optional, per store) ---

HASHED_IDENTIFIERS = ("tags.developer", "account_id")  # what joins never need in clear (emails, org ids)


def enable_identifier_hashing(db: sqlite3.Connection) -> bool:
    """From now on, store developer names and account ids as keyed hashes (HMAC-SHA256 under a key
    born here, kept in `settings`): the same person stays one name, which no one can read back.
    One-way on purpose: turning it off would split each developer in two. True if newly enabled."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO settings (key, value) VALUES ('identifier_hash_key', ?) ON CONFLICT (key) DO NOTHING",
                   (secrets.token_hex(32),))
        changed = db.execute("INSERT INTO settings (key, value) VALUES ('hash_identifiers', '1') "
                             "ON CONFLICT (key) DO NOTHING").rowcount
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return bool(changed)


def _hash_identifiers(event: dict, key: str) -> dict:
    def digest(value: str) -> str:
        return "h-" + hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:20]
    tags = event.get("tags") or {}
    if tags.get("developer"):
        event = dict(event, tags=dict(tags, developer=digest(tags["developer"])))
    if event.get("account_id"):
        event = dict(event, account_id=digest(event["account_id"]))
    return event


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


def _rebuild_views(db: sqlite3.Connection) -> None:
    """Recompute the serving views (0010) from `events`."""
    sums = ", ".join(["COUNT(*)", *(f"SUM({t})" for t in TOKEN_FIELDS), "SUM(COALESCE(cost_usd, 0))",
                      "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"])
    db.execute("DELETE FROM daily_views")
    for view, col in (("provider", "provider"), ("tool", "tool_name")):
        db.execute(f"INSERT INTO daily_views SELECT ?, tenant, day, {col}, {sums} FROM events "
                   f"GROUP BY tenant, day, {col}", (view,))
    db.execute("DELETE FROM current_limits")
    rollups = Rollups()
    # the columns up to the ledger's: this also runs inside migration 0010, before later columns exist
    for row in db.execute(f"SELECT {', '.join(EVENT_COLUMNS[:COL['normalization_version'] + 1])} FROM events "
                          "WHERE allowance IS NOT NULL"):
        rollups.add(row, +1)
    for groups in rollups.groups:  # the limits only
        groups.clear()
    rollups.write(db)


def replay(db: sqlite3.Connection, batch: int = 5000) -> dict:
    """Rebuild `events`, `rollups` and the superseded marks from `raw_events`, deterministically (id
    order, ids derived from dedup keys), under today's NORMALIZATION_VERSION; report what changed."""
    cols = ", ".join(EVENT_COLUMNS)
    db.execute("BEGIN IMMEDIATE")
    try:
        dialect_of(db).no_timeout(db)
        fold_in(db)  # the rows of lost days stay as they are, folded
        versions = [r[0] for r in db.execute("SELECT DISTINCT normalization_version FROM events "
                                             "ORDER BY normalization_version")]
        db.execute("DROP TABLE IF EXISTS temp.replay_before")
        db.execute(f"CREATE TEMP TABLE replay_before AS SELECT {cols} FROM events")
        # the comparison joins on dedup_key: without an index replay grew with the square of the store
        db.execute("CREATE INDEX replay_before_key ON replay_before (dedup_key)")
        # days whose raw rows retention pruned are kept as they are (events, rollups, views, marks):
        # rebuilt from what is left they would lose calls
        lost = retention.lost_days(db)
        db.execute("DROP TABLE IF EXISTS temp.replay_lost")
        db.execute("CREATE TEMP TABLE replay_lost (day TEXT PRIMARY KEY)")
        db.executemany("INSERT INTO temp.replay_lost (day) VALUES (?)", [(d,) for d in lost])
        kept = "day IN (SELECT day FROM temp.replay_lost)"
        db.execute(f"DELETE FROM events WHERE NOT {kept}")
        db.execute(f"DELETE FROM rollups WHERE NOT {kept}")
        db.execute(f"DELETE FROM tag_rollups WHERE NOT {kept}")
        db.execute(f"DELETE FROM session_counts WHERE NOT {kept}")
        db.execute(f"DELETE FROM usage_sessions WHERE NOT {kept}")
        db.execute(f"DELETE FROM session_models WHERE NOT {kept}")
        db.execute(f"DELETE FROM daily_views WHERE NOT {kept}")
        db.execute(f"DELETE FROM hour_rollups WHERE NOT {kept}")
        db.execute(f"DELETE FROM sidechain_rollups WHERE NOT {kept}")
        if not lost:
            db.execute("DELETE FROM current_limits")  # else kept: newer snapshots replace them as they replay
        db.execute("DELETE FROM superseded_events WHERE dedup_key NOT IN (SELECT dedup_key FROM events)")
        db.execute("DELETE FROM settings WHERE key = 'superseded_count'")
        if lost:
            db.execute("INSERT INTO settings (key, value) SELECT 'superseded_count', CAST(COUNT(*) AS TEXT) "
                       "FROM superseded_events")
        last, n = 0, 0
        while True:
            rows = db.execute(f"SELECT id, body, dedup_key, received_at, day_zone FROM raw_events r WHERE id > ? "
                              f"AND NOT EXISTS (SELECT 1 FROM events e WHERE e.dedup_key = r.dedup_key AND e.{kept}) "
                              "ORDER BY id LIMIT ?", (last, batch)).fetchall()
            if not rows:
                break
            _apply(db, [(i, json.loads(body), key, at, zone) for i, body, key, at, zone in rows])
            last, n = rows[-1][0], n + len(rows)
        fold_in(db)
        changes = _replay_changes(db)
        db.execute("DROP TABLE temp.replay_before")
        db.execute("DROP TABLE temp.replay_lost")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return {"replayed": n, "normalization_version": NORMALIZATION_VERSION, "previous_versions": versions,
            "lost_days": lost, **changes}


def _replay_changes(db: sqlite3.Connection) -> dict:
    """Canonical rows replay added, removed or changed, and how many changed in each column."""
    added = db.execute("SELECT COUNT(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM temp.replay_before b "
                       "WHERE b.dedup_key = e.dedup_key)").fetchone()[0]
    removed = db.execute("SELECT COUNT(*) FROM temp.replay_before b WHERE NOT EXISTS (SELECT 1 FROM events e "
                         "WHERE e.dedup_key = b.dedup_key)").fetchone()[0]
    diff = [f"(e.{c} IS NOT b.{c})" for c in EVENT_COLUMNS[1:]]  # PostgreSQL: IS DISTINCT FROM (PG_REWRITES)
    row = db.execute(f"SELECT COUNT(*), {', '.join(f'TOTAL(CASE WHEN {d} THEN 1 ELSE 0 END)' for d in diff)} "
                     f"FROM events e "
                     f"JOIN temp.replay_before b ON b.dedup_key = e.dedup_key WHERE {' OR '.join(diff)}").fetchone()
    return {"added": added, "removed": removed, "changed": row[0],
            "columns": {c: int(v) for c, v in zip(EVENT_COLUMNS[1:], row[1:]) if v}}


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


def canonical_event(db: sqlite3.Connection, event_id_: str) -> dict | None:
    """One canonical event by its UUID, under the design's column names."""
    cur = db.execute("SELECT * FROM canonical_events WHERE event_id = ?", (event_id_,))
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row)) if row else None


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


# --- budgets (nomira/alerts): spend in a time window --------------------------------

def _utc19(at: datetime) -> str:
    """The comparable prefix of a stored occurred_at (always UTC, as `_row` writes it)."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def window_spend(db: sqlite3.Connection, start: datetime, end: datetime, column: str | None = None,
                 value: str | None = None) -> tuple[float, int]:
    """(USD of the priced events, number of unpriced events) in [start, end), optionally where a tag
    column equals `value`."""
    # the UTC days first: a range of the collector's day-led index instead of a scan of every event
    where = "day >= ? AND day <= ? AND substr(occurred_at, 1, 19) >= ? AND substr(occurred_at, 1, 19) < ?"
    params = [_utc19(start)[:10], _utc19(end)[:10], _utc19(start), _utc19(end)]
    if column is not None:
        if column not in TAG_FIELDS:
            raise ValueError(column)
        where += f" AND {column} = ?"
        params.append(value or "")
    row = db.execute(f"SELECT TOTAL(cost_usd), TOTAL(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) FROM events WHERE {where}", params).fetchone()
    return float(row[0]), int(row[1])


def event_times(db: sqlite3.Connection, start: datetime, end: datetime) -> list[datetime]:
    rows = db.execute("SELECT occurred_at FROM events WHERE substr(occurred_at, 1, 19) >= ? AND "
                      "substr(occurred_at, 1, 19) < ? ORDER BY occurred_at", (_utc19(start), _utc19(end)))
    return [datetime.fromisoformat(r[0]) for r in rows]
