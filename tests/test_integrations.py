"""SDK adapters against the real openai / anthropic / langchain-core libraries, served by the SDKs'
own HTTP stack over a mock transport: one priced, content-free event per call, streamed or not."""
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nomira.ledger import store
from nomira.integrations import tracking
from nomira.pricing.engine import Pricer
from nomira.pricing.feed import resolved
from nomira.ledger.wire import from_wire

ROOT = Path(__file__).resolve().parent.parent
SECRET_PROMPT = "the launch code is swordfish"
SECRET_ANSWER = "Hello from the model, privately"


@pytest.fixture(autouse=True)
def fresh_tracking(tmp_path, monkeypatch):
    monkeypatch.setenv("NOMIRA_DB", str(tmp_path / "apps.db"))
    monkeypatch.delenv("NOMIRA_REMOTE", raising=False)
    tracking.reset()
    yield tmp_path / "apps.db"
    tracking.reset()


def assert_content_free(path):
    tracking.reset()  # close the store so every byte is in the files read below
    blob = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    for secret in (SECRET_PROMPT, SECRET_ANSWER, "swordfish", "privately"):
        assert secret.encode() not in blob


def priced(event):
    cost = Pricer(resolved())(from_wire(event))
    assert cost is not None and cost.total_usd > 0
    assert event["cost_usd"] == pytest.approx(cost.total_usd)


def http_lib(sdk):
    """The HTTP library the SDK itself is built on (httpx, or its httpx2 fork in newer releases)."""
    import importlib
    base = importlib.import_module(f"{sdk.__name__}._base_client")
    return getattr(base, "httpx2", None) or base.httpx


def sse(items, named=False):
    out = []
    for item in items:
        if named:
            out.append(f"event: {item['type']}\n")
        out.append(f"data: {json.dumps(item)}\n\n")
    return "".join(out)


# --- OpenAI ---

CHAT_USAGE = {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
              "prompt_tokens_details": {"cached_tokens": 1920}, "completion_tokens_details": {"reasoning_tokens": 192}}
RESP_USAGE = {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 6}, "output_tokens": 87,
              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123}


def openai_handler(hx, seen):
    def handle(request):
        body = json.loads(request.content)
        seen.append(body)
        path = request.url.path
        if body.get("model") == "boom":
            return hx.Response(429, json={"error": {"message": "Rate limit reached", "type": "requests",
                                                    "code": "rate_limit_exceeded"}})
        if path.endswith("/chat/completions"):
            if not body.get("stream"):
                return hx.Response(200, json={
                    "id": "chatcmpl-abc", "object": "chat.completion", "created": 1764633600, "model": "gpt-5-2025-08-07",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": SECRET_ANSWER},
                                 "finish_reason": "stop"}], "usage": CHAT_USAGE})
            base = {"id": "chatcmpl-str", "object": "chat.completion.chunk", "created": 1764633600,
                    "model": "gpt-5-2025-08-07"}
            include = (body.get("stream_options") or {}).get("include_usage")
            chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": word},
                                           "finish_reason": None}], **({"usage": None} if include else {}))
                      for word in SECRET_ANSWER.split(" ")]
            chunks.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}],
                               **({"usage": None} if include else {})))
            if include:
                chunks.append(dict(base, choices=[], usage=CHAT_USAGE))
            return hx.Response(200, headers={"content-type": "text/event-stream"},
                               content=(sse(chunks) + "data: [DONE]\n\n").encode())
        response = {"id": "resp_123", "object": "response", "created_at": 1764633600, "status": "completed",
                    "model": "gpt-5-2025-08-07", "output": [{"type": "message", "id": "msg_1", "status": "completed",
                    "role": "assistant", "content": [{"type": "output_text", "text": SECRET_ANSWER,
                                                      "annotations": []}]}],
                    "usage": RESP_USAGE}
        if not body.get("stream"):
            return hx.Response(200, json=response)
        stream = [{"type": "response.created", "sequence_number": 0,
                   "response": dict(response, status="in_progress", output=[], usage=None)},
                  {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1", "output_index": 0,
                   "content_index": 0, "delta": SECRET_ANSWER},
                  {"type": "response.completed", "sequence_number": 2, "response": response}]
        return hx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(stream, True).encode())
    return handle


