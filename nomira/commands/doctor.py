"""`nomira doctor`: is every part of the local pipeline working, and what to do when it is not.

Each check returns a `Check`: `ok`, `info` (worth knowing, nothing to do), `warn` (should be
looked at) or `fail` (needs action: the exit status is 1). A source that is not installed is
`info`; no source at all is `fail`. Malformed lines are given as file:line, never their content.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping

from nomira.reports.money import stamp

PRICES_STALE = timedelta(days=60)
MAX_SKEW = timedelta(minutes=2)
MAX_LOCATIONS = 10  # malformed lines listed per source; the count is always complete


@dataclass
class Check:
    name: str
    status: str  # ok | info | warn | fail
    detail: str
    data: dict = field(default_factory=dict)


def add_arguments(name, p) -> None:
    from nomira.cli import SOURCE_CHOICES
    from nomira.commands import shared_option
    shared_option(p, "--json", action="store_true", help="machine-readable output")
    shared_option(p, "--path", action="append", type=Path, metavar="PATH", help="check these files/folders instead")
    shared_option(p, "--source", choices=sorted(SOURCE_CHOICES), default="all", help="which agent logs to check")
    shared_option(p, "--no-cache", action="store_true", help="read every file whole")
    p.add_argument("--remote", metavar="URL", help="also check this collector: reachable (/healthz) and clock skew")
    p.set_defaults(func=cmd_doctor)


# --- sources ------------------------------------------------------------------------

def _malformed_lines(path: str, markers: tuple[bytes, ...], limit: int) -> list[int]:
    """Line numbers (1-based) of marker lines that are not JSON: where the parser gave up."""
    out = []
    try:
        with open(path, "rb") as fh:
            for n, line in enumerate(fh, 1):
                if any(m in line for m in markers) and line.strip():
                    try:
                        json.loads(line)
                    except ValueError:
                        if not line.endswith(b"\n"):
                            break  # an unfinished last line: the writer is mid-write, not an error
                        out.append(n)
                        if len(out) >= limit:
                            break
    except OSError:
        pass
    return out


def check_source(name: str, mod, files: list[Path], roots: list[Path], cache, prune: bool = True) -> Check:
    from nomira.sources.scan import ScanStats, iter_scan
    where = ", ".join(str(r) for r in roots)
    if not files:
        return Check(f"source {name}", "info", f"not found{f' (no log files in {where})' if roots else ''}",
                     {"roots": [str(r) for r in roots], "files": 0})
    unreadable = [str(f) for f in files if not os.access(f, os.R_OK)]
    readable = [f for f in files if str(f) not in set(unreadable)]
    entries = cache.load(name) if cache is not None else None
    writer = cache.writer(name) if cache is not None and not unreadable else None
    total, bad = ScanStats(), []
    for path, _records, _state, st in iter_scan(mod, readable, entries, 1, None, writer):
        total.merge(st)
        if st.malformed and path != "(unreadable)":
            bad.append((path, st.malformed))
    if writer is not None and prune:
        writer.close()
    elif writer is not None:
        writer.commit()  # --path: keep the other files' cache entries
    locations = []
    for path, _n in bad:
        if len(locations) < MAX_LOCATIONS and hasattr(mod, "MARKERS") and path.endswith(".jsonl"):
            locations += [f"{path}:{n}" for n in _malformed_lines(path, mod.MARKERS, MAX_LOCATIONS - len(locations))]
    data = {"roots": [str(r) for r in roots], "files": len(files), "bytes": total.bytes,
            "usage_lines": total.candidates, "malformed_lines": total.malformed,
            "malformed_at": locations, "unreadable_files": unreadable}
    detail = (f"{len(files)} files in {where or 'the given paths'}, {total.bytes / 1e6:.1f} MB, "
              f"{total.candidates:,} usage lines read")
    status = "ok"
    if total.malformed:
        status = "warn"
        detail += f"; {total.malformed} malformed (skipped and counted)"
    if unreadable:
        status = "fail"
        detail += f"; {len(unreadable)} unreadable (check permissions)"
    return Check(f"source {name}", status, detail, data)


def check_sources(selected, explicit, env, cache) -> list[Check]:
    from nomira.sources.registry import SOURCES, discover
    try:
        found = discover(selected, explicit, env)
    except FileNotFoundError as exc:
        return [Check("sources", "fail", str(exc))]
    checks = [check_source(n, SOURCES[n], found.get(n, []), [] if explicit else SOURCES[n].default_paths(env), cache,
                           prune=not explicit) for n in selected]
    if not any(c.data.get("files") for c in checks):
        checks.append(Check("sources", "fail", "no agent logs found: nothing to report on (use --path, or "
                                               "check CLAUDE_CONFIG_DIR / CODEX_HOME / OPENCODE_DATA_DIR)"))
    return checks


# --- spool, ledger, prices, hooks, collector ---------------------------------------

def _writable(path: Path) -> bool:
    """`path` can be written, or created under its nearest existing parent."""
    p = path
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)


def check_spool(env, now: datetime) -> Check:
    from nomira.dirs import state_home
    root = state_home(env) / "spool"
    if not _writable(root) or (root.exists() and not _writable(root / "pending")):
        return Check("spool", "fail", f"{root} is not writable: `nomira ship --remote` cannot queue events",
                     {"path": str(root)})
    if not (root / "pending").is_dir():
        return Check("spool", "ok", "empty (nothing queued)", {"path": str(root), "batches": 0})
    from nomira.ledger.spool import Spool
    spool = Spool(root)
    batches = spool.batches()
    dead = 0
    try:
        with open(spool.dead_letter, "rb") as fh:
            dead = sum(1 for _ in fh)
    except OSError:
        pass
    oldest = None
    for b in batches:
        try:
            m = b.stat().st_mtime
        except OSError:
            continue
        oldest = m if oldest is None else min(oldest, m)
    data = {"path": str(root), "batches": len(batches), "dead_letters": dead,
            "oldest": datetime.fromtimestamp(oldest, timezone.utc).isoformat() if oldest else None}
    detail = f"{len(batches)} batches waiting"
    status = "ok"
    if oldest is not None:
        from nomira.reports.limits import duration
        age = now - datetime.fromtimestamp(oldest, timezone.utc)
        detail += f", oldest {duration(age)} old"
        if age > timedelta(hours=1):
            status = "warn"
            detail += " (run `nomira ship --remote URL` to deliver)"
    if dead:
        status = "warn"
        detail += f"; {dead} dead-lettered events in {spool.dead_letter} (rejected by the collector)"
    return Check("spool", status, detail, data)


def check_ledger(env) -> Check:
    import sqlite3

    from nomira.dirs import state_home
    path = state_home(env) / "shipped.sqlite"
    if not path.exists():
        return Check("last ship", "info", "nothing shipped yet", {"destinations": {}})
    from nomira.ledger.ship import last_deliveries
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = dict(db.execute("SELECT destination, COUNT(*) FROM shipped GROUP BY destination"))
        deliveries = last_deliveries(db)
        db.close()
    except sqlite3.Error as exc:
        return Check("last ship", "warn", f"cannot read the ship ledger {path}: {exc}")
    parts = [f"{d['destination']}: last successful ship {d['last_success']} ({d['events']:,} records that run)"
             for d in deliveries]
    if not deliveries:
        parts = [f"{d}: {n:,} events (time of the last successful ship not recorded yet)" for d, n in rows.items()]
    return Check("last ship", "info", "; ".join(parts) or "nothing shipped yet",
                 {"destinations": rows, "last_success": {d["destination"]: d["last_success"] for d in deliveries}})


def check_prices(env, now: datetime) -> Check:
    from nomira.pricing import feed
    from nomira.pricing.table import load_bundled
    generated = load_bundled().generated
    fresh = []
    for name in feed.FEEDS:
        cached = feed.read_cached(name, env)
        if cached and now - cached[1] < feed.FRESH_FOR:
            fresh.append(f"{name} fetched {cached[1]:%Y-%m-%d %H:%M} UTC")
    try:
        age = now - datetime.fromisoformat(generated).replace(tzinfo=timezone.utc)
    except ValueError:
        return Check("prices", "warn", f"bundled price table has no readable date ({generated!r})")
    data = {"bundled_as_of": generated, "bundled_age_days": age.days, "fresh_feeds": fresh}
    detail = f"bundled table of {generated} ({age.days} days old)"
    if fresh:
        return Check("prices", "ok", detail + "; fresh feeds: " + ", ".join(fresh), data)
    if age > PRICES_STALE:
        return Check("prices", "fail", detail + ", older than 60 days and no fresh feed: run `nomira prices "
                     "--update` (or upgrade Nomira)", data)
    return Check("prices", "ok", detail, data)


def _mentions_nomira_hook(node) -> bool:
    if isinstance(node, str):
        return "nomira hook" in node
    if isinstance(node, dict):
        return any(_mentions_nomira_hook(v) for v in node.values())
    if isinstance(node, list):
        return any(_mentions_nomira_hook(v) for v in node)
    return False


def check_hooks(env) -> list[Check]:
    from nomira.sources.paths import claude_config_dir, codex_home
    settings = claude_config_dir(env) / "settings.json"
    try:
        hooks = json.loads(settings.read_text()).get("hooks")
        claude = "installed" if _mentions_nomira_hook(hooks) else "not installed"
    except (OSError, ValueError, AttributeError):
        claude = "not installed"
    config = codex_home(env) / "config.toml"
    try:
        import tomllib
        notify = tomllib.loads(config.read_text()).get("notify")
        codex = "installed" if _mentions_nomira_hook(" ".join(map(str, notify)) if isinstance(notify, list)
                                                     else notify) else "not installed"
    except (OSError, ValueError):
        codex = "not installed"
    return [Check("hook claude", "info", f"{claude} ({settings} hooks)", {"state": claude}),
            Check("hook codex", "info", f"{codex} ({config} notify)", {"state": codex})]


def check_remote(url: str, timeout: float = 5.0) -> Check:
    import urllib.error
    import urllib.request
    from email.utils import parsedate_to_datetime
    health = url.rstrip("/") + "/healthz"
    sent = datetime.now(timezone.utc)
    try:
        with urllib.request.urlopen(health, timeout=timeout) as resp:
            status, date = resp.status, resp.headers.get("Date")
    except urllib.error.HTTPError as exc:
        return Check("collector", "fail", f"{health} answered HTTP {exc.code}", {"url": health})
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Check("collector", "fail", f"{health} unreachable ({getattr(exc, 'reason', exc)})", {"url": health})
    received = datetime.now(timezone.utc)
    local = sent + (received - sent) / 2
    try:
        skew = (parsedate_to_datetime(date) - local).total_seconds() if date else None
    except (TypeError, ValueError):
        skew = None
    data = {"url": health, "status": status, "clock_skew_seconds": skew}
    if skew is None:
        return Check("collector", "warn", f"{health} reachable (HTTP {status}) but sent no Date header: "
                     "clock skew unknown", data)
    detail = f"{health} reachable (HTTP {status}), clock skew {skew:+.0f} s"
    if abs(skew) > MAX_SKEW.total_seconds():
        return Check("collector", "fail", detail + ": fix this machine's clock (NTP); event times and "
                     "blocks would be off", data)
    return Check("collector", "ok", detail, data)


def check_pipeline(checks: list[Check], env, now: datetime) -> Check:
    """The /metrics pipeline series, from what is local: per-source drop (malformed) and parse-failure
    rates from the sources read, spool depth, and from a local store (if there is one) ingest lag,
    dedup rate and the last reconcile run's delta rate. Informational: the other checks judge."""
    from nomira.ledger import engine
    from nomira import dirs
    from nomira.collector.health import ratio
    sources = {c.name[len("source "):]: c.data for c in checks if c.name.startswith("source ") and c.data.get("files")}
    lines = sum(d["usage_lines"] + d["malformed_lines"] for d in sources.values())
    data = {"parse_failure_rate": ratio(sum(d["malformed_lines"] for d in sources.values()), lines),
            "source_drop_rate": {k: ratio(d["malformed_lines"], d["usage_lines"] + d["malformed_lines"])
                                 for k, d in sorted(sources.items())},
            "spool_depth": next((c.data.get("batches", 0) for c in checks if c.name == "spool"), 0),
            "store": None, "ingest_lag_seconds": None, "dedup_rate": None, "reconcile_delta_rate": None}
    target = dirs.default_db(env)
    if not engine.is_postgres(target) and Path(target).is_file():
        data["store"] = str(target)
        try:
            data.update(_store_rates(target, now))
        except Exception as exc:  # noqa: BLE001 - a store doctor cannot read is reported, never raised
            return Check("pipeline", "warn", f"cannot read the store {target}: {engine.first_line(exc)}", data)
    detail = f"parse failures {data['parse_failure_rate']:.2%}, spool depth {data['spool_depth']}"
    if data["store"]:
        lag = data["ingest_lag_seconds"]
        detail += (f"; store: ingest lag {'n/a' if lag is None else f'{lag:.0f} s'}, dedup {data['dedup_rate']:.2%}"
                   + ("" if data["reconcile_delta_rate"] is None
                      else f", reconcile delta {data['reconcile_delta_rate']:.2%}"))
    return Check("pipeline", "info", detail, data)


