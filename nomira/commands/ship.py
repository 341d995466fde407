"""`nomira ship | export | import | replay | tenant`: the usage-only event pipeline."""
from __future__ import annotations

import getpass
import json
import os
import sys
import time
from pathlib import Path

from nomira import paths
from nomira.cli import Run, UserError
from nomira.wire import TAG_FIELDS, SchemaError

TAG_NAMES = [t for t in TAG_FIELDS if t not in ("developer", "tenant", "project")]


def add_arguments(name, p) -> None:
    if name in ("ship", "export"):
        p.add_argument("--developer", default=None, help="developer tag (default: your login name)")
        p.add_argument("--tenant", default=None, help="tenant tag (a remote collector forces its own)")
        p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                       help=f"business tag, one of: {', '.join(TAG_NAMES)} (repeatable)")
    if name in ("ship", "import", "replay", "tenant"):
        p.add_argument("--db", type=Path, default=None, help="SQLite store (default $XDG_DATA_HOME/nomira/nomira.db)")
    if name == "ship":
        p.add_argument("--remote", metavar="URL", help="send to a collector (through the on-disk spool)")
        p.add_argument("--token", default=os.environ.get("NOMIRA_TOKEN"), help="collector API key ($NOMIRA_TOKEN)")
        p.add_argument("--watch", action="store_true", help="keep running: ship new usage every --interval seconds")
        p.add_argument("--interval", type=float, default=60.0, help="seconds between --watch rounds (default 60)")
        p.set_defaults(func=cmd_ship)
    elif name == "export":
        p.add_argument("file", help="where to write the events (- for stdout)")
        p.set_defaults(func=cmd_export)
    elif name == "import":
        p.add_argument("file", help="an events.json written by `nomira export`")
        p.add_argument("--tenant", default=None, help="force this tenant onto every event")
        p.set_defaults(func=cmd_import)
    elif name == "replay":
        p.set_defaults(func=cmd_replay)
    elif name == "tenant":
        p.add_argument("action", choices=["create", "list"])
        p.add_argument("name", nargs="?", help="tenant name (for create)")
        p.set_defaults(func=cmd_tenant)


def _tags(args, project_free=True) -> dict:
    tags = {"developer": args.developer or getpass.getuser()}
    if args.tenant:
        tags["tenant"] = args.tenant
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or key not in TAG_NAMES:
            raise UserError(f"--tag takes KEY=VALUE with KEY one of {', '.join(TAG_NAMES)}: {item!r}")
        tags[key] = value
    return tags


def wire_events(run: Run, tags: dict) -> list[dict]:
    from nomira.ship import validated
    from nomira.wire import to_wire
    events = run.collect().events
    regime = run.regime(events)
    try:
        return validated([to_wire(e, c, regime, tags) for e, c in run.priced(events)])
    except SchemaError as exc:
        raise UserError(f"refusing to ship an event outside the schema: {exc}") from exc


def _open_store(args):
    from nomira import store
    return store.open_db(args.db or paths.default_db())


def ship_once(args) -> dict:
    return deliver(args, wire_events(Run(args), _tags(args)))


def deliver(args, events: list[dict]) -> dict:
    """Validated wire events to the collector at `args.remote` (through the spool) or the store at
    `args.db`; the ledger skips what that destination already has."""
    from nomira import store
    from nomira.ship import Ledger, http_post
    from nomira.spool import Spool
    ledger = Ledger(paths.state_home() / "shipped.sqlite")
    if args.remote:
        dest = f"remote:{args.remote}"
        new = ledger.new_events(dest, events)
        spool = Spool(paths.state_home() / "spool")
        spool.put(new)
        ledger.mark(dest, new)  # durable in the spool now: delivery is the spool's job
        r = spool.flush(http_post(args.remote, args.token))
        return {"destination": args.remote, "new_events": len(new), "delivered": r.delivered,
                "dead_lettered": r.dead_lettered, "pending_batches": r.pending_batches, "error": r.error,
                "dead_letter_file": str(spool.dead_letter) if r.dead_lettered else None}
    db_path = (args.db or paths.default_db()).resolve()
    dest = f"db:{db_path}"
    new = ledger.new_events(dest, events)
    db = store.open_db(db_path)
    accepted, deduped = store.ingest(db, new) if new else (0, 0)
    ledger.mark(dest, new)
    return {"destination": str(db_path), "new_events": len(new), "accepted": accepted, "deduped": deduped,
            "error": None}


def print_result(result: dict) -> None:
    """The one-line summary of a delivery (and its error), on stderr."""
    where = result["destination"]
    line = f"nomira: {result['new_events']} new events for {where}"
    if "delivered" in result:
        line += f"; delivered {result['delivered']}, pending batches {result['pending_batches']}"
        if result["dead_lettered"]:
            line += f", {result['dead_lettered']} rejected (see {result['dead_letter_file']})"
    else:
        line += f"; stored {result['accepted']}, already there {result['deduped']}"
    print(line, file=sys.stderr)
    if result["error"]:
        print(f"nomira: {result['error']} (will retry)", file=sys.stderr)


def cmd_ship(args) -> int:
    first = True
    while True:
        result = ship_once(args)
        idle = not first and not result["new_events"] and not result["error"] and not result.get("delivered")
        first = False
        if idle:
            pass  # --watch: say nothing when nothing happened
        elif args.json:
            print(json.dumps(result))
        else:
            print_result(result)
        if not args.watch:
            return 1 if result["error"] else 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


def cmd_export(args) -> int:
    from nomira.exchange import export_document
    run = Run(args)
    doc = export_document(wire_events(run, _tags(args)))
    text = json.dumps(doc, indent=1) + "\n"
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text)
        print(f"nomira: wrote {len(doc['events'])} usage-only events to {args.file}", file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from nomira import store
    from nomira.exchange import parse_export
    try:
        events = parse_export(Path(args.file).read_bytes())
    except OSError as exc:
        raise UserError(f"cannot read {args.file}: {exc.strerror}") from exc
    except SchemaError as exc:
        raise UserError(f"{args.file} rejected: {exc}") from exc
    accepted, deduped = store.ingest(_open_store(args), events, tenant=args.tenant)
    print(json.dumps({"accepted": accepted, "deduped": deduped}) if args.json
          else f"nomira: imported {accepted} events ({deduped} already stored)")
    return 0


def cmd_replay(args) -> int:
    from nomira import store
    db = _open_store(args)
    n = store.replay(db)
    print(json.dumps({"replayed": n}) if args.json else f"nomira: rebuilt canonical events from {n} raw events")
    return 0


def cmd_tenant(args) -> int:
    from nomira import store
    db = _open_store(args)
    if args.action == "create":
        if not args.name:
            raise UserError("tenant create needs a NAME")
        key = store.create_tenant(db, args.name)
        print(json.dumps({"tenant": args.name, "api_key": key}) if args.json else
              f"tenant {args.name}: API key (shown once, store it now):\n{key}")
        return 0
    rows = store.list_tenants(db)
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['name']}\t{r['keys']} active key(s)\tcreated {r['created_at'][:10]}")
    return 0
