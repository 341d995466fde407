"""Vercel AI SDK: record the usage an app's `onFinish` reports (camelCase `LanguageModelUsage`).

The TypeScript helper in docs/INTEGRATIONS.md posts a usage-only payload from `onFinish` to a
route of the team's own Python service, which hands the parsed JSON to `track_payload`:

    {"model": "claude-sonnet-4-5", "provider": "anthropic.messages",
     "usage": {"inputTokens": ..., "outputTokens": ..., ...},
     "cacheWriteTokens": 700, "responseId": "msg_...", "tags": {"feature": "search"}}

Any other key is refused (the payload must stay usage-only), as is any tag outside the wire
schema. Nothing here needs a package: the AI SDK itself runs in JavaScript.
"""
from __future__ import annotations

PAYLOAD_KEYS = {"model", "provider", "usage", "cacheWriteTokens", "responseId", "tags"}


def provider_name(provider: str | None, model: str) -> str:
    """The AI SDK's provider id ("openai.chat", "anthropic.messages", "google.generative-ai") or a
    gateway model id ("anthropic/claude-sonnet-4.5") -> anthropic | openai | google | ..."""
    from nomira.ledger.events import provider_for_model
    name = (provider or "").split(".")[0].lower() or (model.split("/")[0].lower() if "/" in model else "")
    return {"google-vertex": "google", "vertex": "google", "azure": "openai"}.get(name, name) or \
        provider_for_model(model)


def track_usage(model: str, usage: dict, provider: str | None = None, cache_write_tokens: int = 0,
                response_id: str | None = None, **tags) -> dict | None:
    """Record one AI SDK call from its `usage` object; never raises (see nomira.integrations.tracking)."""
    from nomira.sources.api_usage import from_ai_sdk
    from nomira.integrations.tracking import error, track
    try:
        name = provider_name(provider, model)
        tokens = from_ai_sdk(usage, name, cache_write_tokens)
    except Exception as exc:  # noqa: BLE001
        error(f"ai-sdk usage not recorded: {type(exc).__name__}: {exc}")
        return None
    model = model.split("/", 1)[1] if "/" in model and provider is None else model
    return track(name, model, tokens, **{**tags, "message_id": response_id, "source": "ai-sdk"})


def track_payload(payload: dict) -> dict | None:
    """Record the JSON the TypeScript helper posts; refuses (counts, logs, returns None) a payload
    with any key beyond the usage-only ones."""
    from nomira.integrations.tracking import error
    if not isinstance(payload, dict) or set(payload) - PAYLOAD_KEYS or not isinstance(payload.get("usage"), dict):
        extra = sorted(set(payload) - PAYLOAD_KEYS) if isinstance(payload, dict) else []
        error(f"ai-sdk payload refused: {'unexpected keys ' + ', '.join(extra) if extra else 'no usage object'}")
        return None
    tags = payload.get("tags") or {}
    if not isinstance(tags, dict):
        error("ai-sdk payload refused: tags must be an object")
        return None
    return track_usage(str(payload.get("model") or "unknown"), payload["usage"], payload.get("provider"),
                       payload.get("cacheWriteTokens") or 0, payload.get("responseId"), **tags)
