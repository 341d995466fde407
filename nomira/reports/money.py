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
    if usd.__class__ is float:
        if usd == 0.0:  # (0.0 and -0.0 cost nothing, without the roundings: most types of most rows)
            return 0
        # round(usd, 9) without its decimal conversion, where that is exact: n, the float product
        # rounded, is the nano-dollar round(usd, 9) stands for when the product is within 0.499 of
        # it (its error is below 1e-4 under 1e12: no halfway case is decided by it), and n / 1e9 is
        # the float nearest n nano-dollars, as round's is (one correctly rounded division). (x.__round__()
        # is round(x) of a float without round's look-up and bound method: a third of its cost.)
        nano = usd * 1e9
        if -1e12 < nano < 1e12:
            n = nano.__round__()
            if -0.499 < nano - n < 0.499:
                return (n / 1e9 * MICRO).__round__()
        if usd - usd == 0.0:  # finite (inf - inf and nan - nan are nan)
            return round(round(usd, 9) * MICRO)  # (round of a float is an int)
    if usd is None or isinstance(usd, bool) or not math.isfinite(usd):
        return None
    return int(round(round(usd, 9) * MICRO))


def _amount(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def with_micros(obj):
    """Add the micro-dollar sibling of every `*_usd` amount, in place, at any depth; idempotent."""
    if isinstance(obj, dict):
        _dict_micros(obj)
    elif isinstance(obj, list):
        _list_micros(obj)
    return obj


_TWINS: dict[str, str] = {}  # key -> its micro-dollar twin, or "" (a report has thousands of rows of the same keys)


def _twin(k: str) -> str:
    twin = _TWINS.get(k)
    if twin is None:
        twin = k[:-len(_SUFFIX)] + _MICRO_SUFFIX if k.endswith(_SUFFIX) and not k.endswith(_MICRO_SUFFIX) else ""
        if len(_TWINS) < 4096:
            _TWINS[k] = twin
    return twin


def _dict_micros(obj: dict) -> None:
    twins = _TWINS
    for k in list(obj):
        v = obj[k]
        cls = v.__class__
        twin = twins.get(k)
        if twin is None:
            twin = _twin(k)
        if twin:
            if cls is float or _amount(v):
                if twin not in obj:
                    obj[twin] = micros(v)
                continue
            if (cls is dict or isinstance(v, dict)) and v and all(_amount(x) for x in v.values()):
                if twin not in obj:
                    obj[twin] = {name: micros(x) for name, x in v.items()}
                continue
        if cls is dict:
            _dict_micros(v)
        elif cls is list:
            _list_micros(v)
        elif cls is not str and isinstance(v, (dict, list)):
            with_micros(v)


def _list_micros(obj: list) -> None:
    for x in obj:
        cls = x.__class__
        if cls is dict:
            _dict_micros(x)
        elif cls is list:
            _list_micros(x)
        elif isinstance(x, (dict, list)):
            with_micros(x)


def stamp(doc: dict) -> dict:
    """An output document with `schema_version` first and micro-dollars beside its dollars."""
    return with_micros({"schema_version": SCHEMA_VERSION, **doc} if "schema_version" not in doc else doc)
