"""OpenHands CLI base_state.json: per-call LiteLLM usage, dated by the events, forks counted once."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import openhands
from nomira.sources.registry import collect

OH = FIXTURES / "openhands"
# claude-sonnet-4-5: 3 in / 15 out / 0.30 read / 3.75 write per MTok; gpt-4.1: 2 in / 8 out.
# prompt_tokens include cache reads and writes (LiteLLM): uncached = prompt - read - write.
@pytest.fixture(autouse=True)
def utc(local_utc):
    """The SDK's event times are naive local time."""


C1 = ((12000 - 8000 - 3000) * 3 + 500 * 15 + 8000 * 0.30 + 3000 * 3.75) / 1e6
C2 = ((15000 - 11000) * 3 + 700 * 15 + 11000 * 0.30) / 1e6
COND = (4000 * 2 + 300 * 8) / 1e6  # the condenser's own LLM


def test_calls_by_hand(run_json):
    c = collect(("openhands",), [OH])
    got = sorted((e.occurred_at.isoformat(), e.model, e.project, e.tokens.input, e.tokens.output,
                  e.tokens.cache_read, e.tokens.cache_write_5m) for e in c.events)
    assert got == [
        ("2025-11-06T09:00:00.120000+00:00", "openai/gpt-4.1", "shop", 4000, 300, 0, 0),  # no event: the first one
        ("2025-11-06T09:00:02.500000+00:00", "anthropic/claude-sonnet-4-5-20250929", "shop", 1000, 500, 8000, 3000),
        ("2025-11-06T09:00:31+00:00", "anthropic/claude-sonnet-4-5-20250929", "shop", 4000, 700, 11000, 0),
        ("2025-11-07T14:00:00+00:00", "ollama/qwen2.5-coder:7b", "shop", 6000, 400, 0, 0),
    ]
    r = run_json("--path", OH)
    assert r["totals"]["cost_usd"] == pytest.approx(C1 + C2 + COND, abs=1e-12)
    models = {m["model"]: m for m in r["models"]}
    assert models["ollama/qwen2.5-coder:7b"]["priced"] is False
    # OpenHands' own figures, beside the computed ones (one cost per call: the lists align)
    assert models["anthropic/claude-sonnet-4-5-20250929"]["agent_cost_usd"] == pytest.approx(0.02115 + 0.0258)
    assert r["regime"] == "api"


def test_malformed_usage_and_state_are_counted():
    c = collect(("openhands",), [OH])
    assert c.stats.malformed == 2  # the usage entry that is not an object, the cut base_state.json
    assert len(c.events) == 4


def test_fork_copy_counts_once_and_default_location(isolated_env, run_json):
    shutil.copytree(OH / "conversations", isolated_env / ".openhands" / "conversations")
    assert len(openhands.find_files(openhands.default_paths())) == 3
    c = collect(("openhands",))
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 1  # msg_01AbC copied by the fork
    r = run_json("--source", "openhands")
    assert r["totals"]["cost_usd"] == pytest.approx(C1 + C2 + COND, abs=1e-12)


def test_env_override_lists_several_roots(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(OH / "conversations", a)
    b.mkdir()
    roots = openhands.default_paths({"OPENHANDS_CONVERSATIONS_DIR": f"{a},{b},{tmp_path / 'missing'}"})
    assert roots == [a, b]
    assert openhands.default_paths({"HOME": str(tmp_path), "OPENHANDS_PERSISTENCE_DIR": str(tmp_path)}) == []
