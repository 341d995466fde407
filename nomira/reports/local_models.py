"""Calls served by a model running on the user's own machine (LM Studio, ...): their tokens
count, their cost is $0 for a stated reason, never "unpriced" and never a guessed rate.

A source marks such events with provider `local`; reports price them here when the table
has no rate for the model (a model the table does price keeps its rate).
"""
from __future__ import annotations

from nomira.ledger.events import UsageEvent
from nomira.pricing.engine import Cost

PROVIDER = "local"
REASON = "local model: $0 (runs on this machine; tokens counted, nothing billed)"


def zero_cost(event: UsageEvent) -> Cost | None:
    """$0 with the reason for a local-model event; None for any other."""
    if event.provider != PROVIDER:
        return None
    return Cost(0.0, 0.0, 0.0, 0.0, 0.0, 1.0, "local", REASON, True)
