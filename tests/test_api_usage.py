"""Provider usage objects map to uncached input + cache reads/writes + output, per provider."""
from nomira.sources.api_usage import from_anthropic, from_gemini, from_openai, merge_anthropic_stream


def test_anthropic_split_and_legacy():
    t = from_anthropic({"input_tokens": 12, "output_tokens": 340, "cache_read_input_tokens": 9000,
                        "cache_creation_input_tokens": 700,
                        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 500}})
    assert (t.input, t.output, t.cache_read, t.cache_write_5m, t.cache_write_1h) == (12, 340, 9000, 200, 500)
    legacy = from_anthropic({"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 70})
    assert (legacy.cache_write_5m, legacy.cache_write_1h) == (70, 0)


def test_anthropic_stream_delta_overrides_start():
    start = {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 100}
    usage = merge_anthropic_stream(start, {"output_tokens": 15, "input_tokens": None})
    t = from_anthropic(usage)
    assert (t.input, t.output, t.cache_read) == (25, 15, 100)


def test_openai_chat_and_responses_subtract_cached():
    chat = from_openai({"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                        "prompt_tokens_details": {"cached_tokens": 1920},
                        "completion_tokens_details": {"reasoning_tokens": 192}})
    assert (chat.input, chat.cache_read, chat.output, chat.reasoning, chat.reported_input) == (86, 1920, 300, 192, 2006)
    resp = from_openai({"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
                        "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123})
    assert (resp.input, resp.cache_read, resp.output) == (36, 0, 87)


def test_gemini_thoughts_are_output_and_bad_values_are_zero():
    t = from_gemini({"promptTokenCount": 1000, "cachedContentTokenCount": 400, "candidatesTokenCount": 50,
                     "thoughtsTokenCount": 30, "totalTokenCount": 1080})
    assert (t.input, t.cache_read, t.output, t.reasoning) == (600, 400, 80, 30)
    assert from_openai({"prompt_tokens": -5, "completion_tokens": "9"}).total == 0
