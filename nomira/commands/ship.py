"""`nomira ship | export | import | replay | tenant`: the usage-only event pipeline."""
from __future__ import annotations

import getpass
import json
import os
import sys
import time
from pathlib import Path

from nomira import dirs
from nomira.cli import Run, UserError
from nomira.ledger.engine import db_arg, is_postgres, redact
from nomira.ledger.wire import TAG_FIELDS, SchemaError
from nomira.reports.money import stamp

TAG_NAMES = [t for t in TAG_FIELDS if t not in ("developer", "tenant", "project")]


def add_arguments(name, p) -> None:
    if name in ("ship", "export"):
        p.add_argument("--developer", default=None, help="developer tag (default: your login name)")
        p.add_argument("--tenant", default=None, help="tenant tag (a remote collector forces its own)")
        p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                       help=f"business tag, one of: {', '.join(TAG_NAMES)} (repeatable)")
    if name in ("ship", "import", "replay", "tenant"):
        p.add_argument("--db", type=db_arg, default=None,
                       help="store: an SQLite file (default $XDG_DATA_HOME/nomira/nomira.db) or a postgresql:// URL")
    if name == "ship":
        p.add_argument("--remote", metavar="URL", help="send to a collector (through the on-disk spool)")
        p.add_argument("--token", default=os.environ.get("NOMIRA_TOKEN"), help="collector API key ($NOMIRA_TOKEN)")
        p.add_argument("--watch", action="store_true", help="keep running: ship new usage every --interval seconds")
        p.add_argument("--interval", type=float, default=60.0, help="seconds between --watch rounds (default 60)")
        p.add_argument("--repin-day-zone", action="store_true",
                       help="pin your day boundary to this zone from now on (filed days stay)")
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


def wire_events(run: Run, tags: dict, keep=None, limits: list | None = None) -> list[dict]:
    """The usage-only events of the run; calls outside the schema are held back and said (stderr).
    `keep` (wire events -> the ones wanted) runs before the allowlist check, which costs the most.
    `limits`, when given, receives the newest limit snapshot records (see `limit_wire`)."""
    from nomira.ledger.ship import validated
    from nomira.ledger.wire import check_tags, to_wire
    try:
        check_tags(tags)  # the user's own tags: a mistake there is the user's to fix, for every call
    except SchemaError as exc:
        raise UserError(f"refusing to ship: {exc}") from exc
    collected = run.collect()
    run.shipped_labels = next((st["labels"] for kept in collected.states.values() for st in kept
                               if st.get("labels")), {})
    events = collected.events
    if limits is not None:
        limits.extend(limit_wire(run, tags, collected))
    from nomira.reports.aggregate import event_regime
    override = run.regime_override
    wire = [to_wire(e, c, event_regime(e.source, override), tags) for e, c in run.priced(events)]
    ok, refused = validated(keep(wire) if keep is not None else wire)
    for reason, n in sorted(refused.items()):
        _warn(f"{n} call(s) held back, outside the usage event schema: {reason}")
    return ok


def limit_wire(run: Run, tags: dict, collected) -> list[dict]:
    """The newest snapshot of each window, as limit_snapshot records: the Codex rollouts read, and
    what `nomira statusline` / `nomira limits --fetch` saved (the state file)."""
    from nomira.ledger import limits
    from nomira.ledger.ship import limit_records
    logged = limits.from_codex_states(collected.states.get("codex", []))
    ok, refused = limit_records(limits.latest([*logged, *limits.load_state(run.env)]), tags)
    for reason, n in sorted(refused.items()):
        _warn(f"{n} limit snapshot(s) held back, outside the limit snapshot schema: {reason}")
    return ok


def _open_store(args):
    from nomira.ledger import store
    return store.open_db(args.db or dirs.default_db())


def _warn(line: str) -> None:
    print(f"nomira: {line}", file=sys.stderr)


def ship_once(args) -> dict:
    _remote(args)  # a bad URL fails before any work
    zone = day_zone(args)  # and so does a zone that is no IANA zone
    limits: list[dict] = []
    run = Run(args)
    events = wire_events(run, _tags(args), limits=limits)
    result = deliver(args, events, limits=limits, zone=zone, repin=bool(getattr(args, "repin_day_zone", False)))
    pin_labels(run)
    return result


