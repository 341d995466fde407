"""Pipeline health for /metrics (issue 17): ingest counters, dedup / parse-failure / per-source drop
rates, ingest lag and delay, and the last reconciliation's delta.

Two kinds of figures, named apart:
- this process's counters (`*_total`) and its rates, each over two windows: the last 5 minutes
  (`window="5m"`, 30 ten-second buckets: bounded memory) and since the process started
  (`window="process"`). Several collector processes are scraped one by one; sum their counters
  in PromQL (`sum(rate(nomira_ingest_deduped_total[5m]))`) for the fleet.
- the store's truth across every process: raw events, the share superseded, ingest lag, and over
  the newest raw events received in the last 5 minutes (at most RECENT_CAP of them) the share that
  were duplicates and how late they arrived (received_at - occurred_at).
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter, deque
from datetime import datetime, timedelta, timezone

MAX_SOURCES = 64  # label values a hostile client could mint are bounded: the rest count as "other"
_LABEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
WINDOW_SECONDS = 300
SLOTS = 30
RECENT_CAP = 10_000  # the store's recent figures read at most this many raw events per scrape
COUNTERS = ("ingest_requests", "ingest_events", "ingest_deduped", "ingest_rejected", "auth_failures",
            "ingest_bad_requests", "ingest_limit_snapshots")


def source_label(item, known) -> str:
    """The source an ingested item names, fit for a Prometheus label (never free text)."""
    src = item.get("source") if isinstance(item, dict) else None
    if isinstance(item, dict) and src is None and isinstance(item.get("payload"), dict):
        src = item.get("source_system")  # the /v1/usage/events envelope
    if not isinstance(src, str) or not _LABEL.fullmatch(src):
        return "unknown"
    return src if src in known or len(known) < MAX_SOURCES else "other"


class Windowed:
    """Counts since start and over the last WINDOW_SECONDS, in SLOTS buckets (memory: SLOTS x keys)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.total: Counter = Counter()
        self.slots: deque = deque()  # (bucket index, Counter), oldest first

    def _now(self) -> int:
        return int(self.clock() * SLOTS / WINDOW_SECONDS)

    def add(self, key, n: int = 1) -> None:
        self.total[key] += n
        i = self._now()
        if not self.slots or self.slots[-1][0] != i:
            self.slots.append((i, Counter()))
        self.slots[-1][1][key] += n
        while self.slots[0][0] <= i - SLOTS:
            self.slots.popleft()

    def recent(self, key) -> int:
        i = self._now()
        return sum(c[key] for j, c in self.slots if j > i - SLOTS)


class Metrics:
    """This process's ingest counters for /metrics, since start and over the last 5 minutes."""

    def __init__(self, clock=time.monotonic):
        self.lock = threading.Lock()
        self.w = Windowed(clock)
        self.sources: set[str] = set()

    def add(self, **kw) -> None:
        with self.lock:
            for k, v in kw.items():
                self.w.add(k, v)

    def source(self, items, dropped: bool) -> None:
        counts: Counter = Counter()
        with self.lock:
            for item in items:
                label = source_label(item, self.sources)
                self.sources.add(label)
                counts[label] += 1
            for label, n in counts.items():  # once per source of the batch, not per event (ingest's hot path)
                self.w.add(("received", label), n)
                if dropped:
                    self.w.add(("dropped", label), n)

    def snapshot(self) -> dict:
        """{"process": counts, "5m": counts} for the counters and per-source figures."""
        with self.lock:
            keys = [*COUNTERS, *((k, s) for s in sorted(self.sources) for k in ("received", "dropped"))]
            return {"process": {k: self.w.total[k] for k in keys}, "5m": {k: self.w.recent(k) for k in keys}}


