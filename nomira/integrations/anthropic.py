"""Anthropic: `wrap_client(client, **tags)` records one usage event per `messages.create` call,
sync or async, streamed or not.

A streamed message's usage is `message_start`'s counts updated by `message_delta`'s (the final
output count; newer API versions repeat input and cache counts), merged by
api_usage.merge_anthropic_stream; cache writes are split into 5-minute and 1-hour writes when
`usage.cache_creation` says so. The caller gets the SDK's own return value and exceptions.

Not observed: the `messages.stream()` helper, `with_raw_response`, `client.beta.messages`, and
clients made later with `with_options()`.
"""
from __future__ import annotations

from nomira.integrations import MARK, Watch, failed, record, require, watch_stream, wrap_method


def wrap_client(client, **tags):
    """Wrap an `anthropic.Anthropic` / `AsyncAnthropic` client in place and return it;
    wrapping twice changes nothing."""
    require("anthropic")
    if getattr(client, MARK, False):
        return client
    messages = getattr(client, "messages", None)
    create = getattr(messages, "create", None)
    if create is not None and not getattr(create, MARK, False):
        messages.create = _wrap(create, tags)
    setattr(client, MARK, True)
    return client


def _wrap(create, tags: dict):
    return wrap_method(create, lambda kwargs: None,
                       lambda result, kwargs, _state, is_async: _observe(result, kwargs, tags, is_async))


def _observe(result, kwargs: dict, tags: dict, is_async: bool) -> None:
    from nomira.sources.api_usage import as_dict, from_anthropic
    try:
        if kwargs.get("stream") is True:
            if not watch_stream(result, _stream_watch(kwargs, tags), is_async):
                failed("anthropic stream of an unknown shape: usage not recorded")
            return
        usage = getattr(result, "usage", None)
        if usage is None:
            failed(f"anthropic response without usage ({kwargs.get('model')}): not recorded")
            return
        u = as_dict(usage)
        record("anthropic", getattr(result, "model", None) or kwargs.get("model"), from_anthropic(u),
               tags, message_id=getattr(result, "id", None), **_modifiers(u))
    except Exception as exc:  # noqa: BLE001 - the caller's call succeeded; ours must not change that
        failed("anthropic usage not recorded", exc)


def _stream_watch(kwargs: dict, tags: dict) -> Watch:
    from nomira.sources.api_usage import as_dict, from_anthropic, merge_anthropic_stream
    seen: dict = {}

    def on_item(event):
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            seen.update(start=as_dict(message.usage), model=message.model, id=message.id)
        elif kind == "message_delta" and getattr(event, "usage", None) is not None:
            seen["delta"] = merge_anthropic_stream(seen.get("delta") or {}, as_dict(event.usage))
        return True

    def on_end():
        if "start" not in seen:
            failed(f"anthropic stream ended before message_start ({kwargs.get('model')}): not recorded")
            return
        usage = merge_anthropic_stream(seen["start"], seen.get("delta") or {})
        record("anthropic", seen.get("model") or kwargs.get("model"), from_anthropic(usage), tags,
               message_id=seen.get("id"), **_modifiers(usage))
    return Watch(on_item, on_end)


def _modifiers(usage: dict) -> dict:
    """The usage's price modifiers (`service_tier`, `speed`, `inference_geo`), as `track` takes them."""
    from nomira.ledger.wire import MODIFIER_FIELDS
    return {k: v for k in MODIFIER_FIELDS if isinstance(v := usage.get(k), str) and v}