def pin_labels(run: Run) -> None:
    """The project labels this run shipped (or queued, or exported) under, kept for every later run
    (`project.pin`): a directory's calls stay under one name in the team's store."""
    from nomira.sources import project
    try:
        project.pin(run.env, getattr(run, "shipped_labels", None) or {})
    except OSError as exc:
        _warn(f"could not keep the project labels in {exc.filename or 'the state folder'}: "
              f"{exc.strerror or exc} (a project may be shipped under a second name later)")


def day_zone(args, env=None, strict: bool = True) -> str | None:
    """The IANA zone this machine ships from (`--timezone`, else $TZ / the system's zone): it pins
    the developer's day boundary at the collector (issue 28). None when the system does not say.
    `strict`: a zone that is no IANA name is a one-line error (exit 2), else it is not sent."""
    from nomira import dates
    name, where = (args.timezone, "--timezone") if getattr(args, "timezone", None) else dates.local_zone_name(env)
    if name is None:
        if strict and getattr(args, "repin_day_zone", False):
            raise UserError("--repin-day-zone: this machine's timezone is unknown; name it with --timezone "
                            "(an IANA name such as Europe/Paris)")
        return None
    try:
        return dates.zone_name(name)
    except ValueError as exc:
        if not strict:
            return None
        raise UserError(f"{where} {name[:64]!r}: {exc}; your day boundary is pinned by zone name "
                        "(set TZ or pass --timezone)") from None


def deliver(args, events: list[dict], flush: bool = True, limits: list[dict] = (), zone: str | None = None,
            repin: bool = False, resending: bool = False) -> dict:
    """Validated wire events (and limit snapshot records) to the collector at `args.remote` (through
    the spool) or the store at `args.db`; the ledger skips what that destination already has.
    `flush=False` only queues them (a hook must not wait for the network; `nomira hook flush` sends them).
    `zone`: the IANA zone of the developer's machine (`day_zone`), sent with the batches to pin their day
    boundary; None for usage that is not one developer's laptop's (a team's Cursor usage, a CI job), which
    pins nothing. `repin` moves the pin to `zone` (a call already sent goes again to carry it: deduped).
    A damaged spool batch for the destination (`Spool.damaged_for`) sends every call again: which ones
    it held cannot be read, and the ledger marked them shipped when they were queued."""
    from nomira.ledger import store
    from nomira.commands.spool import open_spool
    post = _remote(args)
    ledger, dest, db = open_ledger(args, post, flush)
    spool = None
    if post is not None:
        spool = open_spool()
        damaged = spool.damaged_for(post.destination)
        if damaged:  # (set aside by an earlier flush, of any command): their calls go again
            ledger.forget(dest)
            spool.resent(damaged)
        if dest.startswith("store:"):  # batches queued under another URL of this store go with this one's
            spool.rebind(post.destination, lambda old: isinstance(old.get("url"), str)
                         and ledger.destination(_locator(old), None) == dest)
    new_limits = ledger.new_events(dest, limits) if limits else []
    new = ledger.new_events(dest, events)
    if repin and zone and not new:
        if not events:
            raise UserError("--repin-day-zone: no calls to ship, so no developer to re-pin (ship after a call)")
        new = events[-1:]  # the collector already has it: it moves nothing, and carries the re-pin
    batch = {"day_zone": zone, **({"repin_day_zone": True} if repin and zone else {})} if zone else {}
    if spool is not None:
        spool.put(new + new_limits, destination=post.destination, batch=batch)
        ledger.mark(dest, new + new_limits)  # durable in the spool now: delivery is the spool's job
        if not flush:
            return {"destination": args.remote, "new_events": len(new), "limit_snapshots": len(new_limits),
                    "queued": bool(new or new_limits), "error": None, "day_zone": zone, "notes": []}
        r = spool.flush(post, destination=post.destination)
        if post.store_id:
            dest = ledger.destination(_locator(post.destination), post.store_id)  # a replaced collector store: next run starts over
        damaged = spool.damaged_for(post.destination)
        if damaged and not resending:  # a batch found damaged now: its calls go again at once
            again = deliver(args, events, flush, limits, zone, repin, resending=True)
            again["unreadable_batches"] = r.unreadable + (again.get("unreadable_batches") or [])
            again["delivered"] += r.delivered
            again["dead_lettered"] += r.dead_lettered
            return again
        if r.error is None and not r.pending_batches:
            ledger.delivered(dest, args.remote, r.delivered)
        return {"destination": args.remote, "new_events": len(new), "limit_snapshots": len(new_limits),
                "delivered": r.delivered,
                "dead_lettered": r.dead_lettered, "pending_batches": r.pending_batches, "error": r.error,
                "dead_letter_file": str(spool.dead_letter) if r.dead_lettered else None,
                "other_destinations": {"batches": r.other_batches, "urls": r.other_destinations}
                if r.other_batches else None, "unreadable_batches": r.unreadable or None,
                "day_zone": zone, "notes": post.notes}
    results, notes = store.ingest_batch(db, new, None, zone, repin and bool(zone)) if new else ([], [])
    deduped = sum(d for d, _ in results)
    accepted = len(results) - deduped
    if new_limits:
        from nomira.ledger.limits import store_snapshots
        store_snapshots(db, new_limits)
    ledger.mark(dest, new + new_limits)
    db_path = args.db or dirs.default_db()
    where = redact(db_path) if is_postgres(db_path) else str(db_path.resolve())
    ledger.delivered(dest, where, len(new) + len(new_limits))
    return {"destination": where, "new_events": len(new), "limit_snapshots": len(new_limits), "accepted": accepted,
            "deduped": deduped, "error": None, "day_zone": zone, "notes": notes}