def reconcile_delta_rate(db) -> float | None:
    """|billed - estimated| over billed, summed across the billed windows of the newest stored
    reconcile run; None when no run (or no billed window) is stored."""
    row = db.execute("SELECT body FROM reconcile_runs ORDER BY created_at DESC LIMIT 1").fetchone()
    if row is None:
        return None
    try:
        windows = json.loads(row[0])["built"]["windows"]
    except (ValueError, KeyError, TypeError):
        return None
    billed = [w for w in windows if w.get("billed_usd") is not None]
    total = sum(w["billed_usd"] for w in billed)
    if not billed or not total:
        return None
    return sum(abs(w["billed_usd"] - w["estimated_usd"]) for w in billed) / total


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def recent_store(db, now: datetime | None = None) -> dict:
    """Raw events received in the last WINDOW_SECONDS (newest RECENT_CAP at most), from the store:
    every collector process's arrivals. A duplicate is a raw row that is not its call's canonical
    copy: one per extra copy received, whichever copy won (a read by key, no scan); the delay is
    received_at - occurred_at of the canonical ones (a backfill of old history shows as a long delay)."""
    from nomira.ledger.events import parse_timestamp
    now = now or datetime.now(timezone.utc)
    cutoff = (now - timedelta(seconds=WINDOW_SECONDS)).isoformat()
    rows = db.execute("SELECT r.received_at, e.occurred_at, e.raw_id = r.id FROM raw_events r "
                      "LEFT JOIN events e ON e.dedup_key = r.dedup_key "
                      "ORDER BY r.id DESC LIMIT ?", (RECENT_CAP,)).fetchall()
    received = duplicates = 0
    delays = []
    for received_at, occurred_at, canonical in rows:
        if received_at < cutoff:
            break  # ids grow with arrival: everything further is older
        received += 1
        if not canonical:
            duplicates += 1
            continue
        got, at = parse_timestamp(received_at), parse_timestamp(occurred_at or "")
        if got is not None and at is not None:
            delays.append(max(0.0, (got - at).total_seconds()))
    delays.sort()
    return {"received": received, "duplicates": duplicates, "capped": len(rows) == RECENT_CAP and received == len(rows),
            "delay_p50": delays[len(delays) // 2] if delays else math.nan, "delay_max": delays[-1] if delays else math.nan}


def exposition(metrics: Metrics, db) -> str:
    """The /metrics text (Prometheus exposition format 0.0.4)."""
    from nomira.ledger import rollups
    from nomira.ledger.events import parse_timestamp
    s = rollups.ingest_stats(db)
    lag = math.nan
    if s["last_occurred_at"]:
        try:
            lag = max(0.0, time.time() - parse_timestamp(s["last_occurred_at"]).timestamp())
        except (ValueError, OverflowError, OSError, AttributeError):  # a bad row already stored: no lag, not a 500
            lag = math.nan
    delta = reconcile_delta_rate(db)
    recent = recent_store(db)
    snap = metrics.snapshot()
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples) -> None:
        out.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        for labels, value in samples:
            body = ",".join(f'{k}="{v}"' for k, v in labels)
            out.append(f"{name}{{{body}}} {value}" if body else f"{name} {value}")

    def windows(fn):
        return [((("window", w),), fn(snap[w])) for w in ("5m", "process")]

    family("nomira_ingest_dedup_rate", "gauge", "Duplicate events over events received (this process)",
           windows(lambda c: ratio(c["ingest_deduped"], c["ingest_events"] + c["ingest_deduped"])))
    family("nomira_ingest_parse_failure_rate", "gauge", "Ingest requests answered 400 over ingest requests "
           "(this process)", windows(lambda c: ratio(c["ingest_bad_requests"], c["ingest_requests"])))
    family("nomira_source_drop_rate", "gauge", "Events dropped (rejected) over events received, per source "
           "(this process)", [((("source", src), ("window", w)), ratio(snap[w][("dropped", src)],
                                                                        snap[w][("received", src)]))
                              for src in sorted(metrics.sources) for w in ("5m", "process")])
    for name, key, help_text in (
            ("nomira_ingest_requests_total", "ingest_requests", "Ingest requests (this process)"),
            ("nomira_ingest_events_total", "ingest_events", "New events accepted (this process)"),
            ("nomira_ingest_deduped_total", "ingest_deduped", "Duplicate events (this process)"),
            ("nomira_ingest_rejected_total", "ingest_rejected", "Events rejected by the schema (this process)"),
            ("nomira_ingest_bad_requests_total", "ingest_bad_requests", "Ingest requests answered 400 (this process)"),
            ("nomira_ingest_limit_snapshots_total", "ingest_limit_snapshots",
             "New limit snapshots accepted (this process)"),
            ("nomira_auth_failures_total", "auth_failures", "Ingest or login requests with a bad key or password")):
        family(name, "counter", help_text, [((), snap["process"][key])])
    for name, key, help_text in (("nomira_source_events_total", "received", "Events received per source "
                                  "(this process)"),
                                 ("nomira_source_dropped_total", "dropped", "Events dropped per source (this process)")):
        family(name, "counter", help_text, [((("source", src),), snap["process"][(key, src)])
                                            for src in sorted(metrics.sources)])
    family("nomira_reconcile_delta_rate", "gauge", "|billed - estimated| / billed in the last stored reconcile run",
           [((), delta if delta is not None else math.nan)])
    family("nomira_raw_events", "gauge", "Raw events stored", [((), s["raw_events"])])
    family("nomira_dedup_ratio", "gauge", "Share of raw events superseded as duplicates (store, all time)",
           [((), ratio(s["superseded"], s["raw_events"]))])
    family("nomira_ingest_lag_seconds", "gauge", "Seconds since the newest stored event occurred (store)", [((), lag)])
    family("nomira_store_recent_raw_events", "gauge", f"Raw events received in the last 5 minutes, every process "
           f"(store; at most {RECENT_CAP})", [((), recent["received"])])
    family("nomira_store_recent_dedup_rate", "gauge", "Share of the raw events received in the last 5 minutes "
           "that were duplicates (store, every process)", [((), ratio(recent["duplicates"], recent["received"]))])
    family("nomira_ingest_delay_seconds", "gauge", "received_at - occurred_at of the events received in the last "
           "5 minutes (store, every process)", [((("quantile", "0.5"),), recent["delay_p50"]),
                                                ((("quantile", "1"),), recent["delay_max"])])
    return "\n".join(out) + "\n"
