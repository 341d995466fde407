#!/usr/bin/env python3
"""What the bundled price table costs a report: file size, load, first lookups (fresh process each run).

    python tools/bench_prices.py --runs 9
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "nomira" / "pricing" / "data" / "prices.json"
PROBE = """
import json, time
t0 = time.perf_counter()
from nomira.pricing.table import load_bundled, _bundled_bytes
t1 = time.perf_counter(); table = load_bundled(); t2 = time.perf_counter()
table.lookup("claude-sonnet-4-5-20250929"); t3 = time.perf_counter()
table.lookup("gpt-5-1-codex-2025-11-13"); t4 = time.perf_counter()
for m in ("deepseek-chat", "glm-4.6", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "acme-llm-9"):
    table.lookup(m)
t5 = time.perf_counter(); json.loads(_bundled_bytes()); t6 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "exact": t3 - t2, "normalised": t4 - t3,
                  "four_more": t5 - t4, "full_parse": t6 - t5}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args(argv)
    raw = TABLE.read_bytes()
    models = len(json.loads(raw)["models"])
    print(f"{TABLE.relative_to(ROOT)}: {models} models, {len(raw):,} bytes ({len(gzip.compress(raw)):,} gzipped)")
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(max(1, args.runs))]
    for key, label in (("import", "import nomira.pricing.table"), ("load", "load_bundled (split, lazy)"),
                       ("exact", "first exact lookup"), ("normalised", "first normalised lookup (index)"),
                       ("four_more", "four more lookups"), ("full_parse", "for scale: json.loads of the file")):
        print(f"  {label:<36} median {1e3 * statistics.median(r[key] for r in runs):7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