def _locator(destination: dict) -> str:
    """The ledger's key for a collector (URL and credential hash) before its store is known."""
    return f"remote:{destination['url']}#{destination.get('credential_sha256') or ''}"


def open_ledger(args, post, flush: bool = True):
    """(ledger, its key for the destination, the open store or None for a collector). Without `flush`
    the collector is not asked who it is (no network wait): the last known identity is used."""
    from nomira.ledger import store
    from nomira.ledger.ship import Ledger
    ledger_path = dirs.state_home() / "shipped.sqlite"
    try:
        ledger = Ledger(ledger_path, warn=_warn)
    except OSError as exc:
        raise UserError(f"cannot open the ship ledger {ledger_path}: {exc.strerror or exc}") from None
    if post is not None:
        return ledger, ledger.destination(_locator(post.destination), post.identity() if flush else None), None
    db_path = args.db or dirs.default_db()
    db_path = db_path if is_postgres(db_path) else db_path.resolve()
    db = store.open_db(db_path)
    return ledger, ledger.destination(f"db:{redact(db_path)}", store.store_id(db)), db


def _remote(args):
    """The collector to ship to (None: a local store); a bad --remote is a one-line error, exit 2."""
    if not args.remote:
        return None
    from nomira.ledger.ship import http_post
    try:
        return http_post(args.remote, args.token)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def print_result(result: dict) -> None:
    """The summary of a delivery (and its error and warnings), on stderr."""
    where = result["destination"]
    line = f"nomira: {result['new_events']} new events for {where}"
    if result.get("limit_snapshots"):
        line += f" (and {result['limit_snapshots']} limit snapshot(s))"
    if "delivered" in result:
        line += f"; delivered {result['delivered']}, pending batches {result['pending_batches']}"
        if result["dead_lettered"]:
            line += f", {result['dead_lettered']} rejected (see {result['dead_letter_file']})"
    else:
        line += f"; stored {result['accepted']}, already there {result['deduped']}"
    print(line, file=sys.stderr)
    if result["error"]:
        print(f"nomira: {result['error']} (will retry)", file=sys.stderr)
    other = result.get("other_destinations")
    if other:
        _warn(f"{other['batches']} spooled batch(es) wait for other collector(s) or keys "
              f"({', '.join(other['urls'])}); they are only ever sent there, with the key they were "
              "queued under")
    for bad in result.get("unreadable_batches") or ():
        _warn(f"damaged spool batch set aside (which calls it held cannot be read, so every call was "
              f"queued again; the collector counts each once): {bad}")
    for note in result.get("notes") or ():
        _warn(note)


