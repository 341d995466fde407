"""Deduplicating a partitioned, spilled history decides exactly what deduplicating it whole does."""
import importlib.util
import json
import multiprocessing
import random
from pathlib import Path

import pytest

from conftest import FIXTURES
from nomira.sources import partition
from nomira.sources import registry as sources
from nomira.cli import main
from nomira.sources.registry import collect

spec = importlib.util.spec_from_file_location("diff_ccusage", Path(__file__).parents[1] / "tools/diff_ccusage.py")
traps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(traps)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Claude Code and Codex histories with every trap (see tools/diff_ccusage.py), plus the fixtures."""
    root = tmp_path_factory.mktemp("traps")
    for seed in range(3):
        rng = random.Random(seed)
        traps.claude_history(root / f"claude{seed}", rng)
        traps.codex_history(root / f"codex{seed}", rng)
    return [root, FIXTURES / "claude", FIXTURES / "codex", FIXTURES / "opencode"]


def _key(e):
    return (e.source, e.occurred_at, e.session_id, e.message_id or "", e.request_id or "", repr(e))


def test_spilled_partitions_keep_the_same_calls(history):
    whole = collect(("claude", "codex", "opencode"), history)
    spilled = collect(("claude", "codex", "opencode"), history, budget=5)
    batches = list(spilled.batches())
    assert len(batches) > 3  # the budget really split the history
    assert max(len(b) for b in batches) < len(whole.events)
    assert sorted(map(_key, whole.events)) == sorted(_key(e) for b in batches for e in b)
    assert spilled.stats.as_dict() == whole.stats.as_dict()
    assert whole.stats.skipped["duplicate_call"] > 0


def test_spilled_stream_is_single_pass(history):
    spilled = collect(("claude",), history, budget=5)
    list(spilled.batches())
    with pytest.raises(RuntimeError):
        list(spilled.batches())


def _differences(a, b, path=""):
    """Where two reports differ (money compared to 1e-9 USD: partial sums add in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if abs(a - b) <= 1e-9 else [(path, a, b)]
    return [] if a == b else [(path, a, b)]


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("command", [[], ["daily"], ["monthly"], ["session"], ["--compare"], ["--since", "2026-11-13"]])
def test_reports_equal_with_a_tiny_budget(capsys, monkeypatch, history, command, parallel):
    """Groups folded in worker processes (or here, one after another) and merged = one pass."""
    args = [*command, "--json", "--no-cache", "--timezone", "UTC", "--source", "all"]
    for p in history:
        args += ["--path", str(p)]
    assert main(args) == 0
    whole = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(partition, "BUDGET", 5)
    monkeypatch.setattr(sources, "FOLD_MIN_CALLS_PER_FILE", 0 if parallel else 10**9)
    forks = []
    monkeypatch.setattr(multiprocessing.context.ForkContext, "Pool",
                        lambda self, *a, _pool=multiprocessing.context.ForkContext.Pool, **k:
                        forks.append(1) or _pool(self, *a, **k))
    assert main(args) == 0
    spilled = json.loads(capsys.readouterr().out)
    assert _differences(whole, spilled) == []
    assert bool(forks) == parallel
    assert len(whole["rows"]) > 5 if "rows" in whole else whole["totals"]["calls"] > 100


def test_no_temp_dir_keeps_results_and_says_so(history, monkeypatch, capsys):
    def refuse(*a, **k):
        raise PermissionError("read-only")
    whole = collect(("claude", "codex"), history)
    import tempfile
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    held = collect(("claude", "codex"), history, budget=5)
    assert sorted(map(_key, held.events)) == sorted(map(_key, whole.events))
    assert "holding the history in memory" in capsys.readouterr().err
