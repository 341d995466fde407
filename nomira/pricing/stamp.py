"""What the rates in force depend on, besides the code: the bundled table, the local override
file and the cached feeds. Apart from `feed` and the table so that a report served from the cache
(and the status line) can key on the prices without loading the pricing machinery (~15-20 ms of
imports: the engine, the table's dataclasses, `decimal`, OpenSSL)."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from functools import lru_cache
from collections.abc import Mapping  # (not typing's: 3 ms of a status line's render)
from pathlib import Path

from nomira.digests import sha1

OVERRIDE_NAMES = ("prices.toml", "prices.json")  # in the config folder, the first found wins
FEED_NAMES = ("litellm", "openrouter")  # `feed.FEEDS`, each cached as <name>.json
BUNDLED = Path(__file__).parent / "data" / "prices.json"


def override_candidates(env: Mapping[str, str] = os.environ) -> list[Path]:
    from nomira.dirs import config_home
    return [config_home(env) / name for name in OVERRIDE_NAMES]


def override_path(env: Mapping[str, str] = os.environ) -> Path | None:
    """The local override file in force (the first of `OVERRIDE_NAMES` present), or None."""
    return next((p for p in override_candidates(env) if p.exists()), None)


def feed_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    from nomira.dirs import cache_home
    return cache_home(env) / "prices"


def feed_caches(env: Mapping[str, str] = os.environ) -> list[Path]:
    folder = feed_cache_dir(env)
    return [folder / f"{name}.json" for name in FEED_NAMES]


def price_files(env: Mapping[str, str] = os.environ) -> list[Path]:
    """Every file (present or not) whose creation or change can change a rate."""
    return [*override_candidates(env), *feed_caches(env)]


@lru_cache(maxsize=1)
def table_digest() -> str:
    """Identifies the bundled rates without parsing them."""
    return sha1()(BUNDLED.read_bytes()).hexdigest()


def resolved_digest(env: Mapping[str, str] | None = None) -> str:
    """Changes whenever the rates in force could: bundled table, override file, feed caches."""
    env = os.environ if env is None else env
    h = sha1()(table_digest().encode())
    override = override_path(env)
    feeds = False
    for p in [override, *feed_caches(env)]:
        if p is not None and p.exists():
            st = p.stat()
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
            feeds = feeds or p != override
    if feeds:  # a cached feed is used for 24 hours: what it resolves to changes with the day
        h.update(datetime.now(timezone.utc).strftime("%Y-%m-%d").encode())
    return h.hexdigest()
