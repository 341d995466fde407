"""pricing.stamp: the digest of what the rates in force depend on changes exactly when they could:
an override or a feed cache written, a feed's day past; never with the date alone when no feed is
cached (a cached report and the files' kept folds then survive midnight)."""
from datetime import datetime, timezone

from nomira.pricing import stamp


class Clock:
    day = datetime(2026, 12, 3, 23, 59, tzinfo=timezone.utc)

    @classmethod
    def now(cls, tz=None):
        return cls.day


def digest_on(monkeypatch, day: datetime) -> str:
    Clock.day = day
    monkeypatch.setattr(stamp, "datetime", Clock)
    return stamp.resolved_digest()


def test_without_feeds_the_day_changes_nothing(isolated_env, monkeypatch):
    today = digest_on(monkeypatch, datetime(2026, 12, 3, 23, 59, tzinfo=timezone.utc))
    assert digest_on(monkeypatch, datetime(2026, 12, 4, 0, 1, tzinfo=timezone.utc)) == today
    override = stamp.override_candidates()[0]
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text("[models]\n")
    with_override = digest_on(monkeypatch, datetime(2026, 12, 4, 0, 1, tzinfo=timezone.utc))
    assert with_override != today
    assert digest_on(monkeypatch, datetime(2026, 12, 5, 0, 1, tzinfo=timezone.utc)) == with_override


def test_a_cached_feed_makes_the_day_count(isolated_env, monkeypatch):
    feed = stamp.feed_caches()[0]
    feed.parent.mkdir(parents=True, exist_ok=True)
    feed.write_text('{"models": {}, "fetched_at": "2026-12-03T10:00:00+00:00"}')
    today = digest_on(monkeypatch, datetime(2026, 12, 3, 23, 59, tzinfo=timezone.utc))
    assert digest_on(monkeypatch, datetime(2026, 12, 4, 0, 1, tzinfo=timezone.utc)) != today


def test_the_files_listed_are_the_ones_feed_reads(isolated_env):
    from nomira.pricing import feed
    assert [str(p) for p in stamp.feed_caches()] == [str(feed.cache_dir() / f"{n}.json") for n in feed.FEEDS]
    assert feed.override_path() is None
    stamp.override_candidates()[1].parent.mkdir(parents=True, exist_ok=True)
    stamp.override_candidates()[1].write_text("{}")
    assert feed.override_path() == stamp.override_candidates()[1]
