"""The faster report paths of issue 21 (many small files) give exactly what the plain ones gave."""
from __future__ import annotations

import copy
import json
import math
import random
import sys
from collections import OrderedDict, defaultdict
from datetime import datetime

from nomira.reports import money


def _reference_micros(usd):
    if usd is None or isinstance(usd, bool) or not math.isfinite(usd):
        return None
    return int(round(round(usd, 9) * money.MICRO))


def _reference_with_micros(obj):
    """money.with_micros as it was: the generic walk."""
    amount = money._amount
    if isinstance(obj, dict):
        for k in list(obj):
            v = obj[k]
            if k.endswith("_usd") and not k.endswith("_micro_usd"):
                twin = k[:-len("_usd")] + "_micro_usd"
                if amount(v):
                    obj.setdefault(twin, _reference_micros(v))
                    continue
                if isinstance(v, dict) and v and all(amount(x) for x in v.values()):
                    obj.setdefault(twin, {name: _reference_micros(x) for name, x in v.items()})
                    continue
            if isinstance(v, (dict, list)):
                _reference_with_micros(v)
    elif isinstance(obj, list):
        for x in obj:
            if isinstance(x, (dict, list)):
                _reference_with_micros(x)
    return obj


def _value(rnd: random.Random, depth: int):
    kind = rnd.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rnd.choice([True, False])
    if kind == 2:
        return rnd.randrange(-10**7, 10**7)
    if kind == 3:
        return rnd.choice([math.inf, -math.inf, math.nan, 0.0, -0.0, 5e-10, 1.5e-9, 2.5e-9, -2.5e-9])
    if kind in (4, 5):
        return rnd.uniform(-1, 1) * 10 ** rnd.uniform(-12, 7)
    if kind in (6, 7):
        return rnd.choice(["x", "cost_usd", ""])
    if kind in (8, 9):
        d = _doc(rnd, depth + 1)
        return d if rnd.random() < 0.8 else rnd.choice([OrderedDict, lambda d: defaultdict(int, d)])(d)
    return [_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]


def _doc(rnd: random.Random, depth: int = 0) -> dict:
    keys = ["cost_usd", "naive_cost_usd", "cost_by_type_usd", "cost_micro_usd", "x_micro_usd", "calls",
            "tokens", "rows", "usd", "_usd", "first", "a_usd"]
    return {rnd.choice(keys) + ("" if rnd.random() < 0.8 else str(rnd.randrange(3))): _value(rnd, depth)
            for _ in range(rnd.randrange(6))}


def test_micros_equals_the_plain_rounding():
    rnd = random.Random(21)
    values = [None, True, False, 0, 7, -3, 10**12, 0.0, -0.0, math.inf, -math.inf, math.nan, 2.5e-7, 5e-10, 1.5e-9]
    values += [rnd.uniform(-1, 1) * 10 ** rnd.uniform(-12, 7) for _ in range(20000)]
    values += [(k + 0.5) / 1e9 for k in range(-500, 500)]
    # halfway and near-halfway nano-dollars at every size (next to a halfway micro-dollar, where one
    # nano-dollar more or less changes the result), and around the fast path's limits
    for scale in (1, 10**3, 10**6, 10**9, 10**11, 999_999_999_999, 10**12, 10**13):
        for k in (scale, -scale, scale + 7, rnd.randrange(1, scale + 2)):
            for frac in (0.5, 0.499, 0.4989, 0.501, 0.0, 0.999999):
                for near_half_micro in (0, 499, 500, -501, -500):
                    x = (k * 1000 + near_half_micro + frac) / 1e9
                    values += [x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf)]
    values += [(m * 1000 + 499.5 + d) / 1e9 for m in range(-3000, 3000) for d in (0.0, 1.0)]
    for v in values:
        assert money.micros(v) == _reference_micros(v), v


def test_with_micros_equals_the_generic_walk():
    rnd = random.Random(3)
    for _ in range(3000):
        doc = _doc(rnd)
        want = _reference_with_micros(copy.deepcopy(doc))
        got = money.with_micros(copy.deepcopy(doc))
        # same keys in the same order, same values (json.dumps: nan equals itself, -0.0 kept)
        assert json.dumps(got) == json.dumps(want)


