"""Reconciliation windows: the bill (authoritative) against event-derived estimates.

A window is one tenant/provider/day, split per model when every bill line of that day names
one. Each compares cost, tokens and requests within a tolerance of max(pct of the bill, floor);
a window over tolerance yields one adjustment (bill minus estimate, with the reason and the
bill lines it came from). Events are never edited: the reconciled figure of a billed window
is the bill, and estimate + adjustments + deltas within tolerance add up to it exactly.
Subscription usage is not billed per token, so it is left out and reported as such.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from nomira.reconcile import ledger
from nomira.reconcile.bills import model_key
from nomira.reports.aggregate import SUBSCRIPTION_SOURCES
from nomira.reports.render import usd

SILENT_LOOKBACK_DAYS = 7
EPSILON = 1e-9  # float noise, far below a cent or a token
SUBSCRIPTION_NOTE = ("Subscription usage is excluded: under a flat plan its dollars are API-equivalent value, "
                     "not a bill.")


@dataclass(frozen=True)
class Tolerance:
    pct: float  # share of the billed figure
    floor: float  # absolute minimum (USD, tokens or requests)

    def limit(self, billed: float) -> float:
        return max(abs(billed) * self.pct, self.floor)

    def __str__(self) -> str:
        return f"max({self.pct * 100:g}%, {self.floor:g})"


DEFAULT_TOLERANCES = {"cost": Tolerance(0.01, 0.05), "tokens": Tolerance(0.01, 200.0),
                      "requests": Tolerance(0.01, 3.0)}
DIMENSIONS = ("cost", "tokens", "requests")


def parse_tolerance(text: str) -> Tolerance:
    """"1%,0.05" (percent and floor), "2%" (no floor) or "0.10" (floor only)."""
    pct, floor = 0.0, 0.0
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            if part.endswith("%"):
                pct = float(part[:-1]) / 100
            else:
                floor = float(part)
        except ValueError:
            raise ValueError(f"not a tolerance (e.g. 1%,0.05): {text!r}") from None
    if pct < 0 or floor < 0:
        raise ValueError(f"a tolerance cannot be negative: {text!r}")
    return Tolerance(pct, floor)


def _sum(values):
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def compare(billed: dict, est: dict, tolerances: dict) -> tuple[str, list[str]]:
    """(within|over, reasons) for one window's billed vs estimated cost/tokens/requests."""
    reasons = []
    for dim in DIMENSIONS:
        b = billed[dim]
        if b is None:
            continue
        delta = b - est[dim]
        limit = tolerances[dim].limit(b)
        if abs(delta) > limit + EPSILON:
            fmt = usd if dim == "cost" else (lambda v: f"{v:,.0f}")
            reasons.append(f"{dim} over tolerance: billed {fmt(b)} vs estimated {fmt(est[dim])} "
                           f"(delta {'+' if delta >= 0 else '-'}{fmt(abs(delta))} > {fmt(limit)})")
    return ("over" if reasons else "within"), reasons


def _window(tenant, provider, day, model, lines, est, tolerances) -> dict:
    billed = {"cost": _sum(ln["cost_usd"] for ln in lines), "tokens": _sum(ln["tokens"] for ln in lines),
              "requests": _sum(ln["requests"] for ln in lines)}
    e = {"cost": est.get("cost_usd", 0.0), "tokens": est.get("tokens", 0), "requests": est.get("calls", 0)}
    if not lines:
        status = "observed_not_billed"
        reasons = ["model not on the bill" if model else "no bill line for this day (import gap)"]
    elif not e["requests"] and not any(billed.values()):
        status, reasons = "within", []  # a zero line (nothing billed, nothing seen) agrees
    elif not e["requests"]:
        status = "billed_not_observed"
        reasons = [f"model {model} billed but not observed (missing ingest, or a line item events do not carry)"
                   if model else "billed but no usage observed (missing ingest)"]
    else:
        status, reasons = compare(billed, e, tolerances)
    basis = "reconciled" if billed["cost"] is not None else "estimated"
    return {"tenant": tenant, "provider": provider, "day": day, "model": model,
            "accounts": sorted({ln["account"] for ln in lines}), "status": status, "reasons": reasons,
            "billed_usd": billed["cost"], "billed_tokens": billed["tokens"], "billed_requests": billed["requests"],
            "estimated_usd": e["cost"], "estimated_tokens": e["tokens"], "estimated_requests": e["requests"],
            "unpriced_calls": est.get("unpriced_calls", 0),
            "delta_usd": None if billed["cost"] is None else billed["cost"] - e["cost"],
            "delta_tokens": None if billed["tokens"] is None else billed["tokens"] - e["tokens"],
            "delta_requests": None if billed["requests"] is None else billed["requests"] - e["requests"],
            "basis": basis, "total_usd": billed["cost"] if basis == "reconciled" else e["cost"],
            "bill_line_ids": [ln["id"] for ln in lines],
            "bill_ref": "; ".join(f"{ln['source']} {ln['row_ref']}".strip() for ln in lines)}


