"""The Stage 0 report: per session, per model and total, as one dict (rendered or dumped as JSON).

Folded in one pass over (event, cost) pairs, so costs are never all held in memory; folds of
parts of a history merge, so the parts can be folded apart (and in parallel).
"""
from __future__ import annotations

from typing import Iterable

from nomira import __version__
from nomira.ledger.events import UsageEvent, model_label
from nomira.pricing.engine import Cost
from nomira.reports.aggregate import (REGIME_LABELS, Tally, from_packed, merge_groups, merged, packed,
                                      regime_of, rollup)


def _note_model(info: dict, event: UsageEvent, cost: Cost | None) -> None:
    label = model_label(event)
    row = info.get(label)
    if row is None:
        row = info[label] = {
            "model": label, "provider": event.provider, "priced": False,
            "price_key": None, "rate_source": None,
            "verified": True,
            "long_context_calls": 0, "agent_cost_usd": None,
        }
    if event.agent_cost_usd is not None:  # the agent's own figure, beside the computed one
        row["agent_cost_usd"] = (row["agent_cost_usd"] or 0.0) + event.agent_cost_usd
    if cost is None:
        return
    if not row["priced"]:  # priced when any of its calls is (the others are counted as unpriced, with why)
        row["priced"], row["price_key"], row["rate_source"] = True, cost.price_key, cost.rate_source
    if not cost.verified:
        row["verified"] = False
    if cost.tier_above is not None:
        row["long_context_calls"] += 1


def model_rows(info: dict, fine: dict, by_model: dict | None = None) -> list[dict]:
    rows = []
    for model, tally in (rollup(fine, lambda k: k[3]) if by_model is None else by_model).items():
        row = info[model]
        rows.append({**row, **tally.as_dict(), "verified": row["verified"] and row["priced"],
                     "model_assumed": tally.assumed_calls > 0})
    rows.sort(key=lambda r: (-r["cost_usd"], r["model"]))
    return rows


def session_rows(fine: dict, rolled: tuple[dict, dict] | None = None, encoded: bool = False):
    """The session rows, sorted by last call; `encoded`: as `render.EncodedRows`, each row the JSON
    text `render_json` writes for its dict (micro-dollars included), made without the dict."""
    if rolled is None:
        tallies = rollup(fine, lambda k: k[:3])
        models: dict[tuple, set] = {}
        for k in fine:
            models.setdefault(k[:3], set()).add(k[3])
    else:
        tallies, models = rolled
    if encoded:
        return _encoded_rows(tallies, models)
    rows = [{"source": s, "session_id": sid, "project": proj, "models": sorted(models[(s, sid, proj)]),
             **t.as_dict()} for (s, sid, proj), t in tallies.items()]
    rows.sort(key=lambda r: (r["last"] or "", r["session_id"]))
    return rows


def _encoded_rows(tallies: dict, models: dict):
    """session_rows(...) stamped (money.stamp) and encoded (render_json's row encoder), in one step:
    at thousands of sessions the dicts, the stamp's walk and the generic encoder cost more than the
    figures. Any row this does not cover (a value of an unexpected type, a reason named like an amount)
    goes the generic way; tests/test_report_speed.py holds the two equal."""
    from nomira.reports.render import EncodedRows
    return EncodedRows([text for _last, _sid, text in _keyed_rows(tallies, models)])


def _keyed_rows(tallies: dict, models: dict) -> list[tuple[str, str, str]]:
    """(last call or "", session id, the row's JSON text) of each session, in the rows' order."""
    from json.encoder import encode_basestring_ascii as q
    from operator import itemgetter

    from nomira.reports.money import with_micros
    from nomira.reports.render import _row_encoder
    from nomira.reports.tally_text import fields, isoformat, string, strings
    encode = _row_encoder()
    keyed = []
    for key, t in tallies.items():
        last = t.last
        last = isoformat(last) if last else None
        keyed.append((last or "", key[1], key, t, last))
    keyed.sort(key=itemgetter(0, 1))  # (last or "", session_id), stable: as session_rows sorts its dicts
    # the JSON of the labels and model lists thousands of rows share, each made (and its type checked) once
    texts: dict = {}
    lists: dict = {}
    out = []
    for order, sid, key, t, last in keyed:
        s, _sid, proj = key
        names = models[key]
        s_text = texts.get(s) or texts.setdefault(s, string(s))
        proj_text = texts.get(proj) or texts.setdefault(proj, string(proj))
        names_text = lists.get(frozen := frozenset(names)) or lists.setdefault(frozen, strings(names))
        made = fields(t, last) if s_text and proj_text and names_text and sid.__class__ is str else None
        if made is None:
            out.append((order, sid, encode(with_micros({"source": s, "session_id": sid, "project": proj,
                                                        "models": sorted(names), **t.as_dict()}))))
            continue
        out.append((order, sid, f'{{"source": {s_text}, "session_id": {q(sid)}, "project": {proj_text}, '
                                f'"models": {names_text}, {made[0]}, {made[1]}}}'))
    return out



