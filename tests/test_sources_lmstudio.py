"""LM Studio chats: local-model generations counted, $0 with the reason, never unpriced."""
import shutil

from conftest import FIXTURES
from nomira.reports.local_models import REASON
from nomira.sources import lmstudio
from nomira.sources.registry import collect

LM = FIXTURES / "lmstudio"


def test_generations_counted_at_zero_with_reason(run_json):
    c = collect(("lmstudio",), [LM])
    got = [(e.occurred_at.isoformat(), e.model, e.provider, e.tokens.input, e.tokens.output) for e in c.events]
    assert got == [("2025-11-06T09:00:05.123000+00:00", "qwen2.5-coder-7b-instruct", "local", 512, 230),
                   ("2025-11-06T10:01:00.456000+00:00", "openai/gpt-oss-20b", "local", 530, 870)]  # a regeneration
    assert c.stats.malformed == 1
    r = run_json("--path", LM)
    assert r["totals"]["cost_usd"] == 0 and r["totals"]["calls"] == 2
    assert r["totals"]["tokens"]["total"] == 512 + 230 + 530 + 870
    for m in r["models"]:
        assert m["priced"] is True and m["rate_source"] == REASON, m


def test_default_location_and_copy_counts_once(isolated_env, tmp_path):
    shutil.copytree(LM / "conversations", isolated_env / ".lmstudio" / "conversations")
    assert lmstudio.default_paths() == [isolated_env / ".lmstudio" / "conversations"]
    shutil.copytree(LM / "conversations", tmp_path / "backup")
    c = collect(("lmstudio",), [isolated_env / ".lmstudio", tmp_path / "backup"])
    assert len(c.events) == 2 and c.stats.skipped["duplicate_call"] == 2