def _adjustment(w: dict) -> dict:
    return {"tenant": w["tenant"], "provider": w["provider"], "day": w["day"], "model": w["model"],
            "cost_usd": w["delta_usd"] if w["delta_usd"] is not None else 0.0, "tokens": w["delta_tokens"],
            "requests": w["delta_requests"], "reason": "; ".join(w["reasons"]), "bill_line_ids": w["bill_line_ids"],
            "bill_ref": w["bill_ref"]}


def build(lines: list[dict], observed: list[dict], tolerances: dict | None = None, since: str | None = None) -> dict:
    """Windows, per-day classes and the adjustments they call for; pure (`observed` may start a week
    before `since`: those rows only tell who was active)."""
    tolerances = tolerances or DEFAULT_TOLERANCES
    billed_days: dict[tuple, list[dict]] = defaultdict(list)
    for ln in lines:
        billed_days[(ln["tenant"], ln["provider"], ln["day"])].append(ln)
    coverage: dict[tuple, tuple[str, str]] = {}
    for (t, p, d) in billed_days:
        lo, hi = coverage.get((t, p), (d, d))
        coverage[(t, p)] = (min(lo, d), max(hi, d))
    seen: dict[tuple, dict[str, dict]] = defaultdict(dict)
    excluded: dict[tuple, dict] = {}  # per tenant/provider/day, so a page can narrow by tenant and period
    unbilled: dict[tuple, float] = defaultdict(float)
    activity = {(o["tenant"], o["provider"], o["day"], o["developer"], o["source"]) for o in observed}
    for o in observed:
        if since is not None and o["day"] < since:
            continue  # the week before: only to see who was active
        key = (o["tenant"], o["provider"], o["day"])
        if o["regime"] == "subscription" or (o["regime"] == "mixed" and o["source"] in SUBSCRIPTION_SOURCES):
            x = excluded.setdefault(key, {"tenant": key[0], "provider": key[1], "day": key[2], "calls": 0,
                                          "value_usd": 0.0})
            x["calls"] += o["calls"]
            x["value_usd"] += o["cost_usd"]
            continue
        span = coverage.get(key[:2])
        if span is None or not span[0] <= key[2] <= span[1]:
            unbilled[key] += o["cost_usd"]  # outside any imported bill: an estimate, not a gap
            continue
        agg = seen[key].setdefault(model_key(o["model"]), {"calls": 0, "tokens": 0, "cost_usd": 0.0,
                                                           "unpriced_calls": 0})
        for f in agg:
            agg[f] += o[f]
    windows, days = [], []
    for key in sorted(set(billed_days) | set(seen)):
        t, p, d = key
        day_lines, models = billed_days.get(key, []), seen.get(key, {})
        if day_lines and all(ln["model"] for ln in day_lines):
            by_model = defaultdict(list)
            for ln in day_lines:
                by_model[ln["model"]].append(ln)
            for m in sorted(set(by_model) | set(models)):
                windows.append(_window(t, p, d, m, by_model.get(m, []), models.get(m, {}), tolerances))
        else:
            total = {f: sum(a[f] for a in models.values()) for f in ("calls", "tokens", "cost_usd", "unpriced_calls")}
            windows.append(_window(t, p, d, "", day_lines, total, tolerances))
        kind = ("billed_and_observed" if day_lines and models else "billed_not_observed" if day_lines
                else "observed_not_billed")
        days.append({"tenant": t, "provider": p, "day": d, "class": kind})
    _name_silent(days, windows, activity)
    return {"windows": windows, "days": days, "wanted": [_adjustment(w) for w in windows
                                                         if w["status"] in ("over", "billed_not_observed")],
            "excluded": [excluded[k] for k in sorted(excluded)],
            "unbilled": [{"tenant": t, "provider": p, "day": d, "cost_usd": c} for (t, p, d), c in sorted(unbilled.items())]}


def narrow(built: dict, tenant: str | None, since: str | None) -> dict:
    """The part of a (stored) run one view may see: its tenant, from its first day."""
    keep = lambda r: (tenant is None or r["tenant"] == tenant) and (since is None or r["day"] >= since)  # noqa: E731
    return {k: [r for r in v if keep(r)] for k, v in built.items()}