def _random_fine(rnd: random.Random) -> dict:
    from datetime import datetime, timedelta, timezone

    from nomira.reports.aggregate import Tally
    fine = {}
    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for _ in range(rnd.randrange(1, 300)):
        t = Tally()
        t.calls = rnd.randrange(1, 9)
        t.unpriced_calls = rnd.randrange(0, t.calls + 1)
        if t.unpriced_calls:
            t.unpriced_reasons = {rnd.choice(["unknown_model:x", "no_price:y"]): t.unpriced_calls}
        t.tokens = [rnd.randrange(10**6) for _ in range(6)]
        t.cost = [rnd.uniform(0, 3) * 10 ** rnd.randrange(-9, 2) for _ in range(5)]
        t.naive_usd, t.sidechain_usd = rnd.uniform(0, 9), rnd.choice([0.0, rnd.uniform(0, 1)])
        if rnd.random() < 0.9:
            t.first = base + timedelta(seconds=rnd.randrange(10**6))
            t.last = t.first + timedelta(seconds=rnd.randrange(10**4))
        key = (rnd.choice(["claude_code", "codex"]), f"s{rnd.randrange(40)}", rnd.choice(["p", "q"]),
               rnd.choice(["m1", "m2", "m3", "m4"]))
        fine[key] = t
    return fine


def _close(a, b, typed: bool = True) -> bool:
    """Equal, floats up to the order they were summed in (1e-12 relative): ints, strings, keys exactly
    (not `typed`: a number may be another type of the same value, 3 for 3.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b)) or (a != a and b != b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_close(a[k], b[k], typed) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, typed) for x, y in zip(a, b))
    if not typed and isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return _close(float(a), float(b))
    return a == b and type(a) is type(b)


def test_merged_equals_merging_in_turn():
    """aggregate.merged, a few tallies or many (by columns), is Tally.merge of each in turn into an empty tally."""
    from nomira.reports.aggregate import Tally, merged
    rnd = random.Random(12)
    assert merged([]).as_dict() == Tally().as_dict()
    for _ in range(300):
        odd = rnd.random() < 0.5  # (odd values: a few tallies start from the first's, an int cost stays an int)
        fine = _odd_fine(rnd) if odd else _random_fine(rnd)
        tallies = list(fine.values())[:rnd.choice([1, 2, 3, 8, 9, 40, 300])]
        before = [copy.deepcopy(t.as_dict()) for t in tallies]
        want = Tally()
        for t in tallies:
            want.merge(t)
        got = merged(tallies)
        assert _close(got.as_dict(), want.as_dict(), typed=not odd)
        if not odd and sys.version_info < (3, 12):  # (no compensated sum: each float summed as merge sums it)
            assert json.dumps(got.as_dict()) == json.dumps(want.as_dict())
        assert all(got is not t for t in tallies) and _close([t.as_dict() for t in tallies], before)  # theirs unchanged


def test_rollups_equal_three_rollups():
    """summary.rollups: the total, each model's and each session's figures are three `rollup`s' (floats up to
    their order: the total is the models' merged), a session of one fine tally is that tally."""
    from nomira.reports import summary
    from nomira.reports.aggregate import Tally, rollup
    rnd = random.Random(5)
    singles = 0
    for _ in range(200):
        fine = _random_fine(rnd)
        tot, by_model, by_session, models = summary.rollups(fine)
        assert _close(tot.as_dict(), rollup(fine, lambda k: None).get(None, Tally()).as_dict())
        for got, want in ((by_model, rollup(fine, lambda k: k[3])), (by_session, rollup(fine, lambda k: k[:3]))):
            assert list(got) == list(want)
            assert _close([t.as_dict() for t in got.values()], [t.as_dict() for t in want.values()])
        assert models == {s: {k[3] for k in fine if k[:3] == s} for s in by_session}
        for s, t in by_session.items():
            parts = [f for k, f in fine.items() if k[:3] == s]
            assert (t is parts[0]) == (len(parts) == 1)
            singles += len(parts) == 1
    assert singles > 100
    assert summary.rollups({})[0].as_dict() == Tally().as_dict()


