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


def test_aider_markers_find_every_line_its_visit_acts_on(tmp_path, monkeypatch):
    """Aider's scan with its line markers equals the scan of every line (no marker filter)."""
    from pathlib import Path

    from nomira.sources import aider
    fixtures = sorted(Path(__file__).parent.joinpath("fixtures", "aider").rglob("*.md"))
    extra = tmp_path / aider.HISTORY
    extra.write_text("# aider chat started at 2025-11-08 09:00:00\n\n> Main model: gpt-5 with diff edit format\n"
                     "> Weak model: gpt-5-mini\n> Editor model: x\nmodel: y\n"
                     "> Tokens: 12k sent, 1.2k cache write, 8.0k cache hit, 512 received.\n"
                     "> Model: claude-sonnet-4-5 with diff\n"
                     "> Cost: $0.04 message, $0.12 session.\n> Tokens: 1,234 sent, 56 received. Cost: $0.01 "
                     "message, $0.13 session.\n")
    assert fixtures
    for f in [*fixtures, extra]:
        fast = aider.scan_file(f)
        broad = (b"# aider chat started at ", b"odel: ", b"Tokens: ", b"Cost: $", b"#", b">", b":", b" ", b"$")
        monkeypatch.setattr(aider, "MARKERS", broad)  # the old markers and every line with a space or sign
        every = aider.scan_file(f)
        monkeypatch.undo()
        assert fast[0] == every[0] and fast[1] == every[1], f