def _store_rates(target, now: datetime) -> dict:
    import sqlite3

    from nomira.collector.health import ratio, reconcile_delta_rate
    from nomira.ledger.events import parse_timestamp
    from nomira.ledger.rollups import ingest_stats
    db = sqlite3.connect(f"file:{target}?mode=ro", uri=True)  # never migrates or writes someone's store
    try:
        s = ingest_stats(db)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        delta = reconcile_delta_rate(db) if "reconcile_runs" in tables else None
    finally:
        db.close()
    last = parse_timestamp(s["last_occurred_at"]) if s["last_occurred_at"] else None
    lag = max(0.0, (now - last).total_seconds()) if last else None
    return {"ingest_lag_seconds": lag, "dedup_rate": ratio(s["superseded"], s["raw_events"]),
            "reconcile_delta_rate": delta}


def run_checks(selected, explicit, env: Mapping[str, str], cache, now: datetime, remote: str | None) -> list[Check]:
    checks = check_sources(selected, explicit, env, cache)
    checks += [check_spool(env, now), check_ledger(env), check_prices(env, now), *check_hooks(env)]
    checks.append(check_pipeline(checks, env, now))
    if remote:
        checks.append(check_remote(remote))
    return checks


MARK = {"ok": "ok  ", "info": "--  ", "warn": "warn", "fail": "FAIL"}


