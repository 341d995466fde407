"""`nomira cursor fetch`: Cursor team usage from the Admin API into a store or a collector."""
from __future__ import annotations

import json
import os
import secrets
import sys
from datetime import date, datetime, timedelta, timezone
from nomira.ledger.engine import db_arg

from nomira import dirs
from nomira.cli import UserError

KEY_ENV = "NOMIRA_CURSOR_ADMIN_KEY"
HASH_KEY_ENV = "NOMIRA_DEVELOPER_HASH_KEY"


def add_arguments(name, p) -> None:
    p.add_argument("action", choices=["fetch"], help="fetch: import per-call usage from Cursor's Admin API")
    p.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day, UTC (default: 30 days ago)")
    p.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day, UTC, included (default: today)")
    p.add_argument("--developer-from", choices=["email", "name", "hash"], default="email",
                   help="developer tag from the user's email: as is, its local part, or a keyed hash")
    p.add_argument("--db", type=db_arg, default=None,
                   help="store: an SQLite file (default $XDG_DATA_HOME/nomira/nomira.db) or a postgresql:// URL")
    p.add_argument("--remote", metavar="URL", help="send to a collector (through the on-disk spool)")
    p.add_argument("--token", default=os.environ.get("NOMIRA_TOKEN"), help="collector API key ($NOMIRA_TOKEN)")
    p.set_defaults(func=cmd_cursor)


def _day(text: str | None, default: date, flag: str) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag} takes a day as YYYY-MM-DD: {text!r}") from None


def window(args, today: date | None = None) -> tuple[int, int]:
    """[start, end) in epoch ms for the UTC days --from .. --to (both included)."""
    today = today or datetime.now(timezone.utc).date()
    end = _day(args.end, today, "--to")
    start = _day(args.start, end - timedelta(days=29), "--from")
    if start > end:
        raise UserError(f"--from {start} is after --to {end}")
    ms = lambda d: int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000)  # noqa: E731
    return ms(start), ms(end + timedelta(days=1))


def hash_key(args) -> bytes:
    """The key developer hashes are made with: configured ($NOMIRA_DEVELOPER_HASH_KEY), else one
    kept per store (in the store itself, or beside the state for a remote collector)."""
    if os.environ.get(HASH_KEY_ENV):
        return os.environ[HASH_KEY_ENV].encode()
    if args.remote:
        path = dirs.state_home() / "developer-hash.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip().encode()
    from nomira.ledger import store
    db = store.open_db(args.db or dirs.default_db())
    try:
        return store.setting(db, "developer_hash_key", lambda: secrets.token_hex(32)).encode()
    finally:
        db.close()


def fetch(args, base: str | None = None) -> tuple[list[dict], dict]:
    """(wire events, summary) for the requested window; CursorAPIError when an endpoint fails."""
    from nomira.pricing.feed import resolved
    from nomira.sources import cursor_admin as ca
    from nomira.ledger.wire import SchemaError, assert_no_content
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise UserError(f"set {KEY_ENV} to a Cursor team Admin API key (Cursor dashboard > Settings > "
                        "Admin API keys)")
    base = base or os.environ.get("NOMIRA_CURSOR_API") or ca.API
    start_ms, end_ms = window(args)
    stats = ca.FetchStats()
    table = resolved()
    rows = list(ca.fetch_usage_events(key, start_ms, end_ms, stats, base, page_size=ca.PAGE_SIZE))
    daily = ca.fetch_daily(key, start_ms, end_ms, stats, base)
    secret = hash_key(args) if args.developer_from == "hash" else b""  # after the fetch: a failed one writes nothing
    tags: dict[str, str] = {}

    def developer_of(email: str) -> str:
        if email not in tags:
            tags[email] = ca.developer_tag(email, args.developer_from, secret)
        return tags[email]
    events = ca.events_from_rows(rows, table, developer_of, stats)
    try:
        for e in events:
            assert_no_content(e)
    except SchemaError as exc:
        raise UserError(f"refusing to ship a Cursor event outside the schema: {exc} "
                        f"(try --developer-from hash)") from exc
    ca.coverage(daily, events, developer_of, stats)
    summary = {
        "window": {"from": datetime.fromtimestamp(start_ms / 1000, timezone.utc).date().isoformat(),
                   "to": (datetime.fromtimestamp(end_ms / 1000, timezone.utc).date() - timedelta(days=1)).isoformat()},
        "requests": stats.requests, "retries": stats.retries, "pages": stats.pages, "rows": stats.rows,
        "token_rows": stats.token_rows, "request_priced_rows": stats.request_rows,
        "request_priced_without_dollars": stats.no_dollar_rows,
        "request_units_without_dollars": stats.no_dollar_units,
        "skipped_rows": stats.bad_rows, "charged_usd": sum(e["cost_usd"] or 0.0 for e in events),
        "unknown_models": sorted(stats.unknown_models),
        "active_developer_days": stats.active_developer_days,
        "developer_days_with_events": stats.covered_developer_days,
        "cost_by_type_estimated": ca.estimated_split(events, table),
    }
    return events, summary


def cmd_cursor(args) -> int:
    from nomira.commands.ship import deliver, print_result
    from nomira.sources.cursor_admin import CursorAPIError
    try:
        events, summary = fetch(args)
    except CursorAPIError as exc:
        raise UserError(f"Cursor Admin API: {exc}") from exc
    result = deliver(args, events)
    if args.json:
        from nomira.reports.money import stamp
        print(json.dumps(stamp({**result, "cursor": summary})))
    else:
        s = summary
        print(f"nomira: Cursor {s['window']['from']}..{s['window']['to']}: {s['rows']} usage events "
              f"({s['token_rows']} token-based, {s['request_priced_rows']} request-priced with zero tokens), "
              f"charged ${s['charged_usd']:.2f}", file=sys.stderr)
        if s["request_priced_without_dollars"]:
            print(f"nomira: {s['request_priced_without_dollars']} request-priced events carry no dollar amount "
                  f"({s['request_units_without_dollars']:g} request units): shown unpriced, not converted by guess", file=sys.stderr)
        if s["skipped_rows"]:
            print(f"nomira: {s['skipped_rows']} rows without a usable timestamp skipped", file=sys.stderr)
        if s["unknown_models"]:
            print(f"nomira: models kept as Cursor named them (not in the price table): "
                  f"{', '.join(s['unknown_models'])}", file=sys.stderr)
        if s["active_developer_days"]:
            print(f"nomira: {s['developer_days_with_events']} of {s['active_developer_days']} active developer-days "
                  f"have per-call usage events", file=sys.stderr)
        print("nomira: Cursor states one charged amount per call; any split by token type is an estimate",
              file=sys.stderr)
        print_result(result)
    return 1 if result["error"] else 0
