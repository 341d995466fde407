"""LangChain: `NomiraCallbackHandler(**tags)` records one usage event per chat-model / LLM call.

`on_llm_end` reads each generation's `message.usage_metadata` (LangChain's standard usage, also
filled in for streamed calls that report usage), else the provider's `llm_output["token_usage"]`.
Pass it as `callbacks=[NomiraCallbackHandler(feature="search")]` or in a `config`. The class is
built on first use, so importing this module never imports langchain-core.
"""
from __future__ import annotations

from functools import lru_cache

from nomira.integrations import failed, record, require


def __getattr__(name: str):
    if name == "NomiraCallbackHandler":
        return handler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=1)
def handler_class():
    core = require("langchain_core.callbacks", "langchain-core")

    class NomiraCallbackHandler(core.BaseCallbackHandler):
        """Usage only: never reads prompts, messages' content or tool inputs."""

        raise_error = False

        def __init__(self, **tags):
            super().__init__()
            self.tags = tags

        def on_llm_end(self, response, **kwargs):
            try:
                record_result(response, self.tags, kwargs.get("run_id"))
            except Exception as exc:  # noqa: BLE001 - never disturb the chain
                failed("langchain usage not recorded", exc)

    return NomiraCallbackHandler


def record_result(response, tags: dict, run_id=None) -> int:
    """Record the usage of one `LLMResult`; returns how many events were recorded."""
    from nomira.ledger.events import provider_for_model
    from nomira.sources.api_usage import as_dict, from_langchain, from_provider
    llm_output = getattr(response, "llm_output", None) or {}
    n = 0
    for generations in getattr(response, "generations", None) or []:
        # the choices of one prompt are one API call (`n=k`): langchain-openai puts that call's whole usage
        # on every choice's message, under ids of its own; its first carries the call, once
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if not usage:
                continue
            meta = getattr(message, "response_metadata", None) or {}
            model = meta.get("model_name") or meta.get("model") or llm_output.get("model_name")
            provider = meta.get("model_provider") or provider_for_model(model or "")
            record(provider, model, from_langchain(as_dict(usage)), tags,
                   message_id=meta.get("id") or getattr(message, "id", None))
            n += 1
            break
    if n == 0:
        usage = llm_output.get("token_usage") or llm_output.get("usage")
        model = llm_output.get("model_name") or llm_output.get("model")
        if not usage:
            failed(f"langchain result without usage ({model}): not recorded")
            return 0
        provider = provider_for_model(model or "")
        record(provider, model, from_provider(provider, as_dict(usage)), tags,
               message_id=f"lc-{run_id}" if run_id else None)
        n = 1
    return n