def sdk_client(name, handler, sync_class, async_class, is_async, **tags):
    """A real SDK client whose HTTP client (the SDK's own library) answers from `handler`, wrapped."""
    import importlib
    sdk = pytest.importorskip(name)
    wrap_client = importlib.import_module(f"nomira.integrations.{name}").wrap_client
    hx, seen = http_lib(sdk), []
    transport = hx.MockTransport(handler(hx, seen))
    http = hx.AsyncClient(transport=transport) if is_async else hx.Client(transport=transport)
    client = getattr(sdk, async_class if is_async else sync_class)(api_key="sk-test", max_retries=0, http_client=http)
    return wrap_client(client, **tags), seen


def openai_client(is_async=False):
    return sdk_client("openai", openai_handler, "OpenAI", "AsyncOpenAI", is_async, developer="ana", feature="chat")


MESSAGES = [{"role": "user", "content": SECRET_PROMPT}]


def test_openai_chat_sync_returns_the_sdk_response_and_records_one_event(fresh_tracking, stored_events):
    openai = pytest.importorskip("openai")
    client, _ = openai_client()
    from nomira.integrations.openai import wrap_client
    assert wrap_client(client) is client  # idempotent: no double wrapping, no double events
    resp = client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert isinstance(resp, openai.types.chat.ChatCompletion) and resp.choices[0].message.content == SECRET_ANSWER
    [e] = stored_events(fresh_tracking)
    assert (e["provider"], e["model"], e["message_id"]) == ("openai", "gpt-5-2025-08-07", "chatcmpl-abc")
    assert e["tokens"] == {"input": 86, "output": 300, "cache_read": 1920, "cache_write_5m": 0, "cache_write_1h": 0,
                           "reasoning": 192}
    assert e["tags"] == {"developer": "ana", "feature": "chat", "project": ""}
    priced(e)
    assert_content_free(fresh_tracking)


def test_openai_chat_stream_injects_usage_hides_the_extra_chunk(fresh_tracking, stored_events):
    openai = pytest.importorskip("openai")
    client, seen = openai_client()
    stream = client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert seen[-1]["stream_options"] == {"include_usage": True}
    # what the caller would have received without the wrapper: no usage-only chunk
    assert all(c.choices for c in chunks) and len(chunks) == len(SECRET_ANSWER.split(" ")) + 1
    assert "".join(c.choices[0].delta.content or "" for c in chunks).replace(" ", "") == \
        SECRET_ANSWER.replace(" ", "")
    [e] = stored_events(fresh_tracking)
    assert (e["tokens"]["input"], e["tokens"]["cache_read"], e["message_id"]) == (86, 1920, "chatcmpl-str")
    priced(e)
    assert_content_free(fresh_tracking)


def test_openai_stream_with_callers_own_include_usage_keeps_the_usage_chunk(fresh_tracking, stored_events):
    client, seen = openai_client()
    chunks = list(client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 2006
    assert len(stored_events(fresh_tracking)) == 1
    list(client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True,
                                        stream_options={"include_usage": False}))
    assert seen[-1]["stream_options"] == {"include_usage": False}
    assert len(stored_events(fresh_tracking)) == 1 and tracking.stats()["errors"] == 1  # counted, not guessed


def test_openai_ask_for_usage_off_and_provider_label(fresh_tracking, stored_events):
    client, seen = sdk_client("openai", openai_handler, "OpenAI", "AsyncOpenAI", False, provider="compat",
                              ask_for_usage=False)
    chunks = list(client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True))
    assert "stream_options" not in seen[-1] and all(c.choices for c in chunks)
    assert not stored_events(fresh_tracking) and tracking.stats()["errors"] == 1
    client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    [e] = stored_events(fresh_tracking)
    assert (e["provider"], e["model"]) == ("compat", "gpt-5-2025-08-07")
    priced(e)


def test_openai_stream_abandoned_early_records_nothing_and_says_so(fresh_tracking, stored_events):
    import gc
    client, _ = openai_client()
    stream = client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    del stream
    gc.collect()
    assert not stored_events(fresh_tracking) and tracking.stats()["errors"] == 1


