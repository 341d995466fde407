"""calls.iso and events_from_files (issue 27): the inlined paths equal the composition they replace."""
import random

from nomira.ledger.events import parse_timestamp
from nomira.sources import calls, project
from nomira.sources.scan import ScanStats


def _iso_slow(ts):
    if isinstance(ts, str):
        dt = parse_timestamp(ts.replace(" ", "T", 1) if len(ts) > 10 and ts[10] == " " else ts)
        if dt is not None:
            return dt.isoformat()
    return calls.iso_ms(ts)


def test_iso_equals_parse_timestamp_then_isoformat():
    values = ["2025-11-08T09:00:06.000Z", "2025-11-08 09:00:06", "2025-11-08T09:00:06+02:00", "2025-11-08",
              "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-13-01T00:00:00Z", "", "x", "1762592406",
              "1762592406000", "nan", "inf", "2025-11-08T09:00:06.123456789Z", 1762592406000, 1762592406, 0, -5, None,
              True, 1.5e300, [], {}]
    rng = random.Random(27)
    for _ in range(2000):
        y, mo, d, h, mi, s = (rng.randint(0, 10000), rng.randint(0, 13), rng.randint(0, 32), rng.randint(0, 25),
                              rng.randint(0, 60), rng.randint(0, 61))
        sep = rng.choice("T t")
        tail = rng.choice(["", "Z", "+00:00", "-07:30", ".5Z", ".123", "+14:00", "z", " UTC"])
        values.append(f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{tail}")
    for v in values:
        assert calls.iso(v) == _iso_slow(v), v


def test_events_from_files_labels_each_call_as_project_label_does():
    labels = project.labels_for(["/home/ana/src/shop", "/work/shop", "/srv/api"])
    cwds = ["/home/ana/src/shop", "/work/shop", "/srv/api", "/tmp/other", None, ""]
    rng = random.Random(3)
    recs = [calls.record("pi", "2025-11-08T09:00:06+00:00", f"k{i}", "s", "gpt-5", input=i + 1, cwd=rng.choice(cwds))
            for i in range(300)]
    events = list(calls.events_from_files([("f", recs, {"labels": labels})], ScanStats()))
    assert [e.project for e in events] == [calls.project_label(r[calls.CWD], labels) for r in recs]
    assert {e.project for e in events} >= {"shop (src)", "shop (work)", "api", "other", "unknown"} - {None}
