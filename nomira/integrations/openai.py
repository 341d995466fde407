"""OpenAI: `wrap_client(client, **tags)` records one usage event per `chat.completions.create`
and `responses.create` call, sync or async, streamed or not.

The caller gets exactly what the SDK returned (the same response or Stream object) and exactly
the exceptions it raised; recording happens beside it and never raises. Cached input is read
from `prompt_tokens_details.cached_tokens` / `input_tokens_details.cached_tokens`.

Streaming chat completions report usage only with `stream_options={"include_usage": True}`.
When the caller streams without choosing, the wrapper asks for it and hides the one extra
chunk it adds (the final chunk with no choices), so the caller's iteration is unchanged. A
caller that set `include_usage` explicitly keeps its choice (False: the call is counted as not
recorded); `wrap_client(..., ask_for_usage=False)` never adds it. The Responses API always
reports usage in `response.completed`.

Not observed: `with_raw_response` / `with_streaming_response`, the `.stream()` helpers, and
clients made later with `with_options()` (wrap those too).
"""
from __future__ import annotations

from nomira.integrations import MARK, Watch, failed, record, require, watch_stream, wrap_method
RESOURCES = (("chat", ("chat", "completions")), ("responses", ("responses",)))


def wrap_client(client, *, provider: str = "openai", ask_for_usage: bool = True, **tags):
    """Wrap an `openai.OpenAI` / `AsyncOpenAI` (or Azure) client in place and return it;
    wrapping twice changes nothing. `provider` labels the events of an OpenAI-compatible API
    served by someone else (the model name still decides the price); `ask_for_usage=False`
    never adds `stream_options` (for servers that refuse it)."""
    require("openai")
    if getattr(client, MARK, False):
        return client
    for kind, path in RESOURCES:
        resource = client
        for name in path:
            resource = getattr(resource, name, None)
        create = getattr(resource, "create", None)
        if create is None or getattr(create, MARK, False):
            continue
        resource.create = _wrap(create, kind, ask_for_usage, provider, tags)
    setattr(client, MARK, True)
    return client


def _wrap(create, kind: str, ask: bool, provider: str, tags: dict):
    return wrap_method(create, lambda kwargs: ask and _ask_for_usage(kind, kwargs),
                       lambda result, kwargs, injected, is_async: _observe(result, kind, kwargs, injected,
                                                                         (provider, tags), is_async))


def _ask_for_usage(kind: str, kwargs: dict) -> bool:
    """Add include_usage to a streamed chat call that did not choose; True when added."""
    if kind != "chat" or kwargs.get("stream") is not True:
        return False
    options = kwargs.get("stream_options")
    options = options if isinstance(options, dict) else {}
    if "include_usage" in options:
        return False
    kwargs["stream_options"] = {**options, "include_usage": True}
    return True


def _observe(result, kind: str, kwargs: dict, injected: bool, origin: tuple, is_async: bool) -> None:
    try:
        if kwargs.get("stream") is True:
            watch = _chat_watch(kwargs, injected, origin) if kind == "chat" else _responses_watch(kwargs, origin)
            if not watch_stream(result, watch, is_async):
                failed("openai stream of an unknown shape: usage not recorded")
        else:
            _record(result, kwargs.get("model"), origin)
    except Exception as exc:  # noqa: BLE001 - the caller's call succeeded; ours must not change that
        failed("openai usage not recorded", exc)


def _record(response, model, origin: tuple) -> None:
    """`origin` is (provider label, business tags)."""
    from nomira.sources.api_usage import as_dict, from_openai
    usage = getattr(response, "usage", None)
    if usage is None:
        failed(f"openai response without usage ({model}): not recorded")
        return
    provider, tags = origin
    tier = getattr(response, "service_tier", None)  # (flex is half price, priority more: as billed)
    record(provider, getattr(response, "model", None) or model, from_openai(as_dict(usage)), tags,
           message_id=getattr(response, "id", None), service_tier=tier if isinstance(tier, str) else None)


def _chat_watch(kwargs: dict, injected: bool, origin: tuple) -> Watch:
    seen = {}

    def on_item(chunk):
        if getattr(chunk, "usage", None) is not None:
            seen["chunk"] = chunk
            if injected and not getattr(chunk, "choices", None):
                return False  # the usage-only chunk we asked for: not the caller's
        return True

    def on_end():
        if "chunk" in seen:
            _record(seen["chunk"], kwargs.get("model"), origin)
        else:
            failed(f"openai stream ended without usage ({kwargs.get('model')}): include_usage off, or the "
                   "stream was not read to the end")
    return Watch(on_item, on_end)


def _responses_watch(kwargs: dict, origin: tuple) -> Watch:
    seen = {}

    def on_item(event):
        response = getattr(event, "response", None)
        if response is not None and getattr(response, "usage", None) is not None:
            seen["response"] = response  # response.completed (or .incomplete / .failed)
        return True

    def on_end():
        if "response" in seen:
            _record(seen["response"], kwargs.get("model"), origin)
        else:
            failed(f"openai response stream ended without usage ({kwargs.get('model')})")
    return Watch(on_item, on_end)