def test_openai_responses_sync_and_stream(fresh_tracking, stored_events):
    client, _ = openai_client()
    resp = client.responses.create(model="gpt-5", input=SECRET_PROMPT)
    assert resp.output_text == SECRET_ANSWER
    kinds = [ev.type for ev in client.responses.create(model="gpt-5", input=SECRET_PROMPT, stream=True)]
    assert kinds == ["response.created", "response.output_text.delta", "response.completed"]
    es = stored_events(fresh_tracking)
    assert len(es) == 2  # same response id twice: two stored copies, one canonical call
    assert {e["message_id"] for e in es} == {"resp_123"}
    assert es[0]["tokens"]["input"] == 30 and es[0]["tokens"]["cache_read"] == 6
    priced(es[0])
    assert_content_free(fresh_tracking)


def test_openai_async_chat_and_stream(fresh_tracking, stored_events):
    openai = pytest.importorskip("openai")
    client, _ = openai_client(is_async=True)

    async def go():
        resp = await client.chat.completions.create(model="gpt-5", messages=MESSAGES)
        stream = await client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True)
        assert isinstance(stream, openai.AsyncStream)
        chunks = [c async for c in stream]
        return resp, chunks
    resp, chunks = asyncio.run(go())
    assert resp.id == "chatcmpl-abc" and all(c.choices for c in chunks)
    assert sorted(e["message_id"] for e in stored_events(fresh_tracking)) == ["chatcmpl-abc", "chatcmpl-str"]


def test_openai_errors_pass_through_unchanged(fresh_tracking, stored_events):
    openai = pytest.importorskip("openai")
    client, _ = openai_client()
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="boom", messages=MESSAGES)
    assert info.value.status_code == 429
    assert not stored_events(fresh_tracking) and tracking.stats()["errors"] == 0


# --- Anthropic ---

