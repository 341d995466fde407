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


def test_langchain_input_includes_cache_reads_and_writes():
    from nomira.sources.api_usage import from_langchain
    t = from_langchain({"input_tokens": 350, "output_tokens": 240, "total_tokens": 590,
                        "input_token_details": {"audio": 10, "cache_creation": 200, "cache_read": 100},
                        "output_token_details": {"reasoning": 200}})
    assert (t.input, t.cache_read, t.cache_write_5m, t.output, t.reasoning) == (50, 100, 200, 240, 200)
    split = from_langchain({"input_tokens": 1000, "output_tokens": 1, "total_tokens": 1001,
                            "input_token_details": {"cache_read": 0, "cache_creation": 700,
                                                    "ephemeral_5m_input_tokens": 200,
                                                    "ephemeral_1h_input_tokens": 500}})
    assert (split.input, split.cache_write_5m, split.cache_write_1h) == (300, 200, 500)


def test_ai_sdk_v6_v5_v4_payloads():
    from nomira.sources.api_usage import from_ai_sdk
    v6 = from_ai_sdk({"inputTokens": 1000, "inputTokenDetails": {"noCacheTokens": 100, "cacheReadTokens": 800,
                                                                 "cacheWriteTokens": 100},
                      "outputTokens": 50, "outputTokenDetails": {"textTokens": 30, "reasoningTokens": 20},
                      "totalTokens": 1050})
    assert (v6.input, v6.cache_read, v6.cache_write_5m, v6.output, v6.reasoning) == (100, 800, 100, 50, 20)
    v5_openai = from_ai_sdk({"inputTokens": 2006, "cachedInputTokens": 1920, "outputTokens": 300,
                             "reasoningTokens": 192, "totalTokens": 2306}, "openai")
    assert (v5_openai.input, v5_openai.cache_read, v5_openai.reasoning) == (86, 1920, 192)
    v5_anthropic = from_ai_sdk({"inputTokens": 12, "cachedInputTokens": 9000, "outputTokens": 3}, "anthropic",
                               cache_write=700)
    assert (v5_anthropic.input, v5_anthropic.cache_read, v5_anthropic.cache_write_5m) == (12, 9000, 700)
    v4 = from_ai_sdk({"promptTokens": 40, "completionTokens": 7, "totalTokens": 47})
    assert (v4.input, v4.output) == (40, 7)


def test_from_provider_dispatches_on_shape():
    from nomira.sources.api_usage import from_provider
    assert from_provider("anthropic", {"input_tokens": 5, "output_tokens": 1,
                                       "cache_read_input_tokens": 100}).cache_read == 100
    assert from_provider("openai", {"input_tokens": 36, "output_tokens": 87, "total_tokens": 123,
                                    "input_tokens_details": {"cached_tokens": 6}}).input == 30
    assert from_provider("google", {"promptTokenCount": 10, "candidatesTokenCount": 2}).output == 2
    snake = from_provider("google", {"prompt_token_count": 1000, "cached_content_token_count": 400,
                                     "candidates_token_count": 50, "thoughts_token_count": 30})
    assert (snake.input, snake.cache_read, snake.output, snake.reasoning) == (600, 400, 80, 30)
    assert from_provider("x", {"input": 3, "output": 4, "cache_write_1h": 5}).cache_write_1h == 5
