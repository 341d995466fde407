"""Provider API `usage` objects -> TokenCounts, one mapping per provider's semantics.

Shared by everything that sees a provider's own response rather than an agent's log: SDK
integrations, the metering gateway, live-capture channels. Each provider counts differently:
Anthropic reports uncached input apart from cache reads and writes; OpenAI and Google report
input *including* cached tokens, so the cached part is subtracted here (TokenCounts.input is
uncached input for every provider). Reasoning is part of billed output everywhere.
"""
from __future__ import annotations

from nomira.ledger.events import TokenCounts


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


def from_langchain(usage: dict) -> TokenCounts:
    """LangChain `UsageMetadata`: `input_tokens` is the sum of every input type (cache reads and
    writes included), so both are subtracted; langchain-anthropic adds the 5 m / 1 h write split as
    extra `input_token_details` keys."""
    details = usage.get("input_token_details") if isinstance(usage, dict) else None
    prompt, read = _count(usage, "input_tokens"), _count(details, "cache_read")
    w1h = _count(details, "ephemeral_1h_input_tokens")
    write = max(_count(details, "cache_creation"), _count(details, "ephemeral_5m_input_tokens") + w1h)
    read = min(read, prompt)
    write = min(write, prompt - read)
    w1h = min(w1h, write)
    output = _count(usage, "output_tokens")
    reasoning = _count(usage.get("output_token_details") if isinstance(usage, dict) else None, "reasoning")
    return TokenCounts(input=prompt - read - write, output=output, cache_read=read, cache_write_5m=write - w1h,
                       cache_write_1h=w1h, reasoning=min(reasoning, output), reported_input=prompt)


def from_ai_sdk(usage: dict, provider: str = "", cache_write: int = 0) -> TokenCounts:
    """Vercel AI SDK `LanguageModelUsage` (camelCase), v4 to v6.

    v6 carries `inputTokenDetails{noCacheTokens, cacheReadTokens, cacheWriteTokens}` and
    `outputTokenDetails{reasoningTokens}`: unambiguous. v5 has only `inputTokens` and
    `cachedInputTokens`, and their meaning depends on the provider package: @ai-sdk/anthropic
    reports uncached input (cache writes only in providerMetadata.anthropic.cacheCreationInputTokens,
    passed here as `cache_write`), the OpenAI and Google packages report input including cached.
    v4 has `promptTokens` / `completionTokens`, no cache detail. Output includes reasoning.
    """
    if not isinstance(usage, dict):
        return TokenCounts()
    details = usage.get("inputTokenDetails")
    out_details = usage.get("outputTokenDetails")
    output = _count(usage, "outputTokens") or _count(usage, "completionTokens")
    reasoning = _count(out_details, "reasoningTokens") or _count(usage, "reasoningTokens")
    if isinstance(details, dict):
        total = _count(usage, "inputTokens")
        read, write = _count(details, "cacheReadTokens"), _count(details, "cacheWriteTokens")
        uncached = (_count(details, "noCacheTokens") if details.get("noCacheTokens") is not None
                    else max(total - read - write, 0))
        reported = total or uncached + read + write
    elif "inputTokens" in usage:
        read, write = _count(usage, "cachedInputTokens"), max(int(cache_write or 0), 0)
        if provider == "anthropic":
            uncached = _count(usage, "inputTokens")
        else:
            read = min(read, _count(usage, "inputTokens"))
            uncached = _count(usage, "inputTokens") - read
        reported = uncached + read + write
    else:
        read = write = 0
        uncached = reported = _count(usage, "promptTokens")
    return TokenCounts(input=uncached, output=output, cache_read=read, cache_write_5m=write,
                       reasoning=min(reasoning, output), reported_input=reported)


def as_dict(usage) -> dict:
    """A usage object as a plain dict: dicts as they are, SDK (pydantic) objects through
    `model_dump()`, other objects through their public attributes."""
    if isinstance(usage, dict):
        return usage
    if usage is None:
        return {}
    dump = getattr(usage, "model_dump", None)
    if callable(dump):
        try:
            return dump()
        except Exception:  # noqa: BLE001 - fall back to attributes
            pass
    try:
        return {k: (as_dict(v) if hasattr(v, "__dict__") else v) for k, v in vars(usage).items()
                if not k.startswith("_")}
    except TypeError:
        return {}


def from_provider(provider: str, usage) -> TokenCounts:
    """The mapping for `provider`'s own usage object, or TokenCounts-like keys
    (`input`, `output`, `cache_read`, `cache_write_5m`, `cache_write_1h`, `reasoning`) as they are."""
    if isinstance(usage, TokenCounts):
        return usage
    d = as_dict(usage)
    if "input" in d or "output" in d or "cache_read" in d:
        t = TokenCounts(**{k: _count(d, k) for k in ("input", "output", "cache_read", "cache_write_5m",
                                                     "cache_write_1h", "reasoning")})
        t.reported_input = t.input
        return t
    if "prompt_token_count" in d or "candidates_token_count" in d:  # google-genai's model_dump()
        d = {"".join([k.split("_")[0], *(w.title() for w in k.split("_")[1:])]): v for k, v in d.items()}
    if "promptTokenCount" in d or "candidatesTokenCount" in d:
        return from_gemini(d)
    if "usage_metadata" in d:
        return from_langchain(d["usage_metadata"])
    if "inputTokenDetails" in d or "cachedInputTokens" in d or "inputTokens" in d or "promptTokens" in d:
        return from_ai_sdk(d, provider)
    if "total_tokens" in d and "input_tokens" in d and "input_tokens_details" not in d:
        return from_langchain(d)  # LangChain's UsageMetadata (input includes cache reads and writes)
    if provider == "anthropic" or "cache_creation_input_tokens" in d or "cache_read_input_tokens" in d:
        return from_anthropic(d)
    return from_openai(d)