ANTHROPIC_USAGE = {"input_tokens": 12, "output_tokens": 340, "cache_read_input_tokens": 9000,
                   "cache_creation_input_tokens": 700,
                   "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 500}}


def anthropic_handler(hx, seen):
    def handle(request):
        body = json.loads(request.content)
        seen.append(body)
        if body["model"] == "boom":
            return hx.Response(529, json={"type": "error", "error": {"type": "overloaded_error",
                                                                     "message": "Overloaded"}})
        message = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                   "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": SECRET_ANSWER}],
                   "stop_reason": "end_turn", "stop_sequence": None, "usage": ANTHROPIC_USAGE}
        if not body.get("stream"):
            return hx.Response(200, json=message)
        start = dict(message, content=[], stop_reason=None,
                     usage=dict(ANTHROPIC_USAGE, output_tokens=1))
        stream = [{"type": "message_start", "message": start},
                  {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                  {"type": "ping"},
                  {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": SECRET_ANSWER}},
                  {"type": "content_block_stop", "index": 0},
                  {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                   "usage": {"output_tokens": 340}},
                  {"type": "message_stop"}]
        return hx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(stream, True).encode())
    return handle


def anthropic_client(is_async=False):
    from nomira.integrations.anthropic import wrap_client
    client, seen = sdk_client("anthropic", anthropic_handler, "Anthropic", "AsyncAnthropic", is_async, developer="bo")
    return wrap_client(client), seen  # wrapping twice: still one event per call


EXPECTED_ANTHROPIC = {"input": 12, "output": 340, "cache_read": 9000, "cache_write_5m": 200, "cache_write_1h": 500,
                      "reasoning": 0}


def test_anthropic_create_and_stream_one_event_each(fresh_tracking, stored_events):
    anthropic = pytest.importorskip("anthropic")
    client, _ = anthropic_client()
    msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=400, messages=MESSAGES)
    assert isinstance(msg, anthropic.types.Message) and msg.content[0].text == SECRET_ANSWER
    stream = client.messages.create(model="claude-sonnet-4-5", max_tokens=400, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    kinds = [ev.type for ev in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    es = stored_events(fresh_tracking)
    assert len(es) == 2
    for e in es:
        assert (e["provider"], e["model"], e["message_id"]) == ("anthropic", "claude-sonnet-4-5-20250929",
                                                                "msg_01XFDUDYJgAACzvnptvVoYEL")
        assert e["tokens"] == EXPECTED_ANTHROPIC and e["tags"]["developer"] == "bo"
        priced(e)
    assert es[0]["cost_usd"] == pytest.approx(es[1]["cost_usd"])
    db = store.open_db(fresh_tracking)
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1  # one call, however it was read
    db.close()
    assert_content_free(fresh_tracking)


def test_anthropic_async_stream_and_errors(fresh_tracking, stored_events):
    anthropic = pytest.importorskip("anthropic")
    client, _ = anthropic_client(is_async=True)

    async def go():
        stream = await client.messages.create(model="claude-sonnet-4-5", max_tokens=400, messages=MESSAGES,
                                              stream=True)
        kinds = [ev.type async for ev in stream]
        with pytest.raises(anthropic.APIStatusError) as info:
            await client.messages.create(model="boom", max_tokens=1, messages=MESSAGES)
        return kinds, info.value.status_code
    kinds, status = asyncio.run(go())
    assert kinds[0] == "message_start" and status == 529
    [e] = stored_events(fresh_tracking)
    assert e["tokens"] == EXPECTED_ANTHROPIC


def test_adapters_import_without_their_framework():
    code = ("import sys\n"
            "for m in ('openai', 'anthropic', 'langchain_core'): sys.modules[m] = None\n"
            "import nomira.integrations.openai as o, nomira.integrations.anthropic as a, "
            "nomira.integrations.langchain as l, nomira.integrations.ai_sdk\n"
            "try:\n    o.wrap_client(object())\nexcept ImportError as e:\n    print(e)\n"
            "try:\n    from nomira.integrations.langchain import NomiraCallbackHandler\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "needs the `openai` package (pip install openai)" in out
    assert "needs the `langchain-core` package" in out


# --- LangChain ---

LC_USAGE = {"input_tokens": 9712, "output_tokens": 340, "total_tokens": 10052,
            "input_token_details": {"cache_read": 9000, "cache_creation": 700, "ephemeral_5m_input_tokens": 200,
                                    "ephemeral_1h_input_tokens": 500}}


def lc_message(cls, content, usage=None, **meta):
    return cls(content=content, id="msg_01LangChain", usage_metadata=usage,
               response_metadata={"model_name": "claude-sonnet-4-5-20250929", "model_provider": "anthropic", **meta})


def test_langchain_handler_invoke_and_stream(fresh_tracking, stored_events):
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    from nomira.integrations.langchain import NomiraCallbackHandler

    class StreamingUsageModel(GenericFakeChatModel):
        """A chat model that, like the provider packages, reports usage on its last streamed chunk."""

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            yield from super()._stream(messages, stop, run_manager, **kwargs)
            yield ChatGenerationChunk(message=lc_message(AIMessageChunk, "", LC_USAGE))

    handler = NomiraCallbackHandler(feature="rag")
    model = StreamingUsageModel(messages=iter([lc_message(AIMessage, SECRET_ANSWER, LC_USAGE),
                                               lc_message(AIMessage, SECRET_ANSWER)]))
    assert model.invoke(SECRET_PROMPT, config={"callbacks": [handler]}).content == SECRET_ANSWER
    text = "".join(c.content for c in model.stream(SECRET_PROMPT, config={"callbacks": [handler]}))
    assert text == SECRET_ANSWER
    es = stored_events(fresh_tracking)
    assert len(es) == 2  # one per call: the streamed call's chunks were merged by LangChain first
    for e in es:
        assert (e["provider"], e["model"], e["tags"]["feature"]) == ("anthropic", "claude-sonnet-4-5-20250929", "rag")
        assert e["tokens"] == EXPECTED_ANTHROPIC
        priced(e)
    assert_content_free(fresh_tracking)


def test_langchain_llm_output_token_usage(fresh_tracking, stored_events):
    pytest.importorskip("langchain_core")
    from langchain_core.outputs import ChatGeneration, LLMResult
    from langchain_core.messages import AIMessage

    from nomira.integrations.langchain import NomiraCallbackHandler
    result = LLMResult(generations=[[ChatGeneration(message=AIMessage(content=SECRET_ANSWER))]],
                       llm_output={"token_usage": CHAT_USAGE, "model_name": "gpt-5"})
    NomiraCallbackHandler().on_llm_end(result, run_id="4f1e6a2c")
    [e] = stored_events(fresh_tracking)
    assert (e["model"], e["tokens"]["input"], e["tokens"]["cache_read"], e["message_id"]) == \
        ("gpt-5", 86, 1920, "lc-4f1e6a2c")


# --- Vercel AI SDK (payload from the TypeScript helper) ---

def test_ai_sdk_payload_v6_and_refusals(fresh_tracking, stored_events):
    from nomira.integrations.ai_sdk import track_payload
    usage = {"inputTokens": 9712, "inputTokenDetails": {"noCacheTokens": 12, "cacheReadTokens": 9000,
                                                        "cacheWriteTokens": 700},
             "outputTokens": 340, "outputTokenDetails": {"textTokens": 340, "reasoningTokens": 0}, "totalTokens": 10052}
    e = track_payload({"model": "claude-sonnet-4-5", "provider": "anthropic.messages", "usage": usage,
                       "responseId": "msg_01AiSdk", "tags": {"feature": "chat"}})
    assert (e["provider"], e["source"], e["message_id"]) == ("anthropic", "ai-sdk", "msg_01AiSdk")
    assert (e["tokens"]["input"], e["tokens"]["cache_read"], e["tokens"]["cache_write_5m"]) == (12, 9000, 700)
    priced(e)
    gw = track_payload({"model": "openai/gpt-5", "usage": {"inputTokens": 2006, "cachedInputTokens": 1920,
                                                           "outputTokens": 300, "reasoningTokens": 192}})
    assert (gw["provider"], gw["model"], gw["tokens"]["input"]) == ("openai", "gpt-5", 86)
    assert track_payload({"model": "gpt-5", "usage": {}, "text": SECRET_ANSWER}) is None
    assert track_payload({"model": "gpt-5", "usage": {}, "tags": {"prompt": SECRET_PROMPT}}) is None
    assert tracking.stats()["errors"] == 2 and len(stored_events(fresh_tracking)) == 2
    assert_content_free(fresh_tracking)


def test_the_service_tier_a_response_names_prices_the_call(fresh_tracking, stored_events):
    """OpenAI's flex (and priority) tier is billed at its own rates: `track(service_tier=...)` and the
    OpenAI adapter (the response's `service_tier`) price it so; an Anthropic usage's tier, speed and
    geo reach the event the same way. Before, flex was priced at the default rates and `track`
    refused the keyword."""
    from types import SimpleNamespace

    from nomira.integrations import anthropic as anthropic_adapter
    from nomira.integrations.openai import _record
    from nomira.pricing.table import load_bundled
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    flex_rates = load_bundled().lookup("o3").service_tiers["flex"]
    plain = tracking.build_event("openai", "o3", usage, {})
    flex = tracking.build_event("openai", "o3", usage, {"service_tier": "flex"})
    assert flex["modifiers"] == {"service_tier": "flex"} and "service_tier" not in flex["tags"]
    assert flex["cost_usd"] == pytest.approx(flex_rates.input + flex_rates.output)
    assert flex["cost_usd"] < plain["cost_usd"]
    _record(SimpleNamespace(usage=usage, model="o3", id="resp_flex", service_tier="flex"), "o3", ("openai", {}))
    [e] = stored_events(fresh_tracking)
    assert e["modifiers"] == {"service_tier": "flex"} and e["cost_usd"] == pytest.approx(flex["cost_usd"])
    assert anthropic_adapter._modifiers({"input_tokens": 1, "service_tier": "priority", "speed": "fast",
                                         "inference_geo": ""}) == {"service_tier": "priority", "speed": "fast"}


def test_langchain_choices_of_one_call_are_one_event(fresh_tracking, stored_events):
    """`ChatOpenAI(n=2)`: langchain-openai puts the call's whole usage on each choice's message, each
    under an id of its own: one API call, one event (it was counted once per choice)."""
    from types import SimpleNamespace

    from nomira.integrations.langchain import record_result
    usage = {"input_tokens": 1000, "output_tokens": 400, "total_tokens": 1400}

    def choice(i):
        return SimpleNamespace(message=SimpleNamespace(id=f"lc_run--abc-{i}", usage_metadata=dict(usage),
                                                       response_metadata={"model_name": "gpt-4o"}))
    result = SimpleNamespace(generations=[[choice(0), choice(1)]], llm_output={"model_name": "gpt-4o"})
    assert record_result(result, {}) == 1
    [e] = stored_events(fresh_tracking)
    assert (e["tokens"]["input"], e["tokens"]["output"]) == (1000, 400)
