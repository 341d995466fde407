"""`nomira reconcile [import FILE | fetch --provider P]`: bills against event-derived estimates."""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from nomira import dirs
from nomira.cli import UserError
from nomira.reports.money import stamp
from nomira.reports.render import table, usd

STATUS_LABEL = {"billed_not_observed": "not observed", "observed_not_billed": "not billed"}
KEY_ENV = {"anthropic": "ANTHROPIC_ADMIN_KEY", "openai": "OPENAI_ADMIN_KEY"}


def add_arguments(name, p) -> None:
    for flags, kw in ((("--json",), {"action": "store_true", "help": "machine-readable output"}),
                      (("--since",), {"metavar": "YYYYMMDD", "help": "report/fetch from this UTC day"}),
                      (("--until",), {"metavar": "YYYYMMDD", "help": "report/fetch up to this UTC day"})):
        try:
            p.add_argument(*flags, **kw)
        except argparse.ArgumentError:
            pass  # already one of the shared options this command is given
    p.add_argument("action", nargs="?", choices=["report", "import", "fetch"], default="report",
                   help="report (default), import FILE, or fetch from a provider's cost API")
    p.add_argument("file", nargs="?", help="bill export to import (CSV or JSON)")
    p.add_argument("--db", type=Path, default=None, help="SQLite store (default $XDG_DATA_HOME/nomira/nomira.db)")
    p.add_argument("--tenant", default="", help="tenant the bill belongs to (report: only this tenant)")
    p.add_argument("--provider", choices=["anthropic", "openai"], help="whose bill (import: when the file "
                   "does not say; fetch: required)")
    p.add_argument("--account", default=None, help="account label for every imported line (default: the "
                   "file's workspace/project column, else 'default')")
    p.add_argument("--base-url", default=None, help="API base URL for fetch (default the provider's)")
    for dim, default in (("cost", "1%,0.05"), ("tokens", "1%,200"), ("requests", "1%,3")):
        p.add_argument(f"--{dim}-tolerance", default=default, metavar="PCT,FLOOR",
                       help=f"{dim} tolerance: max(percent of the bill, floor) (default {default.replace('%', '%%')})")
    p.set_defaults(func=cmd_reconcile)


def _open(args):
    from nomira.ledger import store
    return store.open_db(args.db or dirs.default_db())


def _day(text: str | None) -> str | None:
    if not text:
        return None
    from nomira.dates import parse_day
    try:
        return parse_day(text).isoformat()
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def cmd_reconcile(args) -> int:
    if args.action == "import":
        return _import(args)
    if args.action == "fetch":
        return _fetch(args)
    return _report(args)


def _store_lines(args, provider: str, source: str, parsed) -> dict:
    from nomira.reconcile import ledger
    from nomira.reconcile.bills import merge
    lines = merge(parsed.lines)
    saved = ledger.save_lines(_open(args), args.tenant, provider, source, lines, parsed.summary())
    return {**parsed.summary(), **saved, "lines": len(lines), "source": source}


def _say_import(args, result: dict) -> None:
    if args.json:
        print(json.dumps(stamp(result)))
        return
    err = sys.stderr
    print(f"nomira: {result['source']}: {result['rows']} rows read, {result['lines']} bill lines "
          f"({result['inserted']} new, {result['replaced']} replaced)", file=err)
    for cur, n in sorted(result["skipped_currency"].items()):
        print(f"nomira: skipped {n} row(s) in {cur}: only USD is reconciled, nothing is converted", file=err)
    if result["garbage"]:
        print(f"nomira: {result['garbage']} unreadable row(s) skipped, e.g. "
              + "; ".join(result["garbage_samples"]), file=err)
    for note in result["notes"]:
        print(f"nomira: note: {note}", file=err)
    for other in result.get("other_accounts") or ():
        print(f"nomira: note: these days also hold bill lines of account {other['account']!r} (from "
              f"{other['source']}): if that is the account this file bills, they count twice; import it again "
              f"with --account {other['account']!r}", file=err)
    print("nomira: next: `nomira reconcile` to compare with observed usage", file=err)


def _import(args) -> int:
    from nomira.reconcile.bills import BillFormatError, parse_file
    if not args.file:
        raise UserError("reconcile import needs a FILE (CSV or JSON bill export)")
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {args.file}: {exc.strerror}") from exc
    name = Path(args.file).name
    try:
        parsed = parse_file(data, name, args.provider, args.account)
    except BillFormatError as exc:
        raise UserError(f"{args.file}: {exc}") from exc
    if not parsed.lines:
        s = parsed.summary()
        raise UserError(f"{args.file}: no USD bill lines in {s['rows']} row(s) (skipped currencies "
                        f"{s['skipped_currency'] or 'none'}, {s['garbage']} unreadable"
                        + (f", e.g. {s['garbage_samples'][0]}" if s["garbage_samples"] else "") + ")")
    providers = sorted({ln.provider for ln in parsed.lines})
    _say_import(args, _store_lines(args, args.provider or "+".join(providers) or "unknown", f"import:{name}",
                                   parsed))
    return 0