def test_row_encoder_equals_json_dumps():
    from nomira.reports.render import _row_encoder
    encode = _row_encoder()
    rnd = random.Random(8)
    for _ in range(3000):
        doc = money.with_micros(_doc(rnd))
        doc["name"] = rnd.choice(["é", "\u2028", "a\"b\\c", "\x00", "日本"])
        assert encode(doc) == json.dumps(doc)


def _odd_fine(rnd: random.Random) -> dict:
    """_random_fine with what the encoded rows must hand to the generic path: unpriced reasons (one
    named like an amount), costs that are not finite floats, odd id types, no times at all."""
    fine = _random_fine(rnd)
    for key, t in list(fine.items()):
        r = rnd.random()
        if r < 0.05:
            t.cost[rnd.randrange(5)] = rnd.choice([math.inf, -math.inf, math.nan, -0.0, 7])
        elif r < 0.08:
            t.naive_usd = rnd.choice([math.nan, 3, True])
        elif r < 0.1:
            t.unpriced_reasons = {"odd_usd": 1}
        elif r < 0.12:
            t.first = t.last = None
        elif r < 0.14:
            t.tokens[rnd.randrange(6)] = rnd.choice([True, 2.5])
        elif r < 0.16:
            del fine[key]
            fine[(key[0], rnd.randrange(10), key[2], key[3])] = t  # an int session id
        elif r < 0.18:
            t.cost = [0.0] * 5  # nothing priced: no share of a zero total
        elif r < 0.19:
            t.calls = True
        elif r < 0.21 and t.first is not None:  # a time whose isoformat must be escaped (first, last or both)
            which = rnd.choice([("first",), ("last",), ("first", "last")])
            for name in which:
                setattr(t, name, _Moment.fromtimestamp(getattr(t, name).timestamp(), t.first.tzinfo))
        elif r < 0.23:  # a label to escape, as a str or a subclass of str (written as the same JSON)
            del fine[key]
            fine[(key[0], key[1], rnd.choice(["caf\u00e9 \"p\"", _Label("caf\u00e9 \"p\"")]), key[3])] = t
    return fine


class _Moment(datetime):
    def isoformat(self, *a, **kw) -> str:
        return 'at "' + super().isoformat(*a, **kw) + '"'


class _Label(str):
    pass


def test_encoded_session_rows_equal_the_stamped_dicts():
    """summary.finish(encoded=True) renders byte for byte what the dict rows, stamped and encoded, render."""
    from nomira.reports import summary
    from nomira.reports.render import render_json
    rnd = random.Random(21)
    for n in range(120):
        fine = _odd_fine(rnd) if n % 2 else _random_fine(rnd)
        if any(k[1].__class__ is not str for k in fine) and any(k[1].__class__ is str for k in fine):
            fine = {k: t for k, t in fine.items() if k[1].__class__ is str}  # (session ids must sort)
        info = {m: {"model": m, "provider": "anthropic", "priced": True, "price_key": m, "rate_source": "x",
                    "verified": True,
                    "long_context_calls": 0, "agent_cost_usd": None} for m in ("m1", "m2", "m3", "m4")}
        want = render_json(summary.finish(copy.deepcopy((fine, info)), None, None, "t"))
        got = render_json(summary.finish(copy.deepcopy((fine, info)), None, None, "t", encoded=True))
        assert got == want
    assert render_json(summary.finish(({}, {}), encoded=True)) == render_json(summary.finish(({}, {})))


