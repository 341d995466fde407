"""Subscription plans: what a month of usage was worth against what the plan costs.

Subscription usage is shown as API-equivalent value next to the plan price, and only
for a whole period (a month), never as a bill. Prices are the plans' published
monthly list prices in USD (anthropic.com/pricing, chatgpt.com/pricing), noted 2026-11-24.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    source: str  # which agent's usage the plan covers
    monthly_usd: float


PLANS = {p.key: p for p in (
    Plan("claude-pro", "Claude Pro", "claude_code", 20.0),
    Plan("claude-max-5x", "Claude Max 5x", "claude_code", 100.0),
    Plan("claude-max-20x", "Claude Max 20x", "claude_code", 200.0),
    Plan("chatgpt-plus", "ChatGPT Plus", "codex", 20.0),
    Plan("chatgpt-pro", "ChatGPT Pro", "codex", 200.0),
)}
DEFAULTS = {"claude_code": "claude-max-20x", "codex": "chatgpt-plus"}


def plans_for(selected: dict[str, str | None], prices: dict[str, float] | None = None) -> dict[str, Plan]:
    """Plan per source: explicit choices (`--plan`) over defaults; `prices` (plan key -> USD,
    from `--plan-price`) override only the plans they name."""
    out = {}
    for source, default in DEFAULTS.items():
        plan = PLANS[selected.get(source) or default]
        if prices and plan.key in prices:
            plan = Plan(plan.key, plan.name, plan.source, prices[plan.key])
        out[source] = plan
    return out


def value_multiple(value_usd: float, plan: Plan) -> float | None:
    return value_usd / plan.monthly_usd if plan.monthly_usd else None
