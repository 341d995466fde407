"""`nomira hooks install|uninstall|status` (edit the agents' config) and `nomira hook AGENT`
(what the agents run). See docs/CAPTURE.md."""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from nomira.cli import UserError

AGENT_CHOICES = ("claude", "codex", "opencode")


def add_arguments(name, p) -> None:
    if name == "hooks":
        p.add_argument("action", choices=["install", "uninstall", "status"])
        p.add_argument("--agent", choices=AGENT_CHOICES, action="append",
                       help="only this agent (repeatable; default: all three)")
        p.add_argument("--remote", metavar="URL", help="install: ship to this collector (saved in ship.toml)")
        p.add_argument("--token", help="install: the collector API key (saved owner-only in ship.toml)")
        p.add_argument("--db", type=Path, help="install: ship into this local store instead (saved in ship.toml)")
        p.add_argument("--developer", help="install: developer tag (default: your login name)")
        p.add_argument("--tenant", help="install: tenant tag")
        p.add_argument("--plugin-url", default=None, metavar="URL",
                       help="install --agent opencode: collector the plugin posts to (default: --remote, "
                            "else http://127.0.0.1:8787)")
        p.set_defaults(func=cmd_hooks)
    else:
        p.add_argument("agent", choices=["claude", "codex", "flush"])
        p.add_argument("rest", nargs=argparse.REMAINDER,
                       help="codex: [--then PROGRAM ARGS...] PAYLOAD_JSON (Codex appends the payload)")
        p.set_defaults(func=cmd_hook)


def cmd_hook(args) -> int:
    from nomira.capture.hook import main
    return main(args.agent, args.rest)


def cmd_hooks(args) -> int:
    from nomira.capture import destination, install
    env = os.environ
    agents = args.agent or list(AGENT_CHOICES)
    saved = None
    if args.action == "install" and (args.remote or args.db or args.developer or args.tenant or args.token):
        if args.remote and args.db:
            raise UserError("give --remote or --db, not both")
        if args.remote:
            from nomira.ledger.ship import ingest_url
            try:
                ingest_url(args.remote)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            args.token = args.token or env.get("NOMIRA_TOKEN")  # hooks run without the shell's environment
        from nomira.ledger.wire import SchemaError, check_tags
        try:
            check_tags({k: v for k, v in (("developer", args.developer), ("tenant", args.tenant)) if v})
        except SchemaError as exc:
            raise UserError(f"not saved: {exc}") from None
        current = destination.load({k: v for k, v in env.items() if not k.startswith("NOMIRA_")})
        if args.remote or args.db:
            current.pop("remote", None), current.pop("db", None), current.pop("token", None)
        current.update({k: v for k, v in (("remote", args.remote), ("db", str(args.db.resolve()) if args.db else None), ("token", args.token),
                                          ("developer", args.developer), ("tenant", args.tenant)) if v})
        saved = str(destination.save(current, env))
    results = []
    for agent in agents:
        try:
            if args.action == "install":
                dest = destination.load(env)
                plugin = {"url": args.plugin_url or dest.get("remote") or "http://127.0.0.1:8787",
                          "token": dest.get("token"), "developer": dest.get("developer") or getpass.getuser()}
                results.append(install.install(agent, env, plugin))
            elif args.action == "uninstall":
                results.append(install.uninstall(agent, env))
            else:
                results.append(install.status(agent, env))
        except install.ConfigError as exc:
            results.append({"agent": agent, "error": str(exc)})
        except OSError as exc:
            results.append({"agent": agent, "error": f"{exc.filename}: {exc.strerror}"})
    if args.json:
        from nomira.reports.money import stamp
        print(json.dumps(stamp({"action": args.action, "ship_config": saved, "agents": results})))
    else:
        if saved:
            print(f"nomira: destination saved in {saved}", file=sys.stderr)
        for r in results:
            print(_line(args.action, r))
    return 1 if any("error" in r for r in results) else 0


def _line(action: str, r: dict) -> str:
    if "error" in r:
        return f"{r['agent']}: not changed: {r['error']}"
    if action == "status":
        extra = f" (events: {', '.join(r['events'])})" if r.get("events") else ""
        extra += f" (chains {' '.join(r['chained'])})" if r.get("chained") else ""
        return f"{r['agent']}: {'installed' if r['installed'] else 'not installed'} in {r['path']}{extra}"
    done = ("installed in" if action == "install" else "removed from") if r["changed"] else \
        ("already installed in" if action == "install" else "not installed in")
    return f"{r['agent']}: {done} {r['path']}" + (f" (backup {r['backup']})" if r.get("backup") else "")
