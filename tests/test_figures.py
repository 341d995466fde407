"""Figures in the whitepaper, one-pager, brand guide and README come from the product (issue 26):
`tools/gen_figures.py --check` fails when any of them differs from a fresh run on the demo history."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import gen_figures  # noqa: E402


@pytest.fixture(scope="module")
def figs():
    return gen_figures.figures()


def test_documents_match_the_product():
    p = subprocess.run([sys.executable, "tools/gen_figures.py", "--check"], cwd=ROOT, capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr


def test_every_target_carries_figures_and_names_only_known_ones(figs):
    for rel in gen_figures.TARGETS:
        names = gen_figures.MARKER.findall((ROOT / rel).read_text())
        assert len(names) >= (1 if rel.endswith("BRAND.md") else 3), rel
        assert {n for n, _ in names} <= set(figs), rel


def test_a_changed_figure_fails_the_check(figs, tmp_path, monkeypatch):
    doc = tmp_path / "docs" / "WHITEPAPER.md"
    doc.parent.mkdir()
    doc.write_text((ROOT / "docs/WHITEPAPER.md").read_text())
    monkeypatch.setattr(gen_figures, "ROOT", tmp_path)
    monkeypatch.setattr(gen_figures, "figures", lambda: figs)
    assert gen_figures.main(["--check"]) == 0
    good = f"<!-- fig:demo_value -->{figs['demo_value']}<!-- /fig -->"
    doc.write_text(doc.read_text().replace(good, "<!-- fig:demo_value -->$1.00<!-- /fig -->", 1))
    assert gen_figures.main(["--check"]) == 1
    assert gen_figures.main([]) == 0 and gen_figures.main(["--check"]) == 0  # regenerated
    assert good in doc.read_text()


def test_figures_agree_with_an_independent_recount(figs):
    assert figs["recount_diff"] == "0 tokens, 0 calls"
    assert figs["raw_calls"] == figs["demo_calls"] and figs["raw_tokens"] == figs["nomira_tokens"]
    assert int(figs["raw_usage_lines"].replace(",", "")) > int(figs["demo_calls"].replace(",", ""))  # dedup happened


def test_terminal_block_is_the_demo_report(figs):
    readme = (ROOT / "README.md").read_text()
    assert figs["terminal_report"].startswith("Nomira · ") and "cache-blind tool" in figs["terminal_report"]
    assert figs["terminal_report"] in readme
