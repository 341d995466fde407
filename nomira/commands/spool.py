"""`nomira spool status | retry | drop`: what `nomira ship --remote` has queued, and its dead letters."""
from __future__ import annotations

import json
import os
import sys

from nomira import dirs
from nomira.cli import UserError
from nomira.reports.money import stamp


def add_arguments(name, p) -> None:
    p.add_argument("action", choices=["status", "retry", "drop"],
                   help="status: depth, oldest record, dead letters and their errors; retry: queue the dead "
                        "letters again (and send them now with --remote); drop: discard the dead letters")
    p.add_argument("--remote", metavar="URL", help="retry: send now to this collector (letters queued for it, and "
                                                   "letters of older versions that recorded no destination)")
    p.add_argument("--token", default=os.environ.get("NOMIRA_TOKEN"), help="collector API key ($NOMIRA_TOKEN)")
    p.add_argument("--pending", action="store_true", help="drop: also discard every queued (not yet sent) record")
    p.set_defaults(func=cmd_spool)


def open_spool():
    from nomira.ledger.spool import Spool
    return Spool(dirs.state_home() / "spool")


def cmd_spool(args) -> int:
    spool = open_spool()
    if args.action == "status":
        return _status(spool, args)
    if args.action == "drop":
        result = {"dropped_dead_letters": spool.drop_dead()}
        if args.pending:
            result["dropped_batches"], result["dropped_events"] = spool.drop_pending()
        _say(args, result, f"dropped {result['dropped_dead_letters']} dead letter(s)" + (
            f" and {result['dropped_batches']} queued batch(es) ({result['dropped_events']} events)"
            if args.pending else ""))
        return 0
    post = None
    if args.remote:
        from nomira.ledger.ship import http_post
        try:
            post = http_post(args.remote, args.token)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    requeued, kept = spool.requeue_dead(post.destination if post else None)
    result = {"requeued": requeued, "kept": kept}
    line = f"queued {requeued} dead letter(s) again"
    if kept:
        line += (f"; {kept} from an older version record no collector: kept (name one with --remote)"
                 if not post else f"; {kept} unreadable line(s) kept")
    if post is None:
        _say(args, result, line + "; the next `nomira ship --remote` to their collector sends them")
        return 0
    r = spool.flush(post, destination=post.destination)
    result.update(delivered=r.delivered, dead_lettered=r.dead_lettered, pending_batches=r.pending_batches,
                  error=r.error)
    if r.unreadable:
        result["unreadable_batches"] = r.unreadable
        line += (f"; {len(r.unreadable)} damaged batch(es) set aside: the next `nomira ship` to this collector "
                 "queues every call again")
    _say(args, result, line + f"; delivered {r.delivered}, rejected again {r.dead_lettered}, "
                              f"pending batches {r.pending_batches}" + (f"\nnomira: {r.error}" if r.error else ""))
    return 1 if r.error else 0


def _status(spool, args) -> int:
    s = spool.status()
    if args.json:
        print(json.dumps(stamp(s)))
        return 0
    out = [f"spool {s['spool']}: {s['pending_batches']} batch(es), {s['pending_events']} event(s) queued"]
    if s["oldest"]:
        o = s["oldest"]
        out.append(f"  oldest: {o.get('created_at') or '?'} ({o.get('events', 0)} events for {o.get('destination')}, "
                   f"attempt {o.get('attempt', 0)}" + (f", last error: {_shown(o['last_error'])}"
                                                       if o.get("last_error") else "") + ")")
    for url, n in s["pending_by_destination"].items():
        out.append(f"  {n} event(s) for {url}")
    out.append(f"dead letters: {s['dead_letters']}" + (f" in {s['dead_letter_file']}" if s["dead_letters"] else ""))
    for error, n in sorted(s["dead_letter_errors"].items(), key=lambda kv: -kv[1]):
        out.append(f"  {n} x {_shown(error)}")
    for name in s["unreadable_batches"]:
        out.append(f"  damaged batch set aside: {name}")
    print("\n".join(out))
    return 0


def _shown(text) -> str:
    from nomira.ledger.spool import _shown as shown
    return shown(str(text))


def _say(args, result: dict, line: str) -> None:
    print(json.dumps(stamp(result)) if args.json else f"nomira: {line}", file=sys.stdout if args.json else sys.stderr)