def rollups(fine: dict) -> tuple[Tally, dict, dict, dict]:
    """The total, the tallies by model and by session, and each session's models, from one pass over
    the fine tallies (thousands in a large report): each model's and each session's `merged`, the total
    the models' merged (floats summed in another order than over every fine tally: equal to 1e-12), and
    a session of one fine tally that tally itself (read, never changed), not a copy."""
    per_model: dict[str, list] = {}
    per_session: dict[tuple, list] = {}
    models: dict[tuple, set] = {}
    for k, t in fine.items():
        session, model = k[:3], k[3]
        parts = per_session.get(session)
        if parts is None:
            per_session[session] = [t]
            models[session] = {model}
        else:
            parts.append(t)
            models[session].add(model)
        parts = per_model.get(model)
        if parts is None:
            per_model[model] = [t]
        else:
            parts.append(t)
    by_model = {model: merged(parts) for model, parts in per_model.items()}
    by_session = {s: parts[0] if len(parts) == 1 else merged(parts) for s, parts in per_session.items()}
    return merged(list(by_model.values())), by_model, by_session, models


def fold(priced: Iterable[tuple[UsageEvent, Cost | None]]) -> tuple[dict, dict]:
    """One pass over (event, cost) pairs: tallies per (source, session, project, model) and
    what the report says of each model."""
    fine: dict[tuple, Tally] = {}
    info: dict[str, dict] = {}
    for event, cost in priced:
        key = (event.source, event.session_id, event.project, model_label(event))
        tally = fine.get(key)
        if tally is None:
            tally = fine[key] = Tally()
        tally.add(event, cost)
        _note_model(info, event, cost)
    return fine, info


def pack(folded: tuple[dict, dict]) -> tuple:
    """A fold of one file's events as plain values (marshal's), for a scan worker to send: pickling
    thousands of small folds' objects cost the parent more than folding the files itself."""
    fine, info = folded
    return [(k[0], k[1], k[3], packed(t)) for k, t in fine.items()], info


def unpack(folded: tuple, project: str) -> tuple[dict, dict]:
    """`pack`'s fold again, its calls under `project` (the history's label for the file's directory,
    which the worker could not know)."""
    rows, info = folded
    return {(source, session, project, model): from_packed(state) for source, session, model, state in rows}, info


def merge(a: tuple[dict, dict], b: tuple[dict, dict]) -> tuple[dict, dict]:
    """Two folds of disjoint parts of a history, as one."""
    fine, info = a
    merge_groups(fine, b[0])
    for model, row in b[1].items():
        mine = info.get(model)
        if mine is None:
            info[model] = row
            continue
        mine["verified"] = mine["verified"] and row["verified"]
        if row["priced"] and not mine["priced"]:
            mine["priced"], mine["price_key"], mine["rate_source"] = True, row["price_key"], row["rate_source"]
        mine["long_context_calls"] += row["long_context_calls"]
        if row["agent_cost_usd"] is not None:
            mine["agent_cost_usd"] = (mine["agent_cost_usd"] or 0.0) + row["agent_cost_usd"]
    return fine, info


def finish(folded: tuple[dict, dict], regime_override: str | None = None, allowance=None,
           table_generated: str = "", encoded: bool = False) -> dict:
    """The report; the caller adds "scan" (the stats are complete only once the events
    have been deduplicated). `encoded`: the session rows as `render.EncodedRows` (for render_json)."""
    fine, info = folded
    tot, by_model, by_session, models = rollups(fine)
    return _report(sorted({k[0] for k in by_session}), regime_override, table_generated, tot,
                   model_rows(info, fine, by_model), session_rows(fine, (by_session, models), encoded), allowance)


def half(priced: Iterable[tuple[UsageEvent, Cost | None]]) -> tuple:
    """What one half of a history split by session (`Collected.in_two`) gives the JSON report, as
    marshal's values: its models' tallies and notes, its sources, and its sessions' rows finished (a
    session is whole in one half), so both halves' rows are made at once, in two processes."""
    fine, info = fold(priced)
    _tot, by_model, by_session, models = rollups(fine)
    return ({m: packed(t) for m, t in by_model.items()}, info, sorted({k[0] for k in by_session}),
            _keyed_rows(by_session, models))


def finish_halves(a: tuple, b: tuple, regime_override: str | None = None, allowance=None,
                  table_generated: str = "") -> dict:
    """`finish(..., encoded=True)` of the two halves' `half`: models merged, rows in the order one sort of
    them all gives (a session is in one half, so no two rows of different halves tie)."""
    from heapq import merge as in_order
    from operator import itemgetter

    from nomira.reports.render import EncodedRows
    by_model = {m: from_packed(t) for m, t in a[0].items()}
    for m, t in b[0].items():
        mine = by_model.get(m)
        by_model[m] = from_packed(t) if mine is None else mine.merge(from_packed(t))
    info = merge(({}, a[1]), ({}, b[1]))[1]
    rows = EncodedRows([text for _last, _sid, text in in_order(a[3], b[3], key=itemgetter(0, 1))])
    return _report(sorted({*a[2], *b[2]}), regime_override, table_generated, merged(list(by_model.values())),
                   model_rows(info, None, by_model), rows, allowance)


def _report(sources: list, regime_override, table_generated: str, tot, models: list, sessions, allowance) -> dict:
    regime = regime_of(sources, regime_override)
    return {
        "nomira_version": __version__,
        "regime": regime,
        "value_label": REGIME_LABELS[regime],
        "sources": sources,
        "price_table": table_generated,
        "totals": tot.as_dict(),
        "models": models,
        "sessions": sessions,
        "allowance": allowance,
        "scan": None,
    }
