"""UsageEvents from a live channel -> priced, allowlisted wire events (the one path every channel
takes: the same Pricer, regime rule, `to_wire` and `validated` as `nomira ship`)."""
from __future__ import annotations

import os
import threading
from typing import Iterable, Mapping

from nomira.ledger.events import UsageEvent

_lock = threading.Lock()
_pricers: dict = {}


def pricer(env: Mapping[str, str] = os.environ):
    """One Pricer per process (the collector converts many small batches)."""
    with _lock:
        p = _pricers.get("p")
        if p is None:
            from nomira.pricing.engine import Pricer
            from nomira.pricing.feed import resolved
            p = _pricers["p"] = Pricer(resolved(env))
        return p


def with_channel(wire: list[dict], channel: str) -> list[dict]:
    """Say how the events arrived (`source_channel`: hook, sse, otlp, derived), where the wire schema
    has the field, so the store's source priority applies; the dedup key does not include it."""
    from nomira.ledger.wire import TOP_FIELDS
    if "source_channel" in TOP_FIELDS:
        for e in wire:
            e["source_channel"] = channel
    return wire


def to_wire_events(events: Iterable[UsageEvent], tags: dict, channel: str,
                   env: Mapping[str, str] = os.environ) -> tuple[list[dict], dict[str, int]]:
    """(valid wire events, refused counts by reason); tags are the caller's, checked like ship's."""
    from nomira.reports.aggregate import event_regime
    from nomira.ledger.ship import validated
    from nomira.ledger.wire import to_wire
    events = list(events)
    price = pricer(env)
    return validated(with_channel([to_wire(e, price(e), event_regime(e.source), tags) for e in events], channel))
