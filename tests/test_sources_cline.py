"""Cline / Roo Code task folders: api_req_started usage, trimmed-context aggregates, the extensions' own cost."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import cline
from nomira.sources.registry import collect

CL = FIXTURES / "cline"
# claude-sonnet-4-5 (from task_metadata.json's model_usage): 3 in / 15 out / 0.30 read / 3.75 write per MTok.
R1 = (12 * 3 + 450 * 15 + 8000 * 3.75) / 1e6
R2 = (20 * 3 + 300 * 15 + 500 * 3.75 + 8000 * 0.30) / 1e6
DELETED = (100 * 3 + 50 * 15 + 1000 * 0.30) / 1e6  # the summed usage of requests Cline trimmed from context


def test_requests_models_projects():
    c = collect(("cline",), [CL])
    got = [(e.source, e.model, e.project, e.tokens.input, e.tokens.cache_read, e.aggregated) for e in c.events]
    assert got == [("cline", "claude-sonnet-4-5-20250929", "shop", 12, 0, False),
                   ("cline", "claude-sonnet-4-5-20250929", "shop", 20, 8000, False),
                   ("cline", "claude-sonnet-4-5-20250929", "shop", 100, 1000, True),
                   ("roo_code", "unknown", "billing", 4000, 6000, False)]  # openai protocol: reads were in tokensIn
    assert c.stats.malformed == 1  # the request whose text was cut


def test_totals_by_hand_and_own_cost_beside(run_json):
    r = run_json("--path", CL)
    assert r["totals"]["cost_usd"] == pytest.approx(R1 + R2 + DELETED, abs=1e-12)
    models = {m["model"]: m for m in r["models"]}
    assert models["claude-sonnet-4-5-20250929"]["agent_cost_usd"] == pytest.approx(R1 + R2 + DELETED)
    assert models["unknown"]["priced"] is False and models["unknown"]["agent_cost_usd"] == pytest.approx(0.0123)
    assert r["regime"] == "api"


def test_editor_locations_and_copies_count_once(isolated_env, tmp_path):
    shutil.copytree(CL / "Code", isolated_env / ".config" / "Code")
    shutil.copytree(CL / "Code", isolated_env / ".config" / "Code - Insiders")
    roots = cline.default_paths()
    assert len(roots) == 4 and all(r.name == "tasks" for r in roots)
    c = collect(("cline",), env={"HOME": str(isolated_env), "XDG_CONFIG_HOME": str(isolated_env / ".config")})
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 4


def test_zoo_code_keeps_roo_codes_task_format(tmp_path):
    """Zoo Code (zoocodeorganization.zoo-code) is Roo Code's fork: the same task folders, its own name."""
    roo = CL / "Code" / "User" / "globalStorage" / "rooveterinaryinc.roo-cline"
    zoo = tmp_path / "Code" / "User" / "globalStorage" / "zoocodeorganization.zoo-code"
    shutil.copytree(roo, zoo)
    c = collect(("cline",), [tmp_path])
    alone = collect(("cline",), [roo])
    assert {e.source for e in c.events} == {"zoo_code"}
    assert [e.tokens for e in c.events] == [e.tokens for e in alone.events]
