"""`nomira opencode watch`: follow a running OpenCode server's event stream and ship each finished
assistant message's usage as it happens (to the `hooks install` destination, or --remote/--db)."""
from __future__ import annotations

import getpass
import json
import os
import sys
import time
from pathlib import Path

from nomira.cli import UserError


def add_arguments(name, p) -> None:
    p.add_argument("action", choices=["watch"])
    p.add_argument("--url", default="http://127.0.0.1:4096", help="the OpenCode server (default %(default)s)")
    p.add_argument("--remote", metavar="URL", help="ship to this collector (default: the hooks destination)")
    p.add_argument("--token", default=None, help="collector API key ($NOMIRA_TOKEN)")
    p.add_argument("--db", type=Path, default=None, help="ship into this local store instead")
    p.add_argument("--developer", default=None, help="developer tag (default: your login name)")
    p.add_argument("--once", action="store_true", help="stop when the server closes the stream (no reconnect)")
    p.add_argument("--reconnect", type=float, default=5.0, help="seconds before reconnecting (default 5)")
    p.set_defaults(func=cmd_opencode)


def cmd_opencode(args) -> int:
    from urllib.parse import urlsplit

    from nomira.capture import destination
    from nomira.capture.convert import to_wire_events
    from nomira.capture.hook import ship_args
    from nomira.capture.opencode_live import watch
    from nomira.commands.ship import day_zone, deliver, print_result
    if urlsplit(args.url).scheme not in ("http", "https") or not urlsplit(args.url).hostname:
        raise UserError(f"--url needs an http:// URL of an OpenCode server, e.g. http://127.0.0.1:4096 "
                        f"(got {args.url!r})")
    dest = destination.load(os.environ)
    if args.remote or args.db:
        dest = {k: v for k, v in dest.items() if k in ("developer", "tenant")}
        dest.update({k: v for k, v in (("remote", args.remote), ("db", str(args.db) if args.db else None),
                                       ("token", args.token or os.environ.get("NOMIRA_TOKEN"))) if v})
    if args.developer:
        dest["developer"] = args.developer
    ship = ship_args(dest, None, "opencode")
    tags = {"developer": dest.get("developer") or getpass.getuser(), **({"tenant": dest["tenant"]}
                                                                         if dest.get("tenant") else {})}
    totals = {"messages": 0, "new_events": 0}
    zone = day_zone(ship, strict=False)  # this laptop's: pins the developer's day boundary (issue 28)

    def on_events(found) -> None:
        events, refused = to_wire_events(found, tags, "sse")
        for reason, n in sorted(refused.items()):
            print(f"nomira: {n} call(s) held back, outside the usage event schema: {reason}", file=sys.stderr)
        result = deliver(ship, events, zone=zone)
        totals["messages"] += 1
        totals["new_events"] += result["new_events"]
        if args.json:
            from nomira.reports.money import stamp
            print(json.dumps(stamp(dict(result))), flush=True)
        elif result["new_events"] or result["error"]:
            print_result(result)

    while True:
        try:
            watch(args.url, on_events)
            problem = "the server closed the stream"
        except OSError as exc:
            problem = f"cannot read {args.url}/event: {getattr(exc, 'reason', None) or exc}"
        except KeyboardInterrupt:
            return 0
        if args.once:
            if not args.json:
                print(f"nomira: {problem}; {totals['messages']} finished message(s), "
                      f"{totals['new_events']} new event(s) shipped", file=sys.stderr)
            return 0 if problem == "the server closed the stream" else 1
        print(f"nomira: {problem}; reconnecting in {args.reconnect:g} s", file=sys.stderr)
        try:
            time.sleep(args.reconnect)
        except KeyboardInterrupt:
            return 0
