"""A durable on-disk queue between `nomira ship --remote` and a collector.

A spool record (one file in `pending/`) is a batch: `spool_id` (UUID), `created_at`,
`source_system`, `source_channel`, `destination`, `attempt`, `last_error` and the `payload`
(usage-only events). Records are written atomically (temp file, fsync, rename) before any
network call, sent oldest first, and deleted only after the collector accepted them:
at-least-once delivery, and the collector's dedup key makes a re-sent batch harmless. A
batch the collector rejects as invalid (a permanent 4xx) is split until the bad events are
isolated; those go to the dead-letter file with their error, the rest are delivered. Network
and server errors back off exponentially with jitter and are recorded on the record (attempt,
last_error); an authentication error or a redirect stops the flush and keeps everything.
`nomira spool status | retry | drop` shows, re-sends or discards what is queued and dead.

A record may also carry `day_zone` (the IANA zone of the machine that shipped it) and
`repin_day_zone`: they are sent with the batch whenever it is retried, so a batch keeps the zone it
was shipped with; a record without them (older versions) is sent without, which pins nothing.

A batch belongs to the destination it was queued for (collector URL and a SHA-256 of
the credential): it is only ever sent there, never to whichever collector answers next
nor under another key. Batches for other destinations stay queued and are reported; the one
exception is a collector reached under a new URL with the same key, which the shipper knows is the
same store by the id both URLs answered (`rebind`): its batches follow it there.
Records of older versions (`{"destination", "events"}`) are read and sent the same way.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from nomira.ledger.wire import BATCH_OPTIONS, channel_of

Post = Callable[..., tuple[int, str]]  # (events, **batch fields) -> (HTTP status or 0 for no connection, body)
# Batch-level fields a record may carry and is sent with (issue 28): the zone the batch was shipped
# from, and an explicit re-pin. A record without them (older versions) is sent without them.
BATCH_FIELDS = BATCH_OPTIONS


@dataclass
class FlushResult:
    delivered: int = 0
    dead_lettered: int = 0
    pending_batches: int = 0
    error: str | None = None
    attempts: int = 0
    rejected: list = field(default_factory=list)
    other_batches: int = 0  # queued for another destination (URL or credential): kept, not sent
    other_destinations: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)  # damaged batch files, moved aside


class Spool:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.pending_dir = self.root / "pending"
        self.dead_letter = self.root / "dead-letter.jsonl"
        self.pending_dir.mkdir(parents=True, exist_ok=True)

    def put(self, events: list[dict], batch_size: int = 5000, destination: dict | None = None,
            batch: dict | None = None) -> int:
        """Write events as durable records for `destination`; returns how many were written. `batch`:
        batch-level fields every record keeps and is sent with (the shipping machine's `day_zone`)."""
        n = 0
        for i in range(0, len(events), batch_size):
            chunk = events[i:i + batch_size]
            record = {"spool_id": str(uuid.uuid4()), "created_at": _now(),
                      "source_system": _one({e.get("source") or "unknown" for e in chunk}),
                      "source_channel": _one({channel_of(e) for e in chunk}), "destination": destination,
                      "attempt": 0, "last_error": None, "payload": chunk, **(batch or {})}
            name = f"batch-{time.time_ns():020d}-{os.getpid()}-{random.getrandbits(32):08x}-{_tag(destination)}.json"
            _write(self.pending_dir / name, record)
            n += 1
        return n

    def batches(self) -> list[Path]:
        """Every pending batch file, in queue order."""
        return sorted(self.pending_dir.glob("batch-*.json"))

    def batches_for(self, destination: dict | None) -> list[Path]:
        return [p for p in self.batches() if _tag_of(p) == _tag(destination)]

    def rebind(self, destination: dict, same: Callable[[dict], bool]) -> int:
        """Batches queued for another destination that `same(its destination)` says is `destination`'s
        store under another URL (the collector moved: a new name, https in front), bound to
        `destination`, in their place in the queue; returns how many. Only the shipper that knows both
        URLs reached one store can say so (`commands.ship`); any other batch stays bound to its own."""
        moved = 0
        for path in self.batches():
            if _tag_of(path) == _tag(destination):
                continue
            try:
                record = _read(path)
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue  # (flush sets it aside when its own destination is shipped to)
            old = record.get("destination")
            if not isinstance(old, dict) or not same(old):
                continue
            record["destination"] = destination
            stem = path.stem.split("-")
            _write(self.pending_dir / f"{'-'.join(stem[:4])}-{_tag(destination)}.json", record)
            path.unlink(missing_ok=True)
            moved += 1
        return moved

    def damaged_for(self, destination: dict | None) -> list[Path]:
        """The damaged batches set aside (`flush`) that were queued for `destination` and whose calls
        were not yet queued again (`resent`)."""
        return [p for p in sorted(self.pending_dir.glob("batch-*.unreadable")) if _tag_of(p) == _tag(destination)]

    def resent(self, damaged: list[Path]) -> None:
        """Damaged batches whose calls the shipper queued again (which calls a damaged file held cannot be
        read, so it sends all it has): kept beside as `*.resent`, for a look, never counted again."""
        for p in damaged:
            try:
                os.replace(p, p.with_suffix(".resent"))
            except FileNotFoundError:  # (another shipper took it)
                pass

    def _dead(self, events: list[dict], status: int, body: str, record: dict | None = None) -> None:
        record = record or {}
        with open(self.dead_letter, "a") as fh:
            for e in events:
                fh.write(json.dumps({
                    "spool_id": record.get("spool_id"), "created_at": record.get("created_at"), "dead_at": _now(),
                    "source_system": record.get("source_system"), "source_channel": record.get("source_channel"),
                    "destination": record.get("destination"), "attempt": record.get("attempt", 0) + 1,
                    "status": status, "last_error": _shown(body[:500]), "event": e}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _deliver(self, events: list[dict], post: Post, result: FlushResult, record: dict | None = None) -> str | None:
        """Deliver or dead-letter `events`; returns 'retry', or 'stop' when retrying cannot help."""
        batch = {k: record[k] for k in BATCH_FIELDS if record and record.get(k) is not None}
        status, body = post(events, **batch) if batch else post(events)
        result.attempts += 1
        if 200 <= status < 300:
            result.delivered += len(events)
            return None
        if status in (400, 413, 422):
            if len(events) == 1:
                self._dead(events, status, body, record)
                result.dead_lettered += 1
                result.rejected.append(body[:200])
                return None
            half = len(events) // 2
            return (self._deliver(events[:half], post, result, record)
                    or self._deliver(events[half:], post, result, record))
        if status in (401, 403):
            result.error = f"collector refused the token (HTTP {status}); events kept in {self.pending_dir}"
            return "stop"
        if 300 <= status < 400:
            result.error = (f"collector answered HTTP {status} ({_shown(body)}): redirects are never followed, so the "
                            f"key cannot reach another host; nothing delivered, events kept in {self.pending_dir}; "
                            "use the collector's final URL with --remote")
            return "stop"
        result.error = f"collector unavailable ({'no connection' if status == 0 else f'HTTP {status}'}): {_shown(body)}"
        return "retry"

    def flush(self, post: Post, max_attempts: int = 5, base_delay: float = 0.5, max_delay: float = 30.0,
              sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
              destination: dict | None = None) -> FlushResult:
        """Send the batches queued for `destination`, in order; stop (keeping the rest) after repeated
        failures. Batches queued for any other destination are counted, never read nor sent."""
        rng = rng or random.Random()
        result = FlushResult()
        others: dict[str, Path] = {}
        for path in self.batches():
            if _tag_of(path) != _tag(destination):
                result.other_batches += 1
                others.setdefault(_tag_of(path), path)
        result.other_destinations = [_url_of(p) for p in others.values()]
        for path in self.batches_for(destination):
            try:
                record = _read(path)
                if record.get("destination") != destination:
                    raise ValueError("not a batch for this destination")
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                os.replace(path, path.with_suffix(".unreadable"))
                result.unreadable.append(f"{path.name}: {exc}")
                continue
            for attempt in range(max_attempts):
                outcome = self._deliver_batch(path, record, post, result)
                if outcome is None:
                    break
                if outcome == "stop" or attempt == max_attempts - 1:
                    result.pending_batches = len(self.batches_for(destination))
                    return result
                sleep(min(max_delay, base_delay * 2 ** attempt) * rng.uniform(0.5, 1.5))
            result.error = None if outcome is None else result.error
        result.pending_batches = len(self.batches_for(destination))
        return result

    def _deliver_batch(self, path: Path, record: dict, post: Post, result: FlushResult) -> str | None:
        events = record["payload"]
        before = result.delivered + result.dead_lettered
        outcome = self._deliver(events, post, result, record)
        if outcome is None:
            path.unlink()
            return None
        # part of a split batch got through: keep only what is left, so it is not re-sent
        record["payload"] = events[result.delivered + result.dead_lettered - before:]
        record["attempt"] = record.get("attempt", 0) + 1
        record["last_error"] = result.error
        _write(path, record)
        return outcome

    # --- inspecting and repairing: `nomira spool status | retry | drop` ---

    def dead_letters(self) -> list[dict]:
        """The dead-letter file's entries; lines of older versions get their `response` as `last_error`
        and no destination; an unreadable line is kept as such (never a crash)."""
        try:
            lines = self.dead_letter.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                d = json.loads(line)
                if not isinstance(d, dict) or not isinstance(d.get("event"), dict):
                    raise ValueError("no event")
            except ValueError:
                out.append({"unreadable": line})
                continue
            d.setdefault("last_error", d.get("response"))
            d.setdefault("destination", None)
            out.append(d)
        return out

    def status(self) -> dict:
        """Depth, oldest record, attempts and errors of the queue; dead letters with their error."""
        pending, events, by_url = [], 0, {}
        for path in self.batches():
            try:
                record = _read(path)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                pending.append({"file": path.name, "error": f"unreadable: {exc}"})
                continue
            dest = record.get("destination") or {}
            url = dest.get("url") or "a destination older nomira versions did not record"
            by_url[url] = by_url.get(url, 0) + len(record["payload"])
            events += len(record["payload"])
            pending.append({"spool_id": record.get("spool_id"),
                            "created_at": record.get("created_at") or _created(path),
                            "events": len(record["payload"]), "destination": url, "attempt": record.get("attempt", 0),
                            "last_error": record.get("last_error"), "source_system": record.get("source_system")})
        dead = self.dead_letters()
        errors: dict[str, int] = {}
        for d in dead:
            key = f"HTTP {d.get('status')}: {d.get('last_error')}" if "event" in d else "unreadable line"
            errors[key] = errors.get(key, 0) + 1
        return {"spool": str(self.root), "pending_batches": len(pending), "pending_events": events,
                "oldest": pending[0] if pending else None, "pending_by_destination": by_url,
                "batches": pending, "dead_letters": len(dead), "dead_letter_file": str(self.dead_letter),
                "dead_letter_errors": errors,
                "unreadable_batches": sorted(p.name for p in self.pending_dir.glob("*.unreadable"))}

    def requeue_dead(self, destination: dict | None = None) -> tuple[int, int]:
        """Move dead letters back into the queue, each for the destination it failed at (its own
        URL and key, never another). Letters of older versions recorded none: they are bound to
        `destination` when one is given, else kept. Returns (requeued, kept)."""
        groups: dict[str, tuple[dict | None, list[dict]]] = {}
        kept = []
        for d in self.dead_letters():
            dest = d.get("destination") if "event" in d else None
            if "event" not in d or (dest is None and destination is None):
                kept.append(d)
                continue
            dest = dest if dest is not None else destination
            groups.setdefault(_tag(dest), (dest, []))[1].append(d["event"])
        for dest, events in groups.values():
            self.put(events, destination=dest)
        self._rewrite_dead(kept)
        return sum(len(e) for _, e in groups.values()), len(kept)

    def drop_dead(self) -> int:
        n = len(self.dead_letters())
        self.dead_letter.unlink(missing_ok=True)
        return n

    def drop_pending(self) -> tuple[int, int]:
        """Discard every queued record: (batches, events)."""
        batches = events = 0
        for path in self.batches():
            try:
                events += len(_read(path)["payload"])
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass
            path.unlink(missing_ok=True)
            batches += 1
        return batches, events

    def _rewrite_dead(self, entries: list[dict]) -> None:
        if not entries:
            self.dead_letter.unlink(missing_ok=True)
            return
        tmp = self.dead_letter.with_suffix(".tmp")
        tmp.write_text("".join((d["unreadable"] if "unreadable" in d else json.dumps(d)) + "\n" for d in entries))
        os.replace(tmp, self.dead_letter)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _one(values: set[str]) -> str:
    return next(iter(values)) if len(values) == 1 else "mixed"


def _read(path: Path) -> dict:
    """A spool record; a batch of an older version (`events`, no id) is read as one."""
    doc = json.loads(path.read_text())
    payload = doc["payload"] if "payload" in doc else doc["events"]
    if not isinstance(payload, list):
        raise ValueError("payload is not a list")
    return {**doc, "payload": payload}


def _write(path: Path, record: dict) -> None:
    record = {k: v for k, v in record.items() if k != "events"}
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(record, fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _created(path: Path) -> str:
    """When a record of an older version was queued: the nanoseconds in its file name."""
    try:
        return datetime.fromtimestamp(int(path.name.split("-")[1]) / 1e9, timezone.utc).isoformat()
    except (IndexError, ValueError, OverflowError, OSError):
        return ""


def _shown(text: str) -> str:
    """A server's words as safe terminal text: no escape sequences or line breaks from the other end."""
    return "".join(c if c.isprintable() else " " for c in text[:200])


def _tag(destination: dict | None) -> str:
    """A batch file's destination, in its name: batches for other destinations are skipped unread."""
    return hashlib.sha256(json.dumps(destination, sort_keys=True).encode()).hexdigest()[:16]


def _tag_of(path: Path) -> str:
    parts = path.stem.split("-")
    return parts[4] if len(parts) == 5 else _tag(None)  # batches of older versions recorded no destination


def _url_of(path: Path) -> str:
    try:
        return json.loads(path.read_text())["destination"]["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return "a destination older nomira versions did not record"
