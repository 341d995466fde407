"""A durable on-disk queue between `nomira ship --remote` and a collector.

Batches are written atomically (temp file, fsync, rename) before any network call,
and deleted only after the collector accepted them: at-least-once delivery, and the
collector's dedup key makes a re-sent batch harmless. A batch the collector rejects
as invalid is split until the bad events are isolated; those go to a dead-letter
file, the rest are delivered. Network and server errors back off exponentially
with jitter; an authentication error or a redirect stops the flush and keeps everything.

A batch belongs to the destination it was queued for (collector URL and a SHA-256 of
the credential): it is only ever sent there, never to whichever collector answers next
nor under another key. Batches for other destinations stay queued and are reported.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

Post = Callable[[list[dict]], tuple[int, str]]  # events -> (HTTP status or 0 for no connection, body)


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

    def put(self, events: list[dict], batch_size: int = 5000, destination: dict | None = None) -> int:
        """Write events as durable batches for `destination`; returns how many batch files were written."""
        n = 0
        for i in range(0, len(events), batch_size):
            name = f"batch-{time.time_ns():020d}-{os.getpid()}-{random.getrandbits(32):08x}-{_tag(destination)}.json"
            tmp = self.pending_dir / ("." + name + ".tmp")
            with open(tmp, "w") as fh:
                json.dump({"destination": destination, "events": events[i:i + batch_size]}, fh,
                          separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.pending_dir / name)
            n += 1
        return n

    def batches(self) -> list[Path]:
        """Every pending batch file, in queue order."""
        return sorted(self.pending_dir.glob("batch-*.json"))

    def batches_for(self, destination: dict | None) -> list[Path]:
        return [p for p in self.batches() if _tag_of(p) == _tag(destination)]

    def _dead(self, events: list[dict], status: int, body: str) -> None:
        with open(self.dead_letter, "a") as fh:
            for e in events:
                fh.write(json.dumps({"status": status, "response": body[:500], "event": e}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _deliver(self, events: list[dict], post: Post, result: FlushResult) -> str | None:
        """Deliver or dead-letter `events`; returns 'retry', or 'stop' when retrying cannot help."""
        status, body = post(events)
        result.attempts += 1
        if 200 <= status < 300:
            result.delivered += len(events)
            return None
        if status in (400, 413, 422):
            if len(events) == 1:
                self._dead(events, status, body)
                result.dead_lettered += 1
                result.rejected.append(body[:200])
                return None
            half = len(events) // 2
            return self._deliver(events[:half], post, result) or self._deliver(events[half:], post, result)
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
                doc = json.loads(path.read_text())
                events = doc["events"]
                if doc.get("destination") != destination or not isinstance(events, list):
                    raise ValueError("not a batch for this destination")
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                os.replace(path, path.with_suffix(".unreadable"))
                result.unreadable.append(f"{path.name}: {exc}")
                continue
            for attempt in range(max_attempts):
                outcome = self._deliver_batch(path, events, post, result, destination)
                if outcome is None:
                    break
                if outcome == "stop" or attempt == max_attempts - 1:
                    result.pending_batches = len(self.batches_for(destination))
                    return result
                sleep(min(max_delay, base_delay * 2 ** attempt) * rng.uniform(0.5, 1.5))
            result.error = None if outcome is None else result.error
        result.pending_batches = len(self.batches_for(destination))
        return result

    def _deliver_batch(self, path: Path, events: list[dict], post: Post, result: FlushResult,
                       destination: dict | None) -> str | None:
        before = result.delivered + result.dead_lettered
        outcome = self._deliver(events, post, result)
        if outcome is None:
            path.unlink()
        elif result.delivered + result.dead_lettered > before:
            # part of a split batch got through: keep only what is left, so it is not re-sent
            done = result.delivered + result.dead_lettered - before
            remaining = events[done:]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"destination": destination, "events": remaining}, separators=(",", ":")))
            os.replace(tmp, path)
            events[:] = remaining
        return outcome


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
