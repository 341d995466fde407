"""One history holding every agent's logs: each call found by its own source, totals add up."""
import shutil

import pytest

import test_sources_amp as amp
import test_sources_cline as cline
import test_sources_copilot as copilot
import test_sources_droid as droid
import test_sources_gemini as gemini
import test_sources_goose as goose
import test_sources_kimi as kimi
import test_sources_pi as pi
import test_sources_qwen as qwen
from conftest import FIXTURES

NEW = {  # source -> hand-computed dollars (see each test module)
    "gemini_cli": gemini.G1 + gemini.G2 + gemini.L1, "qwen_code": qwen.A1 + qwen.A2 + qwen.B1, "amp": amp.M1 + amp.M3 + amp.L1,
    "copilot_cli": copilot.S1 + copilot.M1 + copilot.S2, "goose": goose.S1 + goose.S2 + goose.S3,
    "kimi_cli": kimi.C1 + kimi.C2, "droid": droid.S1 + droid.S2, "pi": pi.A1 + pi.A2,
    "cline": cline.R1 + cline.R2 + cline.DELETED,
}


def by_source(report):
    out = {}
    for s in report["sessions"]:
        out[s["source"]] = out.get(s["source"], 0.0) + s["cost_usd"]
    return out


def test_every_agent_in_one_tree_totals_correctly(tmp_path, run_json):
    root = tmp_path / "history"
    for name in ("claude", "codex", "opencode", "gemini", "qwen", "amp", "copilot", "kimi", "droid", "pi", "cline"):
        shutil.copytree(FIXTURES / name, root / name)
    goose.make_db(root / "goose")
    alone = {n: run_json("--path", FIXTURES / n)["totals"]["cost_usd"] for n in ("claude", "codex", "opencode")}
    r = run_json("--path", root)
    got = by_source(r)
    for source, dollars in NEW.items():
        assert got[source] == pytest.approx(dollars, abs=1e-12), source
    assert r["totals"]["cost_usd"] == pytest.approx(sum(NEW.values()) + sum(alone.values()), abs=1e-9)
    assert set(r["sources"]) >= set(NEW) | {"claude_code", "codex", "opencode", "roo_code"}
    assert r["regime"] == "mixed"


def test_no_flags_discovers_every_agent_present(isolated_env, run_json):
    shutil.copytree(FIXTURES / "gemini" / ".gemini", isolated_env / ".gemini")
    shutil.copytree(FIXTURES / "pi" / "sessions", isolated_env / ".pi" / "agent" / "sessions")
    goose.make_db(isolated_env / ".local" / "share" / "goose" / "sessions")
    r = run_json()
    assert set(r["sources"]) == {"gemini_cli", "pi", "goose"}
    assert r["totals"]["cost_usd"] == pytest.approx(NEW["gemini_cli"] + NEW["pi"] + NEW["goose"], abs=1e-12)


WEIRD = [None, True, -5, 1e308, "12", "abc", [], {}, [1, 2], {"a": None}, 3.7]


def _mutate(o, rng):
    """The same document with random fields replaced by values of the wrong type, or dropped."""
    import json
    if isinstance(o, dict):
        out = {}
        for k, v in o.items():
            r = rng.random()
            if r < 0.3:
                out[k] = rng.choice(WEIRD)
            elif r >= 0.35:
                out[k] = _mutate(v, rng)
        return out
    if isinstance(o, list):
        return [_mutate(x, rng) for x in o]
    if isinstance(o, str) and o.startswith("{"):
        try:
            return json.dumps(_mutate(json.loads(o), rng))
        except ValueError:
            return o
    return o


@pytest.mark.parametrize("name", ["gemini", "qwen", "amp", "copilot", "kimi", "droid", "pi", "cline",
                                  "openhands", "mux", "gptme", "vibe", "openclaw", "lmstudio"])  # + issue 27
def test_wrong_typed_fields_are_skipped_never_a_crash(name, tmp_path):
    import json
    import random

    from nomira.pricing.engine import Pricer
    from nomira.pricing.table import load_bundled
    from nomira.sources.registry import collect
    rng = random.Random(name)
    pricer = Pricer(load_bundled())
    for trial in range(12):
        root = tmp_path / str(trial)
        shutil.copytree(FIXTURES / name, root)
        for f in root.rglob("*.json*"):
            parts = [f.read_text()] if f.suffix == ".json" else f.read_text().splitlines()
            out = []
            for part in parts:
                try:
                    out.append(json.dumps(_mutate(json.loads(part), rng)))
                except ValueError:
                    out.append(part)  # the fixture's own malformed line or file stays as it is
            f.write_text("\n".join(out) + "\n")
        c = collect((name,), [root])
        for e in c.events:
            pricer(e)
            assert min(e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write_5m) >= 0
        assert c.stats.files >= 1