def test_encoded_rows_take_the_fast_way_for_plain_rows():
    """Plain rows are written by the f-string, not the generic encoder (else the test above proves little)."""
    from nomira.reports import summary
    rnd = random.Random(4)
    fine = _random_fine(rnd)
    for t in fine.values():
        t.unpriced_calls, t.unpriced_reasons = 0, {}
    tot, by_model, by_session, models = summary.rollups(fine)
    import nomira.reports.money as m
    calls = []
    real = m.with_micros
    m.with_micros = lambda obj: calls.append(1) or real(obj)
    try:
        rows = summary.session_rows(fine, (by_session, models), encoded=True).rows
    finally:
        m.with_micros = real
    assert len(rows) == len(by_session) and not calls
    for t in fine.values():  # unpriced calls, with their reasons: the fast way too (sixty agents' unknown models)
        t.unpriced_calls, t.unpriced_reasons = t.calls, {"unknown model (no rate in the price table)": t.calls,
                                                          "caf\u00e9 \"x\"": 1}
    tot, by_model, by_session, models = summary.rollups(fine)
    m.with_micros = lambda obj: calls.append(1) or real(obj)
    try:
        rows = summary.session_rows(fine, (by_session, models), encoded=True).rows
    finally:
        m.with_micros = real
    assert not calls
    assert rows == [json.dumps(real(d)) for d in summary.session_rows(fine, (by_session, models))]


def test_isoformat_equals_datetime_isoformat():
    """tally_text.isoformat (the session rows' times) writes what datetime.isoformat writes, for any time."""
    from datetime import timedelta, timezone

    from nomira.reports.tally_text import isoformat as _isoformat
    rnd = random.Random(9)
    zones = [timezone.utc, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)), None,
             timezone(timedelta(hours=-3), "X")]
    fast = 0
    for _ in range(20000):
        t = datetime(rnd.choice([1, 999, 1000, rnd.randrange(1, 10000), 2026]), rnd.randrange(1, 13), rnd.randrange(1, 29),
                     rnd.randrange(24), rnd.randrange(60), rnd.randrange(60), rnd.choice([0, 1, 999999, rnd.randrange(10**6)]),
                     rnd.choice(zones), fold=rnd.randrange(2))
        if rnd.random() < 0.05:
            t = _Moment.fromtimestamp(t.timestamp(), t.tzinfo) if t.tzinfo else t
        assert _isoformat(t) == t.isoformat(), t
        fast += t.tzinfo is timezone.utc and t.microsecond and t.year >= 1000 and type(t) is datetime
    assert fast > 1000


def test_encoded_period_rows_equal_the_stamped_dicts():
    """`periods.encoded_rows` (the rows of `daily`, `monthly` and `session --json`, made without their
    dicts) writes byte for byte what each row's dict, stamped and encoded, gives; odd values (not finite,
    odd types, a reason named like an amount, odd labels and keys) go the generic way, still equal."""
    from nomira.reports import periods
    from nomira.reports.aggregate import merged
    from nomira.reports.money import with_micros
    rnd = random.Random(33)
    for n in range(80):
        fine = _odd_fine(rnd) if n % 2 else _random_fine(rnd)
        for period in ("session", "daily", "monthly"):
            g = periods.Grouped()
            for (source, sid, project, model), t in fine.items():
                key = (source, sid, project) if period == "session" else (
                    f"2026-11-{sid[1:]:0>2}" if sid.__class__ is str else sid)
                row = g.rows.setdefault(key, {"all": [], "models": {}})
                row["all"].append(t)
                row["models"][model] = t
            for row in g.rows.values():
                row["all"] = merged(row["all"])
            keys = list(g.rows)
            got = periods.encoded_rows(g, keys, period).rows
            want = [json.dumps(with_micros(periods.row_dict(k, copy.deepcopy(g.rows[k]), period))) for k in keys]
            assert got == want


def test_encoded_period_rows_take_the_fast_way():
    """Plain rows are written by `tally_text`, not the generic encoder (else the test above proves little)."""
    from nomira.reports import periods
    import nomira.reports.money as m
    rnd = random.Random(5)
    g = periods.Grouped()
    for (source, sid, project, model), t in _random_fine(rnd).items():
        row = g.rows.setdefault((source, sid, project), {"all": t.copy(), "models": {}})
        row["models"][model] = t
    calls = []
    real = m.with_micros
    m.with_micros = lambda obj: calls.append(1) or real(obj)
    try:
        rows = periods.encoded_rows(g, list(g.rows), "session").rows
    finally:
        m.with_micros = real
    assert len(rows) == len(g.rows) and not calls
