"""One usage-only event per proxied call, priced, validated, and written off the request path.

The event loop only appends what the response said (a `Call`: usage fields, never content) to a bounded
queue, without waking anyone; one writer thread, which looks at the queue every `interval`, prices and
validates each call and batches the events into the local store (one writer, so no lock contention) or into
the spool and on to a collector. Nothing here may fail a user's
request: every failure is a counter in `Metrics`.
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nomira.ledger.events import UsageEvent
from nomira.gateway.usage import Found
from nomira.ledger.wire import SchemaError, assert_no_content, to_wire

SOURCE = "gateway"
TAG_HEADERS = {f"x-nomira-{t}": t for t in ("developer", "project", "feature", "workflow", "tier", "customer", "env")}


COUNTERS = (
    "requests", "calls_recorded", "calls_recorded_partial", "calls_without_usage", "calls_unpriced",
    "unrecorded_compressed", "fields_dropped", "record_errors", "events_write_errors", "calls_dropped_queue_full",
    "events_recorded", "events_delivered", "delivery_errors", "events_dead_lettered",
    "spool_batches_other_destination", "upstream_4xx",
    "upstream_5xx", "upstream_unreachable", "upstream_timeouts", "upstream_broken_streams", "client_disconnects",
    "requests_refused", "handler_errors", "usage_body_too_large", "usage_unparseable_json",
    "usage_sse_line_too_large", "usage_unparseable_event", "usage_bad_compression", "uncategorized", "cpu_us")
SLOT = 8 * len(COUNTERS)  # bytes of one process's counters in a shared table


class Metrics:
    """Counters, served as JSON at /__nomira/metrics.

    Each process of the gateway writes its own row of a table of 64-bit counters (`shared`, an anonymous
    mmap made before the workers fork; private memory with one worker) and the snapshot sums the rows, so any
    worker answers for all of them without messages between processes.
    """

    def __init__(self, shared=None, row: int = 0, rows: int = 1):
        self.lock = threading.Lock()
        self.table = memoryview(shared if shared is not None else bytearray(SLOT * rows)).cast("q")
        self.base, self.rows = row * len(COUNTERS), rows
        self.index = {name: i for i, name in enumerate(COUNTERS)}
        self.started = time.time()

    @staticmethod
    def shared_table(rows: int):
        import mmap
        return mmap.mmap(-1, SLOT * rows)  # MAP_SHARED | MAP_ANONYMOUS: shared with the processes forked later

    def add(self, name: str, n: int = 1) -> None:
        i = self.index.get(name)
        if i is None:  # a name outside the table: still counted, never an error in a request
            i = self.index["uncategorized"]
        with self.lock:
            self.table[self.base + i] += n

    def set(self, name: str, value: int) -> None:
        """A gauge (a level, not a count of happenings); each process sets its own."""
        with self.lock:
            self.table[self.base + self.index[name]] = value

    def publish_cpu(self) -> None:
        """This process's CPU time (precise, user + system), for the snapshot's `cpu_s`."""
        self.set("cpu_us", int(time.process_time() * 1e6))

    def snapshot(self) -> dict:
        self.publish_cpu()
        width, table = len(COUNTERS), self.table
        totals = {name: sum(table[r * width + i] for r in range(self.rows)) for i, name in enumerate(COUNTERS)}
        cpu = totals.pop("cpu_us")
        return {"uptime_s": round(time.time() - self.started, 1), "cpu_s": round(cpu / 1e6, 4),
                **{name: v for name, v in sorted(totals.items()) if v}}


def tags_from_headers(headers) -> dict:
    """Business tags from `X-Nomira-*` request headers, (name, value) pairs (the tenant is never taken from
    a caller)."""
    tags = {}
    for name, value in headers:
        tag = TAG_HEADERS.get(name.lower())
        if tag and value.strip():
            tags[tag] = value.strip()
    return tags


def build_event(found: Found, tags: dict, occurred_at: datetime, request_id: str, pricer,
                metrics: Metrics) -> dict | None:
    """The wire event of one call, or None when the response carried no usage.

    A tag or id the allowlist refuses is dropped (and counted) rather than losing the call's usage.
    """
    tokens = found.tokens()
    if tokens is None or not found.model:
        return None
    modifiers = (("service_tier", found.service_tier),) if found.service_tier else ()
    event = UsageEvent(source=SOURCE, provider=found.provider, model=found.model, occurred_at=occurred_at,
                       session_id="", project=tags.get("project", ""), tokens=tokens,
                       message_id=found.response_id or None, request_id=request_id or None, modifiers=modifiers)
    wire = to_wire(event, pricer(event), "api", tags)
    for _ in range(len(tags) + 4):
        try:
            assert_no_content(wire)
            return wire
        except SchemaError as exc:
            metrics.add("fields_dropped")
            head, _, key = exc.field.partition(".")
            if head == "tags" and key in wire["tags"]:
                del wire["tags"][key]
            elif head in ("message_id", "request_id", "session_id"):
                wire[head] = None
            else:
                raise
    raise SchemaError("event", "could not be made valid")


@dataclass(slots=True)
class Call:
    """What one proxied call leaves behind for the writer: its usage reader (finished here, on the writer's
    thread: a JSON body's parse is not the relay's work) and its request headers (for the tags)."""

    reader: object  # a gateway.usage reader: `finish()` gives the Found
    headers: list  # (name, value) pairs as the client sent them
    occurred_at: datetime
    request_id: str
    complete: bool  # False: the stream broke or the client left; the usage seen so far is recorded


def event_for(call: Call, pricer, metrics: Metrics) -> dict | None:
    found = call.reader.finish()
    for problem in found.problems:
        metrics.add(f"usage_{problem}")
    event = build_event(found, tags_from_headers(call.headers), call.occurred_at, call.request_id, pricer, metrics)
    if event is None:
        metrics.add("calls_without_usage")
        return None
    if not call.complete:
        metrics.add("calls_recorded_partial")
    if event["cost_usd"] is None:
        metrics.add("calls_unpriced")
    metrics.add("calls_recorded")
    return event


class Recorder:
    """A bounded queue of calls and one writer thread; `put` never blocks, never raises, and wakes no thread
    (a thread woken per call cost the request path more than the append): the writer takes what gathered
    every `interval`, in batches, one transaction each."""

    def __init__(self, sink, metrics: Metrics, pricer, capacity: int = 10_000, batch: int = 500,
                 interval: float = 0.2):
        self.sink, self.metrics, self.pricer = sink, metrics, pricer
        self.q: collections.deque = collections.deque()
        self.capacity, self.batch, self.interval = capacity, batch, interval
        self.put_count = self.done_count = 0  # calls put; calls the writer is done with (drain compares them)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="nomira-recorder", daemon=True)
        self.thread.start()

    def put(self, call: Call) -> None:
        if len(self.q) >= self.capacity:
            self.metrics.add("calls_dropped_queue_full")
            return
        self.put_count += 1
        self.q.append(call)

    def _run(self) -> None:
        q, full = self.q, False
        while True:
            if not full:  # gather for a moment: one transaction per batch (a full batch goes on at once)
                if self.stopping and not q:
                    return
                if not self.stopping:
                    time.sleep(self.interval)
            calls = []
            while q and len(calls) < self.batch:
                calls.append(q.popleft())
            full = len(calls) == self.batch
            events = []  # (an empty batch still goes to the sink: the spool retries its deliveries then)
            for call in calls:
                try:
                    event = event_for(call, self.pricer, self.metrics)
                except Exception:  # noqa: BLE001 - one bad call is counted, the others are recorded
                    self.metrics.add("record_errors")
                    continue
                if event is not None:
                    events.append(event)
            try:
                self.sink.write(events)
                self.metrics.add("events_recorded", len(events))
            except Exception as exc:  # noqa: BLE001 - a sink failure is counted, never raised into a request
                self.metrics.add("events_write_errors", len(events))
                if events:
                    print(f"nomira gateway: could not record {len(events)} events: {type(exc).__name__}",
                          file=sys.stderr)
            self.metrics.publish_cpu()
            self.done_count += len(calls)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every call put so far went to the sink (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        target = self.put_count
        while self.done_count < target:
            if time.monotonic() > deadline or not self.thread.is_alive():
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        self.stopping = True
        self.thread.join(timeout)
        self.sink.close()


class StoreSink:
    """Events into a local SQLite store (the writer thread is its only writer)."""

    def __init__(self, db_path: Path):
        from nomira.ledger import store
        self.store, self.db = store, store.open_db(db_path)

    def write(self, events: list[dict]) -> None:
        if events:
            self.store.ingest(self.db, events)

    def close(self) -> None:
        self.db.close()


class SpoolSink:
    """Events into the durable spool, then on to a collector; delivery failures are retried later.

    Each batch is bound to the destination it was spooled for (collector URL and a SHA-256 of the key, which
    is what fixes the tenant): after a restart with another `--remote` or `--token`, batches left for the old
    one stay queued and are never sent to the new one (`spool_batches_other_destination` counts them).
    """

    def __init__(self, spool_dir: Path, post, metrics: Metrics, retry_every: float = 5.0, deliver: bool = True):
        from nomira.ledger.spool import Spool
        self.spool, self.post, self.metrics = Spool(spool_dir), post, metrics
        self.destination = getattr(post, "destination", None)
        self.deliver = deliver  # False: only spool (with several workers, one of them delivers for all)
        self.retry_every, self.next_try = retry_every, 0.0

    def others(self) -> int:
        """Batches queued for another destination (kept, never sent from here)."""
        return len(self.spool.batches()) - len(self.spool.batches_for(self.destination))

    def write(self, events: list[dict]) -> None:
        if events:
            self.spool.put(events, destination=self.destination)
        if not self.deliver or time.monotonic() < self.next_try or not self.spool.batches_for(self.destination):
            return
        result = self.spool.flush(self.post, max_attempts=1, destination=self.destination)
        self.metrics.set("spool_batches_other_destination", result.other_batches)
        self.metrics.add("events_delivered", result.delivered)
        if result.dead_lettered:
            self.metrics.add("events_dead_lettered", result.dead_lettered)
        if result.error:
            self.metrics.add("delivery_errors")
            self.next_try = time.monotonic() + self.retry_every

    def close(self) -> None:
        pass
