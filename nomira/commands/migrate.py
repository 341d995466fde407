"""`nomira migrate --from SRC --to DST`: copy a whole store to another engine (SQLite to
PostgreSQL, or back), then check that the copy holds the same rows and the same totals.

Every table the migrations made is copied as it is (raw events with their ids, so a replay
on the new engine gives the same canonical rows; the store id and dashboard secret, so
shippers and sessions carry on). The destination must be empty; the copy is one
transaction, so a failed run leaves it empty again.
"""
from __future__ import annotations

import json
import sys
import time

from nomira.cli import Failure, UserError
from nomira.ledger.engine import db_arg, dialect_of, redact

FIRST = ("tenants",)  # referenced by others (api_keys): copied before them
BATCH = 5000
TOKEN_SUMS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning")


def add_arguments(name, p) -> None:
    p.add_argument("--from", dest="source", type=db_arg, required=True, metavar="STORE",
                   help="the store to copy: sqlite:///team.db, a file path, or postgresql://...")
    p.add_argument("--to", dest="target", type=db_arg, required=True, metavar="STORE",
                   help="an empty store to copy into: postgresql://user@host/db (or an SQLite path)")
    p.set_defaults(func=cmd_migrate)


def _open(target, what: str):
    from pathlib import Path

    from nomira.ledger import engine, store
    if not engine.is_postgres(target):
        if what == "source" and not Path(target).is_file():
            raise Failure(f"no store at {target} (check --from)")
        if what == "target" and not Path(target).parent.is_dir():
            raise Failure(f"no folder {Path(target).parent} for {target} (check --to)")
    return store.open_db(target)


def checks(db) -> dict:
    """What must match after the copy: rows per table, event and rollup totals."""
    out = {"rows": {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                    for t in sorted(dialect_of(db).tables(db))}}
    sums = ", ".join(f"SUM({c})" for c in TOKEN_SUMS)
    ev = db.execute(f"SELECT {sums}, SUM(cost_usd) FROM events").fetchone()
    out["events"] = {**{c: int(v or 0) for c, v in zip(TOKEN_SUMS, ev)}, "cost_usd": float(ev[-1] or 0)}
    out["rollups"] = {g: {"calls": int(c or 0), "output": int(o or 0), "cost_usd": float(u or 0)} for g, c, o, u in
                      db.execute("SELECT grain, SUM(calls), SUM(output), SUM(cost_usd) FROM rollups GROUP BY grain "
                                 "ORDER BY grain")}
    return out


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):  # summed in another order by another engine
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


def copy_store(src, dst) -> dict:
    """Copy every table of `src` into the empty store `dst`, in one transaction; the row counts."""
    s_dialect, d_dialect = dialect_of(src), dialect_of(dst)
    tables = s_dialect.tables(src) - {"_nomira_migrations"}
    missing = tables - d_dialect.tables(dst)
    if missing:
        raise Failure(f"the destination has no table {', '.join(sorted(missing))} (different Nomira versions?)")
    busy = [t for t in ("events", "raw_events", "tenants", "bills")
            if t in tables and dst.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]
    if busy:
        raise Failure(f"the destination already holds {', '.join(busy)}: migrate into an empty store")
    order = [t for t in FIRST if t in tables] + sorted(tables - set(FIRST))
    copied = {}
    dst.execute("BEGIN IMMEDIATE")
    try:
        d_dialect.no_timeout(dst)
        for table in order:
            cur = src.execute(f"SELECT * FROM {table}")
            cols = [d[0] for d in cur.description]
            dst.execute(f"DELETE FROM {table}")  # what the fresh store's migrations seeded (settings) gives way
            n = 0
            while rows := cur.fetchmany(BATCH):
                d_dialect.copy_rows(dst, table, cols, rows)
                n += len(rows)
            if "id" in cols:
                d_dialect.reset_ids(dst, table)
            copied[table] = n
        dst.execute("COMMIT")
    except BaseException:
        dst.execute("ROLLBACK")
        raise
    return copied


def cmd_migrate(args) -> int:
    if str(args.source) == str(args.target):
        raise UserError("--from and --to name the same store")
    t0 = time.perf_counter()
    src, dst = _open(args.source, "source"), _open(args.target, "target")
    copied = copy_store(src, dst)
    before, after = checks(src), checks(dst)
    ok = _same(before, after)
    result = {"from": redact(args.source), "to": redact(args.target), "copied": copied, "verified": ok,
              "totals": after if ok else {"source": before, "destination": after},
              "seconds": round(time.perf_counter() - t0, 3)}
    if args.json:
        from nomira.reports.money import stamp
        print(json.dumps(stamp(result)))
    elif ok:
        print(f"nomira: copied {sum(copied.values()):,} rows ({copied.get('events', 0):,} events, "
              f"{copied.get('raw_events', 0):,} raw events) from {result['from']} to {result['to']}; "
              "counts and totals verified", file=sys.stderr)
    if not ok:
        diff = [k for k in before if not _same(before[k], after.get(k))]
        print(f"nomira: the copy in {result['to']} does not match the source ({', '.join(diff)} differ); "
              "do not switch to it", file=sys.stderr)
        return 1
    return 0