def cmd_ship(args) -> int:
    _remote(args)  # a bad URL fails before any work, --watch or not
    day_zone(args)  # and a timezone that is no IANA zone
    first = True
    while True:
        result = ship_once(args)
        args.repin_day_zone = False  # --watch: the first round re-pinned; later rounds keep that pin
        idle = not first and not result["new_events"] and not result["error"] and not result.get("delivered")
        first = False
        if idle:
            pass  # --watch: say nothing when nothing happened
        elif args.json:
            print(json.dumps(stamp(dict(result))))
        else:
            print_result(result)
        if not args.watch:
            return 1 if result["error"] else 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


def cmd_export(args) -> int:
    from nomira.ledger.exchange import export_document
    run = Run(args)
    zone = day_zone(args, strict=False)
    if zone is None:  # (a POSIX TZ string: the local reports' days, but no name to send; no zone at all is UTC)
        from nomira import dates
        name, where = dates.local_zone_name()
        if name:
            _warn(f"{where} {name[:64]!r} is no IANA zone name: the export names no day zone, so a store files "
                  "its calls under UTC days (set TZ to a name such as Asia/Kolkata, or pass --timezone)")
    doc = export_document(wire_events(run, _tags(args)), zone)
    pin_labels(run)
    text = json.dumps(doc, indent=1) + "\n"
    if args.file == "-":
        sys.stdout.write(text)
    else:
        folder = Path(args.file).resolve().parent
        if not folder.is_dir():
            from nomira.cli import Failure
            raise Failure(f"cannot write {args.file}: no folder {folder} (create it, or write to - for stdout)")
        Path(args.file).write_text(text)
        print(f"nomira: wrote {len(doc['events'])} usage-only events to {args.file}", file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from nomira.ledger import store
    from nomira.ledger.exchange import read_export
    try:
        events, zone = read_export(Path(args.file).read_bytes())
    except OSError as exc:
        raise UserError(f"cannot read {args.file}: {exc.strerror}") from exc
    except SchemaError as exc:
        raise UserError(f"{args.file} rejected: {exc}") from exc
    accepted, deduped = store.ingest(_open_store(args), events, tenant=args.tenant, day_zone=zone)
    print(json.dumps(stamp({"accepted": accepted, "deduped": deduped})) if args.json
          else f"nomira: imported {accepted} events ({deduped} already stored)")
    return 0


def cmd_replay(args) -> int:
    from nomira.ledger import store
    db = _open_store(args)
    r = store.replay(db)
    if args.json:
        print(json.dumps(stamp(dict(r))))
        return 0
    print(f"nomira: rebuilt canonical events from {r['replayed']} raw events (normalization version "
          f"{r['normalization_version']}); {r['changed']} changed, {r['added']} added, {r['removed']} removed")
    for col, n in sorted(r["columns"].items()):
        print(f"  {col}: {n} row(s) changed")
    if r["lost_days"]:
        days = r["lost_days"]
        print(f"nomira: {len(days)} day(s) can no longer be rebuilt (raw events pruned by retention), kept as "
              f"stored: {', '.join(days) if len(days) <= 10 else ', '.join(days[:5]) + ', ... ' + days[-1]}")
    return 0


def cmd_tenant(args) -> int:
    from nomira.ledger import store
    db = _open_store(args)
    if args.action == "create":
        if not args.name:
            raise UserError("tenant create needs a NAME")
        key = store.create_tenant(db, args.name)
        print(json.dumps(stamp({"tenant": args.name, "api_key": key})) if args.json else
              f"tenant {args.name}: API key (shown once, store it now):\n{key}")
        return 0
    rows = store.list_tenants(db)
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['name']}\t{r['keys']} active key(s)\tcreated {r['created_at'][:10]}")
    return 0
