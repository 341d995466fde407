"""OpenCode live usage: bus events (the `opencode serve` SSE stream at `/event`, or what Nomira's
plugin forwards) -> the same usage records OpenCode's storage gives (`sources.opencode.records_for`).

`message.updated` fires many times per message; a message counts once its `time.completed` is set.
Its `step-finish` parts (`message.part.updated`) are the calls: OpenCode keeps only the last
step's tokens on the message (anomalyco/opencode#21913). Events carry the message id and the step
(part) id, exactly as the storage reader does, so storage, SSE and plugin copies of one call share
one dedup key and count once.
"""
from __future__ import annotations

import json
import urllib.request
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator

from nomira.ledger.events import UsageEvent
from nomira.sources.scan import ScanStats
from nomira.sources import opencode

KEEP = 2048  # messages remembered (late step parts of a finished message still find it)
MAX_EVENTS = 10_000  # per plugin POST
MAX_LINE = 4 << 20  # one SSE data line (a message.updated carries the whole message info)


class Tracker:
    """Latest info and step-finish parts per message; emits a message's calls when it is complete."""

    def __init__(self) -> None:
        self.messages: OrderedDict[str, dict] = OrderedDict()
        self.steps: dict[str, dict[str, dict]] = {}

    def feed(self, event) -> list[UsageEvent]:
        if not isinstance(event, dict) or not isinstance(event.get("properties"), dict):
            return []
        kind, props = event.get("type"), event["properties"]
        if kind == "message.part.updated":
            part = props.get("part")
            if not isinstance(part, dict) or part.get("type") != "step-finish":
                return []
            mid, pid = part.get("messageID"), part.get("id")
            if not isinstance(mid, str) or not isinstance(pid, str):
                return []
            self.steps.setdefault(mid, {})[pid] = {"type": "step-finish", "tokens": part.get("tokens")}
            return self._emit(mid) if mid in self.messages else []
        if kind == "message.updated":
            info = props.get("info")
            if not isinstance(info, dict) or info.get("role") != "assistant" or not isinstance(info.get("id"), str):
                return []
            done = isinstance(info.get("time"), dict) and info["time"].get("completed")
            if not done:
                return []
            self.messages[info["id"]] = _usage_only(info)
            self.messages.move_to_end(info["id"])
            while len(self.messages) > KEEP:
                old, _ = self.messages.popitem(last=False)
                self.steps.pop(old, None)
            return self._emit(info["id"])
        return []

    def _emit(self, mid: str) -> list[UsageEvent]:
        msg = self.messages[mid]
        steps = sorted(self.steps.get(mid, {}).items())
        records = opencode.records_for(msg, steps, msg.get("sessionID"))
        return list(opencode.events_from_files([(Path("opencode-live"), records, {"db": True})], ScanStats()))


def _usage_only(info: dict) -> dict:
    """What the storage reader reads of a message, nothing more (no text, no summary, no error)."""
    path = info.get("path") if isinstance(info.get("path"), dict) else {}
    return {"id": info["id"], "role": "assistant", "sessionID": info.get("sessionID"), "time": info.get("time"),
            "modelID": info.get("modelID"), "providerID": info.get("providerID"), "tokens": info.get("tokens"),
            "path": {"cwd": path.get("cwd") or path.get("root")}, "cost": info.get("cost")}


def plugin_events(doc) -> list[tuple[UsageEvent, dict]]:
    """A plugin POST (`{"developer": ..., "events": [bus events]}`) -> (event, tags) pairs."""
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise ValueError('expected {"developer": ..., "events": [...]}')
    if len(doc["events"]) > MAX_EVENTS:
        raise ValueError(f"more than {MAX_EVENTS} events in one request")
    dev = doc.get("developer")
    tags = {"developer": dev} if isinstance(dev, str) and dev else {}
    tracker = Tracker()
    latest: dict[tuple, UsageEvent] = {}
    for e in doc["events"]:
        for ev in tracker.feed(e):
            latest[(ev.message_id, ev.request_id)] = ev  # a re-emitted message: its last state
    return [(ev, tags) for ev in latest.values()]


def sse_events(stream, max_line: int = MAX_LINE) -> Iterator[dict]:
    """JSON objects from a text/event-stream (`data:` lines, an event ends at a blank line)."""
    data: list[bytes] = []
    while True:
        line = stream.readline(max_line + 1)
        if not line:
            return
        if len(line) > max_line:
            raise ValueError("SSE line too long")
        line = line.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif not line and data:
            try:
                doc = json.loads(b"\n".join(data))
            except ValueError:
                doc = None
            data = []
            if isinstance(doc, dict):
                yield doc


def watch(url: str, on_events: Callable[[list[UsageEvent]], None], timeout: float = 60.0) -> int:
    """Follow `url`/event until the server closes it; returns how many bus events were read."""
    req = urllib.request.Request(url.rstrip("/") + "/event", headers={"Accept": "text/event-stream"})
    tracker, n = Tracker(), 0
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        for event in sse_events(resp):
            n += 1
            found = tracker.feed(event)
            if found:
                on_events(found)
    return n