def _name_silent(days: list[dict], windows: list[dict], activity: set[tuple]) -> None:
    """Who was active in the week before a short day but silent on it: where ingest went missing."""
    active: dict[tuple, set] = defaultdict(set)
    for t, p, d, dev, src in activity:
        active[(t, p, d)].add((dev or "(no developer)", src or ""))
    short = {(w["tenant"], w["provider"], w["day"]) for w in windows
             if w["status"] == "billed_not_observed" or (w["status"] == "over" and (w["delta_usd"] or 0) > 0)}
    for day in days:
        key = (day["tenant"], day["provider"], day["day"])
        if day["class"] != "billed_not_observed" and key not in short:
            continue
        d0 = date.fromisoformat(day["day"])
        before = set()
        for i in range(1, SILENT_LOOKBACK_DAYS + 1):
            before |= active.get((key[0], key[1], (d0 - timedelta(days=i)).isoformat()), set())
        day["silent"] = [{"developer": dev, "source": src} for dev, src in sorted(before - active.get(key, set()))]
        for w in windows:
            if (w["tenant"], w["provider"], w["day"]) == key:
                w["silent"] = day["silent"]


def summarize(built: dict, recorded: list[dict], tolerances: dict) -> dict:
    """The report: windows with their recorded adjustment, daily rows, totals, warnings, next steps."""
    adj = {(a["tenant"], a["provider"], a["day"], a["model"]): a for a in recorded}
    windows = built["windows"]
    for w in windows:
        a = adj.get((w["tenant"], w["provider"], w["day"], w["model"]))
        w["adjustment_usd"] = a["cost_usd"] if a else None
        w["adjustment_id"] = a["id"] if a else None
    billed = [w for w in windows if w["billed_usd"] is not None]
    totals = {"reconciled_usd": sum(w["billed_usd"] for w in billed),
              "estimated_billed_usd": sum(w["estimated_usd"] for w in billed),
              "adjustments_usd": sum(w["adjustment_usd"] or 0.0 for w in billed if w["status"] != "within"),
              "within_tolerance_usd": sum(w["delta_usd"] for w in billed if w["status"] == "within"),
              "estimated_unbilled_usd": sum(u["cost_usd"] for u in built["unbilled"]) + sum(
                  w["estimated_usd"] for w in windows if w["billed_usd"] is None)}
    daily: dict[tuple, dict] = {}
    for w in windows:
        r = daily.setdefault((w["tenant"], w["provider"], w["day"]), {
            "tenant": w["tenant"], "provider": w["provider"], "day": w["day"], "billed_usd": None,
            "estimated_usd": 0.0, "statuses": set()})
        if w["billed_usd"] is not None:
            r["billed_usd"] = (r["billed_usd"] or 0.0) + w["billed_usd"]
        r["estimated_usd"] += w["estimated_usd"]
        r["statuses"].add(w["status"])
    for r in daily.values():
        order = ("billed_not_observed", "observed_not_billed", "over", "within")
        statuses = r.pop("statuses")
        r["status"] = next(s for s in order if s in statuses)
        r["delta_usd"] = None if r["billed_usd"] is None else r["billed_usd"] - r["estimated_usd"]
        r["basis"] = "reconciled" if r["billed_usd"] is not None else "estimated"
    counts: dict[str, int] = {}
    for w in windows:
        counts[w["status"]] = counts.get(w["status"], 0) + 1
    missing = [d for d in built["days"] if d["class"] != "billed_and_observed"]
    unrecorded = [w for w in built["wanted"] if (w["tenant"], w["provider"], w["day"], w["model"]) not in adj]
    warnings, steps = [], []
    if counts.get("over"):
        warnings.append(f"{counts['over']} window(s) over tolerance")
    if any(w["unpriced_calls"] for w in windows):
        warnings.append("some observed calls are unpriced: their estimate is $0 (see `nomira prices MODEL`)")
    gone = [d for d in missing if d["class"] == "billed_not_observed"]
    gaps = [d for d in missing if d["class"] == "observed_not_billed"]
    if gone:
        warnings.append(f"{len(gone)} day(s) billed but not observed (missing ingest)")
        steps.append("Billed but not observed: ship from the silent developers/sources listed "
                     "(`nomira ship`), then run `nomira reconcile` again.")
    if gaps:
        warnings.append(f"{len(gaps)} day(s) observed but not billed (import gap)")
        steps.append("Observed but not billed: import the bill for those days (`nomira reconcile import FILE` "
                     "or `nomira reconcile fetch --provider anthropic|openai`).")
    if unrecorded:
        steps.append(f"Run `nomira reconcile` to record {len(unrecorded)} adjustment(s) not yet recorded.")
    if counts.get("over"):
        steps.append("Over tolerance: check unpriced or new models and price overrides; the adjustment keeps "
                     "the reconciled total equal to the bill meanwhile.")
    excluded: dict[tuple, dict] = {}
    for x in built["excluded"]:
        e = excluded.setdefault((x["tenant"], x["provider"]), {"tenant": x["tenant"], "provider": x["provider"],
                                                                "calls": 0, "value_usd": 0.0})
        e["calls"] += x["calls"]
        e["value_usd"] += x["value_usd"]
    if excluded:
        steps.append("Subscription calls were left out; if they were in fact billed per token (an API key in "
                     "Claude Code or Codex), ship them with `nomira ship --regime api`.")
    if not windows:
        steps.append("No bill imported yet: `nomira reconcile import FILE` or `nomira reconcile fetch`.")
    return {"tolerances": {k: {"pct": v.pct, "floor": v.floor, "text": str(v)} for k, v in tolerances.items()},
            "totals": totals, "counts": counts, "daily": sorted(daily.values(), key=lambda r: (
                r["tenant"], r["provider"], r["day"])), "windows": windows, "missing_days": missing,
            "adjustments": recorded, "unrecorded_adjustments": len(unrecorded),
            "excluded_subscription": [excluded[k] for k in sorted(excluded)], "subscription_note": SUBSCRIPTION_NOTE,
            "warnings": warnings, "next_steps": steps}