def _fetch(args) -> int:
    from nomira.reconcile.fetch import FetchError, fetch
    if not args.provider:
        raise UserError("reconcile fetch needs --provider anthropic|openai")
    env_name = KEY_ENV[args.provider]
    key = os.environ.get(env_name)
    if not key:
        raise UserError(f"set {env_name} to an admin key (it is read from the environment only, never stored)")
    today = datetime.now(timezone.utc).date()
    until = date.fromisoformat(_day(args.until)) if args.until else today
    since = date.fromisoformat(_day(args.since)) if args.since else until - timedelta(days=30)
    if since > until:
        raise UserError("--since is after --until")
    try:
        parsed = fetch(args.provider, key, since, until, base_url=args.base_url, account=args.account)
    except FetchError as exc:
        raise UserError(str(exc)) from exc
    _say_import(args, _store_lines(args, args.provider, f"fetch:{args.provider}", parsed))
    return 0


def _tolerances(args) -> dict:
    from nomira.reconcile.windows import parse_tolerance
    try:
        return {dim: parse_tolerance(getattr(args, f"{dim}_tolerance")) for dim in ("cost", "tokens", "requests")}
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _report(args) -> int:
    from nomira.reconcile.windows import reconcile
    report = reconcile(_open(args), args.tenant or None, _day(args.since), _day(args.until), _tolerances(args))
    if args.json:
        print(json.dumps(stamp(report), indent=1, default=str))
        return 0
    print(render_report(report))
    return 0


def _num(v) -> str:
    return "—" if v is None else f"{v:,}"


def render_report(r: dict) -> str:
    t = r["totals"]
    out = [f"Reconciliation {r['since'] or 'start'}..{r['until'] or 'today'}"
           + (f"  tenant {r['tenant']}" if r["tenant"] else ""),
           f"  reconciled (billed days)  {usd(t['reconciled_usd'])}  = estimated {usd(t['estimated_billed_usd'])}"
           f" + adjustments {usd(t['adjustments_usd'])} + within tolerance {usd(t['within_tolerance_usd'])}",
           f"  estimated (not billed)    {usd(t['estimated_unbilled_usd'])}",
           "  tolerances: " + ", ".join(f"{k} {v['text']}" for k, v in r["tolerances"].items()), ""]
    rows = [[w["day"], w["provider"], w["model"] or "(all)", ",".join(w["accounts"]) or "—",
             "—" if w["billed_usd"] is None else usd(w["billed_usd"]), usd(w["estimated_usd"]),
             "—" if w["delta_usd"] is None else usd(w["delta_usd"]), _num(w["delta_tokens"]),
             _num(w["delta_requests"]), STATUS_LABEL.get(w["status"], w["status"])] for w in r["windows"]]
    if rows:
        out.append(table(["Day", "Provider", "Model", "Account", "Billed", "Estimated", "Δ cost", "Δ tokens",
                          "Δ requests", "Status"], rows, "llllrrrrrl", max_width=150))
    for d in r["missing_days"]:
        line = f"  {d['day']} {d['provider']}: {d['class'].replace('_', ' ')}"
        if d.get("silent"):
            line += "; silent: " + ", ".join(f"{s['developer']} ({s['source']})" for s in d["silent"])
        out.append(line)
    for w in r["windows"]:
        if w["status"] == "over" and w.get("silent"):
            out.append(f"  {w['day']} {w['provider']} {w['model'] or '(all)'}: billed above the estimate; silent: "
                       + ", ".join(f"{s['developer']} ({s['source']})" for s in w["silent"]))
    for a in r["adjustments"]:
        out.append(f"  adjustment #{a['id']} {a['day']} {a['provider']} {a['model'] or '(all)'}: "
                   f"{usd(a['cost_usd'])} — {a['reason']} [from {a['bill_ref']}]")
    for x in r["excluded_subscription"]:
        out.append(f"  excluded: {x['calls']:,} subscription calls ({x['provider']}, "
                   f"{usd(x['value_usd'])} API-equivalent value)")
    out.append(f"  {r['subscription_note']}")
    out += [f"  warning: {w}" for w in r["warnings"]] + [f"  next: {s}" for s in r["next_steps"]]
    return "\n".join(out)
