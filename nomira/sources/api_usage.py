"""Provider API `usage` objects -> TokenCounts, one mapping per provider's semantics.

Shared by everything that sees a provider's own response rather than an agent's log: SDK
integrations, the metering gateway, live-capture channels. Each provider counts differently:
Anthropic reports uncached input apart from cache reads and writes; OpenAI and Google report
input *including* cached tokens, so the cached part is subtracted here (TokenCounts.input is
uncached input for every provider). Reasoning is part of billed output everywhere.
"""
from __future__ import annotations

from nomira.events import TokenCounts


def _count(obj, key: str) -> int:
    """A non-negative int count from a usage object, 0 when absent or not a count."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        return 0
    return int(value)


def from_anthropic(usage: dict) -> TokenCounts:
    """Messages API `usage`: cache writes split into 5 m and 1 h when `cache_creation` says so.

    Without the split (older API versions), every cache write is a 5-minute write, the default TTL.
    """
    write = _count(usage, "cache_creation_input_tokens")
    split = usage.get("cache_creation") if isinstance(usage, dict) else None
    w1h = _count(split, "ephemeral_1h_input_tokens")
    w5m = _count(split, "ephemeral_5m_input_tokens") if isinstance(split, dict) else write
    if isinstance(split, dict) and w5m + w1h < write:
        w5m = write - w1h
    uncached = _count(usage, "input_tokens")
    return TokenCounts(input=uncached, output=_count(usage, "output_tokens"),
                       cache_read=_count(usage, "cache_read_input_tokens"),
                       cache_write_5m=w5m, cache_write_1h=w1h, reasoning=0, reported_input=uncached)


def merge_anthropic_stream(start: dict, delta: dict) -> dict:
    """A streamed message's usage: `message_start` counts, updated by `message_delta`'s.

    `message_delta` carries the final (cumulative) output count and, in newer API versions, the
    input and cache counts again; a field it omits or sends as null keeps the start's value.
    """
    merged = dict(start or {})
    for key, value in (delta or {}).items():
        if value is not None:
            merged[key] = value
    return merged


def from_openai(usage: dict) -> TokenCounts:
    """Chat Completions (`prompt_tokens`...) or Responses (`input_tokens`...) usage.

    Cached tokens are inside the prompt count and are priced at the cached rate; reasoning tokens
    are inside the completion count (kept apart for display only).
    """
    if "input_tokens" in usage or "output_tokens" in usage:
        prompt, completion = _count(usage, "input_tokens"), _count(usage, "output_tokens")
        cached = _count(usage.get("input_tokens_details"), "cached_tokens")
        reasoning = _count(usage.get("output_tokens_details"), "reasoning_tokens")
    else:
        prompt, completion = _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
        cached = _count(usage.get("prompt_tokens_details"), "cached_tokens")
        reasoning = _count(usage.get("completion_tokens_details"), "reasoning_tokens")
    cached = min(cached, prompt)
    return TokenCounts(input=prompt - cached, output=completion, cache_read=cached,
                       reasoning=min(reasoning, completion), reported_input=prompt)


def from_gemini(usage: dict) -> TokenCounts:
    """Gemini `usageMetadata`: the prompt count includes cached content; thoughts are billed as
    output but reported apart from the candidates."""
    prompt = _count(usage, "promptTokenCount") + _count(usage, "toolUsePromptTokenCount")
    cached = min(_count(usage, "cachedContentTokenCount"), prompt)
    thoughts = _count(usage, "thoughtsTokenCount")
    return TokenCounts(input=prompt - cached, output=_count(usage, "candidatesTokenCount") + thoughts,
                       cache_read=cached, reasoning=thoughts, reported_input=prompt)
