"""Money in machine-readable outputs: integer micro-dollars beside every decimal dollar figure.

One type, one rule. Every figure is computed in float US dollars (the price table's per-token
rates times counts); a JSON output shows it as the decimal it always had (`cost_usd`) and, beside
it, the same amount as an integer number of millionths of a dollar (`cost_micro_usd`):
`micro = round(round(usd, 9) * 1_000_000)` (Python's `round`, halves to even): the float is first
taken to nano-dollars so that one amount summed in another order (a partitioned scan, forked
workers) gives the same integer, not one that flips on the last bit of a float. So a script can add integers without float drift; a total's micro-dollars are the
rounded total, which may differ from the sum of its rows' micro-dollars by at most one per row.
Names: `<name>_usd` gets `<name>_micro_usd`; a dict of amounts (`cost_by_type_usd`) gets a dict
of integers (`cost_by_type_micro_usd`); null stays null. Every such document also says which
output schema it follows (`schema_version`, docs/schemas/).
"""
from __future__ import annotations

import math

MICRO = 1_000_000
SCHEMA_VERSION = 1  # of the JSON outputs (docs/schemas/); additive keys do not change it
_SUFFIX, _MICRO_SUFFIX = "_usd", "_micro_usd"


def micros(usd: float | None) -> int | None:
    if usd is None or isinstance(usd, bool) or not math.isfinite(usd):
        return None
    return int(round(round(usd, 9) * MICRO))


def _amount(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def with_micros(obj):
    """Add the micro-dollar sibling of every `*_usd` amount, in place, at any depth; idempotent."""
    if isinstance(obj, dict):
        for k in list(obj):
            v = obj[k]
            if k.endswith(_SUFFIX) and not k.endswith(_MICRO_SUFFIX):
                twin = k[:-len(_SUFFIX)] + _MICRO_SUFFIX
                if _amount(v):
                    obj.setdefault(twin, micros(v))
                    continue
                if isinstance(v, dict) and v and all(_amount(x) for x in v.values()):
                    obj.setdefault(twin, {name: micros(x) for name, x in v.items()})
                    continue
            if isinstance(v, (dict, list)):
                with_micros(v)
    elif isinstance(obj, list):
        for x in obj:
            if isinstance(x, (dict, list)):
                with_micros(x)
    return obj


def stamp(doc: dict) -> dict:
    """An output document with `schema_version` first and micro-dollars beside its dollars."""
    return with_micros({"schema_version": SCHEMA_VERSION, **doc} if "schema_version" not in doc else doc)
