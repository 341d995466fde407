"""Time reports: daily, monthly, per session, and 5-hour billing blocks.

Events are grouped by the user's timezone (`--timezone`, default local); blocks
follow Claude's 5-hour usage windows: a block starts at the hour of its first call
and ends 5 hours later, or earlier when activity stops for 5 hours.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Callable, Iterable

from nomira.ledger.events import UsageEvent, model_label
from nomira.pricing.engine import Cost
from nomira.reports.aggregate import Tally, from_packed, instant, merge_groups, packed

BLOCK = timedelta(hours=5)


@dataclass
class Grouped:
    """Per-period tallies, each with a per-model breakdown."""

    rows: dict = field(default_factory=dict)  # key -> {"all": Tally, "models": {model: Tally}}

    def add(self, key, event: UsageEvent, cost: Cost | None) -> None:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = {"all": Tally(), "models": {}}
        row["all"].add(event, cost)
        label = model_label(event)
        m = row["models"].get(label)
        if m is None:
            m = row["models"][label] = Tally()
        m.add(event, cost)

    def merge(self, other: "Grouped") -> "Grouped":
        """The rows of two disjoint parts of a history, as one."""
        for key, row in other.rows.items():
            mine = self.rows.get(key)
            if mine is None:
                self.rows[key] = row
                continue
            mine["all"].merge(row["all"])
            merge_groups(mine["models"], row["models"])
        return self


def pack(grouped: Grouped, sessions: bool = False) -> list:
    """A fold of one file's events as plain values (marshal's), for a scan worker to send and the
    cache to keep; of `sessions`, each key without its project (the worker cannot know the history's
    label for the file's folder: `unpack` is given it)."""
    return [(key[:2] if sessions else key, packed(row["all"]), [(m, packed(t)) for m, t in row["models"].items()])
            for key, row in grouped.rows.items()]


def unpack(rows: list, project: str | None = None) -> Grouped:
    """`pack`'s fold again; `project`: the label of a `sessions` fold's file."""
    g = Grouped()
    for key, whole, models in rows:
        if project is not None:
            key = (*key, project)
        g.rows[key] = {
            "all": from_packed(whole), "models": {m: from_packed(t) for m, t in models}}
    return g


def row_dict(key, row: dict, period: str) -> dict:
    """One row of `daily`/`monthly`/`session --json`: the period (or the session), its tally, its models'."""
    head = ({"source": key[0], "session_id": key[1], "project": key[2]} if period == "session"
            else {"date" if period == "daily" else "month": key})
    return {**head, **row["all"].as_dict(),
            "models": [{"model": m, **t.as_dict()} for m, t in sorted(row["models"].items())]}


def encoded_rows(grouped: Grouped, keys: list, period: str):
    """`row_dict` of each key, stamped and encoded as `render_json` writes it, as `render.EncodedRows`:
    made without the dicts (`tally_text`); a row with anything else in it the generic way."""
    from json.encoder import encode_basestring_ascii as q

    from nomira.reports.money import with_micros
    from nomira.reports.render import EncodedRows, _row_encoder
    from nomira.reports.tally_text import fields, string
    encode = _row_encoder()
    texts: dict = {}
    out = []
    for key in keys:
        row = grouped.rows[key]
        if period == "session":
            parts = [texts.get(v) or texts.setdefault(v, string(v)) for v in key] \
                if key.__class__ is tuple and len(key) == 3 else [""]
            head = "" if "" in parts else (f'"source": {parts[0]}, "session_id": {parts[1]}, '
                                           f'"project": {parts[2]}')
        else:
            head = f'"{"date" if period == "daily" else "month"}": {q(key)}' if key.__class__ is str else ""
        made = fields(row["all"]) if head else None
        models = []
        if made is not None:
            for m, t in sorted(row["models"].items()):
                mine = fields(t) if m.__class__ is str else None
                if mine is None:
                    made = None
                    break
                models.append(f'{{"model": {texts.get(m) or texts.setdefault(m, q(m))}, {mine[0]}, {mine[1]}}}')
        if made is None:
            out.append(encode(with_micros(row_dict(key, row, period))))
            continue
        out.append(f'{{{head}, {made[0]}, "models": [{", ".join(models)}], {made[1]}}}')
    return EncodedRows(out)


def session_half(tz: tzinfo, since: date | None = None, until: date | None = None):
    """The fold of `session --json` for one half of a history split by session (`Run.fold_in_two`): a
    session is whole in one half, so each half makes its own rows' JSON, in two processes at once. A
    half: ([(last call in microseconds since the epoch, session key, row JSON)] in the rows' order, its
    rows' total packed)."""
    def half(priced) -> tuple:
        g = sessions(priced, tz, since, until)
        keys = sorted(g.rows, key=lambda k: (g.rows[k]["all"].last, k))
        total = Tally()
        for k in keys:
            total.merge(g.rows[k]["all"])
        texts = encoded_rows(g, keys, "session").rows
        # (ordered by the last call's instant in microseconds, as datetimes of one instant compare equal)
        return [(instant(g.rows[k]["all"].last)[0], k, text) for k, text in zip(keys, texts)], packed(total)
    return half


def finish_session_halves(a: tuple, b: tuple) -> tuple:
    """(`render.EncodedRows` of both halves' rows in the order one sort of them all gives, the total)."""
    from heapq import merge as in_order
    from operator import itemgetter

    from nomira.reports.render import EncodedRows
    rows = EncodedRows([text for _last, _key, text in in_order(a[0], b[0], key=itemgetter(0, 1))])
    total = Tally()
    total.merge(from_packed(a[1]))
    total.merge(from_packed(b[1]))
    return rows, total


def in_range(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def group_by(priced: Iterable[tuple[UsageEvent, Cost | None]], key: Callable[[UsageEvent, date], object],
             tz: tzinfo, since: date | None = None, until: date | None = None) -> Grouped:
    g = Grouped()
    for event, cost in priced:
        day = event.occurred_at.astimezone(tz).date()
        if in_range(day, since, until):
            g.add(key(event, day), event, cost)
    return g


def daily(priced, tz, since=None, until=None) -> Grouped:
    return group_by(priced, lambda e, d: d.isoformat(), tz, since, until)


def monthly(priced, tz, since=None, until=None) -> Grouped:
    return group_by(priced, lambda e, d: d.isoformat()[:7], tz, since, until)


def sessions(priced, tz, since=None, until=None) -> Grouped:
    return group_by(priced, lambda e, d: (e.source, e.session_id, e.project), tz, since, until)


@dataclass
class Block:
    start: datetime
    end: datetime
    first: datetime
    last: datetime
    tally: Tally = field(default_factory=Tally)
    models: dict = field(default_factory=dict)  # model -> Tally
    source: str = ""  # the agent whose window it is

    def is_active(self, now: datetime) -> bool:
        return self.start <= now < self.end and now - self.last < BLOCK

    def minutes_left(self, now: datetime) -> float:
        return max((self.end - now).total_seconds() / 60, 0.0)

    def burn(self, now: datetime) -> dict | None:
        """Rates over the block's active span so far, and the cost projected to its end; None while its
        calls span no time (one call has no rate: a floor of a minute made one call's cost a rate per
        minute, about 300 times it by the block's end)."""
        minutes = (self.last - self.first).total_seconds() / 60
        if minutes <= 0:
            return None
        cost = self.tally.total_usd
        per_min = cost / minutes
        remaining = self.minutes_left(now)
        return {
            "tokens_per_minute": self.tally.total_tokens / minutes,
            "cost_per_hour_usd": per_min * 60,
            "projected_cost_usd": cost + per_min * remaining,
            "remaining_minutes": remaining,
        }


def blocks(priced, tz, since=None, until=None) -> list[Block]:
    """5-hour windows over events sorted by time, each agent's apart (Claude Code's limits and Codex's run
    in windows of their own), made over the whole timeline and then kept when they start within the
    range: a window is fixed by the calls before it, so dropping those first made windows that never
    were."""
    out: list[Block] = []
    current: dict[str, Block] = {}
    for event, cost in sorted(priced, key=lambda p: p[0].occurred_at):
        at = event.occurred_at
        cur = current.get(event.source)
        if cur is None or at > cur.end or at - cur.last > BLOCK:  # (a call at the window's very end is in
            # it, as ccusage 20 counts it: `since_start > session_duration`, blocks.rs)
            start = at.replace(minute=0, second=0, microsecond=0)
            cur = current[event.source] = Block(start=start, end=start + BLOCK, first=at, last=at, source=event.source)
            out.append(cur)
        cur.last = max(cur.last, at)
        cur.tally.add(event, cost)
        label = model_label(event)
        m = cur.models.get(label)
        if m is None:
            m = cur.models[label] = Tally()
        m.add(event, cost)
    out.sort(key=lambda b: (b.start, b.source))
    if since is not None or until is not None:
        out = [b for b in out if in_range(b.start.astimezone(tz).date(), since, until)]
    return out