def reconcile(db, tenant: str | None = None, since: str | None = None, until: str | None = None,
              tolerances: dict | None = None, record: bool = True) -> dict:
    """Read bills and events in scope, build windows; with `record`, write the adjustments."""
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    lines = ledger.bill_lines(db, tenant, since, until)
    if since is None and until is None and lines:  # from the first billed day, not every event ever stored
        since = min(ln["day"] for ln in lines)
    look = (date.fromisoformat(since) - timedelta(days=SILENT_LOOKBACK_DAYS)).isoformat() if since else None
    built = build(lines, ledger.observed(db, tenant, look, until), tolerances, since)
    changes = None
    if record:
        changes = ledger.sync_adjustments(db, built["wanted"], tenant, since, until) if lines else None
        ledger.save_run(db, "*" if tenant is None else tenant, since, until,
                        {"built": built, "tolerances": {k: [v.pct, v.floor] for k, v in tolerances.items()}})
    report = summarize(built, ledger.adjustments(db, tenant, since, until), tolerances)
    report.update({"tenant": tenant, "since": since, "until": until, "recorded": changes})
    _with_imports(report, ledger.imports(db, tenant))
    return report


def stored(db, tenant: str | None, since: str | None) -> dict:
    """The report a dashboard view shows: the last recorded run, narrowed to the view, with how
    fresh it is. Reads no events."""
    run = ledger.load_run(db, tenant)
    fresh = ledger.freshness(db, tenant)
    if run is None:
        report = summarize({"windows": [], "days": [], "wanted": [], "excluded": [], "unbilled": []}, [],
                           DEFAULT_TOLERANCES)
        report["next_steps"].insert(0, "Run `nomira reconcile` (after an import or fetch): this page shows its "
                                       "last run.")
        return {**report, "tenant": tenant, "since": since, "as_of": None, "stale": []}
    body = run["built"]
    tolerances = {k: Tolerance(*v) for k, v in body["tolerances"].items()}
    since = max(filter(None, (since, run["since"])), default=None)
    report = summarize(narrow(body["built"], tenant, since), ledger.adjustments(db, tenant, since, run["until"]),
                       tolerances)
    stale = []
    if fresh["last_import_at"] and fresh["last_import_at"] > run["created_at"]:
        stale.append("bills were imported after this run")
    if fresh["raw_watermark"] > run["raw_watermark"]:
        stale.append(f"{fresh['raw_watermark'] - run['raw_watermark']:,} event(s) arrived after this run")
    if stale:
        report["next_steps"].insert(0, f"Run `nomira reconcile` to refresh: {'; '.join(stale)}.")
    report.update({"tenant": tenant, "since": since, "until": run["until"], "as_of": run["created_at"],
                   "stale": stale})
    return _with_imports(report, ledger.imports(db, tenant))


def _with_imports(report: dict, imports: list[dict]) -> dict:
    """Recent imports, and a warning for each that skipped rows (other currencies, unreadable)."""
    report["imports"] = imports
    for imp in imports:
        s = imp["summary"]
        skipped = ", ".join(f"{n} in {cur}" for cur, n in sorted(s.get("skipped_currency", {}).items()))
        if skipped or s.get("garbage"):
            report["warnings"].append(
                f"{imp['source']} ({imp['created_at'][:10]}) skipped "
                + "; ".join(filter(None, (f"rows {skipped} (not converted)" if skipped else "",
                                          f"{s['garbage']} unreadable row(s)" if s.get("garbage") else ""))))
    return report