def cmd_doctor(args) -> int:
    from nomira.sources import scancache
    from nomira.cli import SOURCE_CHOICES
    from nomira.sources.registry import SOURCES
    env = os.environ
    selected = list(SOURCES) if args.source == "all" else SOURCE_CHOICES[args.source]
    try:
        cache = None if args.no_cache else scancache.ScanCache(scancache.default_path(env))
    except Exception:  # noqa: BLE001 - the cache is an optimisation; doctor reads the files instead
        cache = None
    try:
        checks = run_checks(selected, args.path, env, cache, datetime.now(timezone.utc), args.remote)
    except scancache.CacheDamaged:  # removed (the next run makes a new one); every file read
        cache.drop()
        checks = run_checks(selected, args.path, env, None, datetime.now(timezone.utc), args.remote)
    needs_action = any(c.status == "fail" for c in checks)
    if args.json:
        print(json.dumps(stamp({"needs_action": needs_action, "checks": [asdict(c) for c in checks]}), indent=1))
    else:
        absent = [c.name[len("source "):] for c in checks if c.name.startswith("source ") and not c.data.get("files")
                  and c.status == "info"]
        for c in checks:
            if c.name.startswith("source ") and c.name[len("source "):] in absent:
                if c.name[len("source "):] == absent[0]:
                    print(f"{MARK['info']}  {'sources':<16} not found: {', '.join(absent)}")
                continue
            print(f"{MARK[c.status]}  {c.name:<16} {c.detail}")
            for loc in c.data.get("malformed_at", []):
                print(f"{'':<24}malformed line at {loc}")
        print("needs action (see FAIL above)" if needs_action else "nothing needs action")
    return 1 if needs_action else 0
