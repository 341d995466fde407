"""`nomira.track()`: a team's own application reports one API call's usage, never its content.

The event is built, priced and validated by the same code as every other source (api_usage
mappings, the Pricer, the wire allowlist), then written to the local store (`NOMIRA_DB` or the
XDG default) or, when `NOMIRA_REMOTE` is set, made durable in the spool and delivered to the
collector by a background thread. Nothing here may raise into the caller's request path: a
failure is counted (`stats()`) and logged (`logging` "nomira.track" and
`$XDG_STATE_HOME/nomira/track.log`), and the call returns None.
"""
from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import datetime, timezone
from typing import Mapping

log = logging.getLogger("nomira.track")

# keyword arguments of track() that are event identity or origin, not business tags
RESERVED = ("message_id", "request_id", "session_id", "occurred_at", "source", "regime")
PROVIDERS = {"gemini": "google", "vertex": "google", "google-genai": "google", "azure": "openai",
             "azure-openai": "openai", "bedrock": "anthropic"}

FLUSH_OPTIONS = {"max_attempts": 3, "base_delay": 0.5, "max_delay": 5.0}  # bounded: then the next call retries
_lock = threading.RLock()
_counters = {"tracked": 0, "errors": 0, "delivered": 0, "pending_batches": 0}
_cache: dict = {}  # pricer, open store, file log handler, flusher thread


def track(provider: str, model: str, usage, **tags) -> dict | None:
    """Record one call: `usage` is the provider's usage object (dict or SDK object) or
    TokenCounts-like counts; `tags` are business tags (developer, project, feature, workflow,
    tier, customer, env) plus optional `message_id`/`request_id`/`session_id`/`occurred_at`.
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
    from nomira.events import UsageEvent, parse_timestamp
    from nomira.sources.api_usage import from_provider
    from nomira.wire import assert_no_content, to_wire
    tags = dict(tags)
    ident = {k: tags.pop(k) for k in RESERVED if k in tags}
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
                       request_id=ident.get("request_id"))
    wire = to_wire(event, _pricer(env)(event), ident.get("regime") or "api",
                   {k: str(v) for k, v in tags.items() if v is not None})
    assert_no_content(wire)
    return wire


def deliver(event: dict, env: Mapping[str, str] = os.environ) -> None:
    """Into the local store, or durably into the spool for the collector at NOMIRA_REMOTE."""
    from nomira import paths
    remote = env.get("NOMIRA_REMOTE")
    if remote:
        from nomira.spool import Spool
        Spool(paths.state_home(env) / "spool").put([event])
        _kick_flusher(remote, env.get("NOMIRA_TOKEN"), env)
        return
    from nomira import store
    path = str(paths.default_db(env))
    with _lock:
        db = _cache.get(("db", path))
        if db is None:
            db = _cache[("db", path)] = store.open_db(path)
        store.ingest(db, [event])


def _pricer(env):
    with _lock:
        pricer = _cache.get("pricer")
        if pricer is None:
            from nomira.pricing.engine import Pricer
            from nomira.pricing.table import resolved
            pricer = _cache["pricer"] = Pricer(resolved(env))
        return pricer


def _kick_flusher(remote: str, token: str | None, env) -> None:
    """One background delivery thread at a time; a call during a flush asks for one more round."""
    with _lock:
        _cache["again"] = True
        thread = _cache.get("flusher")
        if thread is not None and thread.is_alive():
            return
        thread = _cache["flusher"] = threading.Thread(target=_flush_loop, args=(remote, token, env),
                                                      name="nomira-track-flush", daemon=True)
        thread.start()


def _flush_loop(remote: str, token: str | None, env) -> None:
    from nomira import paths
    from nomira.ship import http_post
    from nomira.spool import Spool
    while True:
        with _lock:
            if not _cache.pop("again", False):
                return
        try:
            result = Spool(paths.state_home(env) / "spool").flush(http_post(remote, token, timeout=10.0),
                                                                   **FLUSH_OPTIONS)
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
    """Wait (up to `timeout` s) for background delivery to finish; returns `stats()`."""
    thread = _cache.get("flusher")
    if thread is not None:
        thread.join(timeout)
    return stats()


def stats() -> dict:
    """Calls recorded, errors, events delivered to a collector and batches still pending."""
    with _lock:
        return dict(_counters)


def error(message: str, env: Mapping[str, str] = os.environ) -> None:
    """Count and log a failure: `logging` and a file in the state dir, never an exception."""
    with _lock:
        _counters["errors"] += 1
        if "file_log" not in _cache:
            _cache["file_log"] = None
            try:
                from nomira import paths
                path = paths.state_home(env) / "track.log"
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


def reset() -> None:
    """Forget cached stores, prices and counters (tests; a process that changed its environment)."""
    flush(5.0)
    with _lock:
        for key, value in list(_cache.items()):
            if isinstance(key, tuple) and key[0] == "db":
                value.close()
        handler = _cache.get("file_log")
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
        _cache.clear()
        for key in _counters:
            _counters[key] = 0
