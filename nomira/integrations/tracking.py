"""`nomira.track()`: a team's own application reports one API call's usage, never its content.

The event is built, priced and validated by the same code as every other source (api_usage
mappings, the Pricer, the wire allowlist), then written to the local store (`NOMIRA_DB` or the
XDG default) or, when `NOMIRA_REMOTE` is set, made durable in the spool and delivered to the
collector. The caller's thread only builds the event and queues it: a background writer
batches the queue into one store transaction or one spool file, a second thread delivers the
spool (`flush()` waits for both; it runs at exit too). Nothing here may raise into the
caller's request path: a failure is counted (`stats()`) and logged (`logging` "nomira.track"
and `$XDG_STATE_HOME/nomira/track.log`), and a call whose event cannot be built returns None.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

log = logging.getLogger("nomira.track")

# keyword arguments of track() that are event identity or origin, not business tags
RESERVED = ("message_id", "request_id", "session_id", "occurred_at", "source", "regime")
PROVIDERS = {"gemini": "google", "vertex": "google", "google-genai": "google", "azure": "openai",
             "azure-openai": "openai", "bedrock": "anthropic"}

FLUSH_OPTIONS = {"max_attempts": 3, "base_delay": 0.5, "max_delay": 5.0}  # bounded: then the next call retries
_lock = threading.RLock()
_idle = threading.Condition(_lock)  # the writer's queue changed
_queue: list[tuple[tuple, dict]] = []  # (destination, event) waiting for the writer
_counters = {"tracked": 0, "errors": 0, "delivered": 0, "pending_batches": 0}
_cache: dict = {}  # pricer, open store, file log handler, flusher thread


def track(provider: str, model: str, usage, **tags) -> dict | None:
    """Record one call: `usage` is the provider's usage object (dict or SDK object) or
    TokenCounts-like counts; `tags` are business tags (developer, project, feature, workflow,
    tier, customer, env) plus optional `message_id`/`request_id`/`session_id`/`occurred_at` and the
    response's `service_tier` (`speed`, `inference_geo`), which price the call.
    Returns the wire event recorded, or None when it could not be (never raises)."""
    try:
        event = build_event(provider, model, usage, tags)
        deliver(event)
        with _lock:
            _counters["tracked"] += 1
        return event
    except Exception as exc:  # noqa: BLE001 - the caller's request must never fail because of us
        error(f"track({provider!r}, {model!r}) not recorded: {type(exc).__name__}: {exc}")
        return None


def build_event(provider: str, model: str, usage, tags: dict, env: Mapping[str, str] = os.environ) -> dict:
    """The validated, priced wire event of one call (raises on bad input)."""
    from nomira.ledger.events import UsageEvent, parse_timestamp
    from nomira.sources.api_usage import from_provider
    from nomira.ledger.wire import MODIFIER_FIELDS, assert_no_content, to_wire
    tags = dict(tags)
    ident = {k: tags.pop(k) for k in RESERVED if k in tags}
    # the price modifiers a response names (OpenAI's and Anthropic's `service_tier`, Anthropic's `speed`
    # and `inference_geo`): flex is half price, priority more, fast mode a multiple
    modifiers = tuple(sorted((k, str(v)) for k in MODIFIER_FIELDS if (v := tags.pop(k, None)) not in (None, "")))
    provider = str(provider or "other").lower()
    provider = PROVIDERS.get(provider, provider)
    at = ident.get("occurred_at")
    if isinstance(at, str):
        at = parse_timestamp(at)
    if not isinstance(at, datetime):
        at = datetime.now(timezone.utc)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    event = UsageEvent(source=ident.get("source") or "sdk", provider=provider, model=str(model),
                       occurred_at=at, session_id=ident.get("session_id") or "",
                       project=tags.get("project") or "", tokens=from_provider(provider, usage),
                       # one event per call: without the provider's id, a fresh one (never a fingerprint
                       # that two identical calls in the same microsecond would share)
                       message_id=ident.get("message_id") or f"trk-{uuid.uuid4().hex}",
                       request_id=ident.get("request_id"), modifiers=modifiers)
    wire = to_wire(event, _pricer(env)(event), ident.get("regime") or "api",
                   {k: str(v) for k, v in tags.items() if v is not None})
    assert_no_content(wire)
    return wire


def deliver(event: dict, env: Mapping[str, str] = os.environ) -> None:
    """Queue `event` for the background writer: the local store, or (NOMIRA_REMOTE) the durable
    spool and then the collector. The caller pays for a list append, not a disk write."""
    from nomira import dirs
    remote = env.get("NOMIRA_REMOTE")
    if remote:
        dest = ("remote", remote, env.get("NOMIRA_TOKEN"), str(dirs.state_home(env)))
    else:
        dest = ("db", str(dirs.default_db(env)))
    with _idle:
        _queue.append((dest, event))
        _cache["busy"] = _cache.get("busy", 0) + 1
        writer = _cache.get("writer")
        if writer is None or not writer.is_alive():
            if writer is None:
                atexit.register(flush, 5.0)
            writer = _cache["writer"] = threading.Thread(target=_write_loop, name="nomira-track-writer",
                                                         daemon=True)
            writer.start()
        _idle.notify_all()


def _write_loop() -> None:
    """Drain the queue a batch at a time: one store transaction or one spool file per destination."""
    while True:
        with _idle:
            while not _queue:
                _idle.wait()
            batch = _queue[:]
            _queue.clear()
        by_dest: dict[tuple, list[dict]] = {}
        for dest, event in batch:
            by_dest.setdefault(dest, []).append(event)
        for dest, events in by_dest.items():
            try:
                _write(dest, events)
            except Exception as exc:  # noqa: BLE001 - a background thread must not die
                error(f"{len(events)} tracked events not written to {dest[1]}: {type(exc).__name__}: {exc}",
                      count=len(events))
        with _idle:
            _cache["busy"] -= len(batch)
            _idle.notify_all()


def _write(dest: tuple, events: list[dict]) -> None:
    if dest[0] == "remote":
        from nomira.ledger.spool import Spool
        _, remote, token, state = dest
        Spool(Path(state) / "spool").put(events, **_bound(_post(remote, token)))
        _kick_flusher(remote, token, state)
        return
    from nomira.ledger import store
    db = _cache.get(dest)
    if db is None:
        db = _cache[dest] = store.open_db(dest[1])
    store.ingest(db, events)


def _pricer(env):
    with _lock:
        pricer = _cache.get("pricer")
        if pricer is None:
            from nomira.pricing.engine import Pricer
            from nomira.pricing.feed import resolved
            pricer = _cache["pricer"] = Pricer(resolved(env))
        return pricer


def _kick_flusher(remote: str, token: str | None, state: str) -> None:
    """One background delivery thread at a time; a call during a flush asks for one more round."""
    with _lock:
        _cache["again"] = True
        thread = _cache.get("flusher")
        if thread is not None and thread.is_alive():
            return
        thread = _cache["flusher"] = threading.Thread(target=_flush_loop, args=(remote, token, state),
                                                      name="nomira-track-flush", daemon=True)
        thread.start()


def _post(remote: str, token: str | None):
    from nomira.ledger.ship import http_post
    return http_post(remote, token, timeout=10.0)


def _bound(post) -> dict:
    """Spool arguments that bind batches to the one collector and key `post` sends to, where the
    spool supports it (a post object with a `destination`)."""
    destination = getattr(post, "destination", None)
    return {"destination": destination} if destination is not None else {}


def _flush_loop(remote: str, token: str | None, state: str) -> None:
    from nomira.ledger.spool import Spool
    while True:
        with _lock:
            if not _cache.pop("again", False):
                return
        try:
            post = _post(remote, token)
            result = Spool(Path(state) / "spool").flush(post, **FLUSH_OPTIONS, **_bound(post))
            with _lock:
                _counters["delivered"] += result.delivered
                _counters["pending_batches"] = result.pending_batches
            if result.error:
                error(f"delivery to {remote} deferred: {result.error}")
            if result.dead_lettered:
                error(f"{result.dead_lettered} events rejected by {remote} (kept in the spool's dead-letter file)")
        except Exception as exc:  # noqa: BLE001 - a background thread must not die noisily
            error(f"delivery to {remote} failed: {type(exc).__name__}: {exc}")


def flush(timeout: float = 10.0) -> dict:
    """Wait (up to `timeout` s) until every queued event is written and a delivery round to the
    collector is done; returns `stats()`. Registered with atexit on first use."""
    deadline = time.monotonic() + timeout
    with _idle:
        _idle.wait_for(lambda: not _cache.get("busy"), timeout)
    thread = _cache.get("flusher")
    if thread is not None:
        thread.join(max(0.0, deadline - time.monotonic()))
    return stats()


def stats() -> dict:
    """Calls recorded, errors, events delivered to a collector and batches still pending."""
    with _lock:
        return dict(_counters)


LOG_EVERY = 60.0  # seconds: the same message is counted every time but logged at most this often


def error(message: str, count: int = 1, env: Mapping[str, str] = os.environ) -> None:
    """Count and log a failure: `logging` and a file in the state dir, never an exception."""
    now = time.monotonic()
    with _lock:
        _counters["errors"] += count
        logged = _cache.setdefault("logged", {})
        if now - logged.get(message, -LOG_EVERY) < LOG_EVERY:
            return
        logged[message] = now
        if "file_log" not in _cache:
            _cache["file_log"] = None
            try:
                from nomira import dirs
                path = dirs.state_home(env) / "track.log"
                path.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.FileHandler(path, delay=True)
                handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
                log.addHandler(handler)
                _cache["file_log"] = handler
            except OSError:
                pass
    try:
        log.warning(message)
    except Exception:  # noqa: BLE001 - a broken log handler must not reach the caller either
        pass


def _after_fork() -> None:
    """A forked child (pre-fork servers) starts with fresh locks, an empty queue and no threads or
    store connections of its parent's."""
    global _lock, _idle, _queue
    _lock = threading.RLock()
    _idle = threading.Condition(_lock)
    _queue = []
    for key in [k for k in _cache if isinstance(k, tuple) or k in ("writer", "flusher", "busy", "again")]:
        del _cache[key]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def reset() -> None:
    """Forget cached stores, prices and counters (tests; a process that changed its environment)."""
    flush(5.0)
    with _lock:
        for key, value in list(_cache.items()):
            if isinstance(key, tuple) and key[0] == "db":
                value.close()
                del _cache[key]
        handler = _cache.get("file_log")
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
        for key in ("pricer", "file_log", "flusher", "again", "logged"):
            _cache.pop(key, None)
        for key in _counters:
            _counters[key] = 0
