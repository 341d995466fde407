"""`nomira prune`: apply the retention policy to a store (see nomira/ledger/retention.py)."""
from __future__ import annotations

import json
import os

from nomira import dirs
from nomira.cli import UserError
from nomira.ledger.engine import db_arg
from nomira.reports.money import stamp


def env_days(name: str, default: int) -> int:
    """A retention setting from the environment (NOMIRA_RETENTION_RAW_DAYS / _EVENTS_DAYS)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{name}={text!r} is not a whole number of days") from None


def add_retention_arguments(p) -> None:
    """The retention options `prune` and `serve` share."""
    from nomira.ledger.retention import EVENTS_DAYS, RAW_DAYS
    p.add_argument("--raw-days", type=int, default=None, metavar="N",
                   help=f"keep raw events N days (default {RAW_DAYS}; $NOMIRA_RETENTION_RAW_DAYS)")
    p.add_argument("--events-days", type=int, default=None, metavar="N",
                   help=f"keep canonical events N days (default {EVENTS_DAYS}; $NOMIRA_RETENTION_EVENTS_DAYS); "
                        "daily rollups are kept forever")


def retention_days(args) -> tuple[int, int]:
    from nomira.ledger import retention
    raw = args.raw_days if args.raw_days is not None else env_days("NOMIRA_RETENTION_RAW_DAYS", retention.RAW_DAYS)
    events = args.events_days if args.events_days is not None else \
        env_days("NOMIRA_RETENTION_EVENTS_DAYS", retention.EVENTS_DAYS)
    problem = retention.check_days(raw, events)
    if problem:
        raise UserError(problem)
    return raw, events


def add_arguments(name, p) -> None:
    p.add_argument("--db", type=db_arg, default=None,
                   help="store: an SQLite file (default $XDG_DATA_HOME/nomira/nomira.db) or a postgresql:// URL")
    add_retention_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="count what would be pruned, delete nothing")
    p.set_defaults(func=cmd_prune)


def cmd_prune(args) -> int:
    from nomira.ledger import retention, store
    raw_days, events_days = retention_days(args)
    db = store.open_db(args.db or dirs.default_db())
    r = retention.prune(db, raw_days, events_days, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(stamp(dict(r))))
        return 0
    verb = "would prune" if r["dry_run"] else "pruned"
    print(f"nomira: {verb} {r['raw_events_pruned']} raw event(s) received before {r['raw_cutoff']} and "
          f"{r['events_pruned']} canonical event(s) dated before {r['events_cutoff']}; rollups kept")
    return 0
