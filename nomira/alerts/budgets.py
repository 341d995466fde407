"""Budgets as configured in `$XDG_CONFIG_HOME/nomira/budgets.toml`, and the windows they count in.

    webhook = "https://hooks.slack.com/services/..."   # default for every budget (optional)

    [[budget]]
    name = "shop-monthly"
    scope = "project"        # all | developer | project | tenant | tag
    match = "shop"           # the scope's value; for tag: "feature=checkout"
    window = "month"         # day | week | month | block (the active 5-hour block)
    usd = 500                # the money figure: the bill (API regime) or API-equivalent value (subscription)
    thresholds = [50, 80, 100]

    [[budget]]
    name = "claude-5h"
    limit = "five_hour"      # instead of usd: a subscription limit window's used % (see `nomira limits`)
    thresholds = [80, 100]

Days, weeks (Monday first) and months are local to the timezone given (default: local).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Mapping

SCOPES = ("all", "developer", "project", "tenant", "tag")
WINDOWS = ("day", "week", "month", "block")
DEFAULT_THRESHOLDS = (50, 80, 100)
FILE = "budgets.toml"


class BudgetError(ValueError):
    """A budgets.toml (or `budget set`) that does not say a budget: names the budget and the field."""


@dataclass(frozen=True)
class Budget:
    name: str
    scope: str = "all"
    match: str = ""
    window: str = "month"
    usd: float | None = None
    limit: str | None = None  # a limit window (five_hour, seven_day, ...), optionally agent:window
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    webhook: str | None = None

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if v is not None}


@dataclass
class Config:
    budgets: list[Budget] = field(default_factory=list)
    webhook: str | None = None


def path(env: Mapping[str, str] = os.environ) -> Path:
    """NOMIRA_BUDGETS names the file (a collector's container), else the XDG config one."""
    if env.get("NOMIRA_BUDGETS"):
        return Path(env["NOMIRA_BUDGETS"])
    from nomira.dirs import config_home
    return config_home(env) / FILE


def parse(doc: dict) -> Config:
    hook = doc.get("webhook")
    if hook is not None and not isinstance(hook, str):
        raise BudgetError("webhook: must be a URL string")
    out = Config(webhook=hook)
    raw = doc.get("budget", [])
    if not isinstance(raw, list):
        raise BudgetError("budget: must be an array of tables ([[budget]])")
    for i, d in enumerate(raw):
        out.budgets.append(budget_from(d, i))
    names = [b.name for b in out.budgets]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise BudgetError(f"budget names must be unique: {', '.join(sorted(dup))}")
    return out


def budget_from(d: dict, i: int = 0) -> Budget:
    name = d.get("name")
    where = f"budget {name!r}" if isinstance(name, str) else f"budget #{i + 1}"
    if not isinstance(name, str) or not name.strip():
        raise BudgetError(f"{where}: needs a name")
    unknown = set(d) - set(Budget.__dataclass_fields__)
    if unknown:
        raise BudgetError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    scope, window = d.get("scope", "all"), d.get("window", "month")
    if scope not in SCOPES:
        raise BudgetError(f"{where}: scope must be one of {', '.join(SCOPES)}")
    if window not in WINDOWS:
        raise BudgetError(f"{where}: window must be one of {', '.join(WINDOWS)}")
    match = d.get("match", "")
    if not isinstance(match, str) or (scope != "all" and not match):
        raise BudgetError(f"{where}: scope {scope} needs match = \"...\" (the {scope} to count)")
    if scope == "tag" and "=" not in match:
        raise BudgetError(f"{where}: a tag budget matches KEY=VALUE, e.g. match = \"feature=checkout\"")
    usd, limit = d.get("usd"), d.get("limit")
    if (usd is None) == (limit is None):
        raise BudgetError(f"{where}: give exactly one of usd = AMOUNT or limit = \"five_hour\"")
    if usd is not None and (isinstance(usd, bool) or not isinstance(usd, (int, float)) or usd <= 0):
        raise BudgetError(f"{where}: usd must be a positive number")
    if limit is not None and not isinstance(limit, str):
        raise BudgetError(f"{where}: limit names a limit window, e.g. \"five_hour\" or \"codex:seven_day\"")
    th = d.get("thresholds", list(DEFAULT_THRESHOLDS))
    if not isinstance(th, list) or not th or not all(isinstance(t, int) and not isinstance(t, bool)
                                                     and 0 < t <= 1000 for t in th):
        raise BudgetError(f"{where}: thresholds is a list of percents, e.g. [50, 80, 100]")
    hook = d.get("webhook")
    if hook is not None and not isinstance(hook, str):
        raise BudgetError(f"{where}: webhook must be a URL string")
    return Budget(name=name.strip(), scope=scope, match=match, window=window,
                  usd=float(usd) if usd is not None else None, limit=limit,
                  thresholds=tuple(sorted(set(th))), webhook=hook)


def load(env: Mapping[str, str] = os.environ) -> Config:
    p = path(env)
    try:
        with open(p, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        return Config()
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{p}: not valid TOML ({exc})") from None
    try:
        return parse(doc)
    except BudgetError as exc:
        raise BudgetError(f"{p}: {exc}") from None


def _toml_value(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def dump(cfg: Config) -> str:
    lines = ["# Nomira budgets (nomira budget set|rm rewrites this file)"]
    if cfg.webhook:
        lines.append(f"webhook = {_toml_value(cfg.webhook)}")
    for b in cfg.budgets:
        lines += ["", "[[budget]]"] + [f"{k} = {_toml_value(v)}" for k, v in b.as_dict().items()]
    return "\n".join(lines) + "\n"


def save(cfg: Config, env: Mapping[str, str] = os.environ) -> Path:
    p = path(env)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{FILE}.{os.getpid()}.tmp")
    tmp.write_text(dump(cfg))
    os.replace(tmp, p)
    return p


def window_bounds(window: str, now: datetime, tz: tzinfo, block_start: datetime | None = None
                  ) -> tuple[datetime, datetime, str]:
    """(start, end, key) of the `window` that holds `now`; the key names it in the alert state."""
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        start = midnight
        end = start + timedelta(days=1)  # wall-clock arithmetic: a DST day is 23 or 25 hours
        return start, end, f"day:{start:%Y-%m-%d}"
    if window == "week":
        start = midnight - timedelta(days=local.weekday())
        end = start + timedelta(days=7)
        iso = start.isocalendar()
        return start, end, f"week:{iso.year}-W{iso.week:02d}"
    if window == "month":
        start = midnight.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end, f"month:{start:%Y-%m}"
    if window == "block":
        if block_start is None:  # no active block: nothing spent in one
            return now, now, "block:none"
        from nomira.reports.periods import BLOCK
        return block_start, block_start + BLOCK, f"block:{block_start.astimezone(timezone.utc):%Y-%m-%dT%H:%MZ}"
    raise ValueError(window)
