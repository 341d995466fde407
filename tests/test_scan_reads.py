"""The scanner's read economies: one read for a small file, the cache signature from the bytes read."""
import random

from nomira.sources import scan
from nomira.sources.scan import LineScan, end_signature
from nomira.sources.scancache import signature


def test_end_signature_equals_reading_the_file(tmp_path):
    rng = random.Random(5)
    for n, chunk in ((0, 64), (10, 64), (300, 64), (5000, 1024), (70_000, 4096)):
        f = tmp_path / f"f{n}.jsonl"
        f.write_bytes(b"".join(b'{"usage":%d,"pad":"%s"}\n' % (i, b"x" * rng.randint(0, 300)) for i in range(n)))
        lines = list(LineScan(f, (b'"usage":',), chunk_size=chunk))
        assert len(lines) == n
        for end in {0, 1, 255, 256, 257, f.stat().st_size // 2, f.stat().st_size - 1, f.stat().st_size}:
            if end <= f.stat().st_size:
                assert end_signature(str(f), end) == signature(f, end)
    scan._LAST_READ = None
    assert end_signature(str(f), 1000) == signature(f, 1000)  # nothing held: read from the file


def test_unfinished_last_line_and_resume(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_bytes(b'{"usage":1}\n{"usage":2}\n{"usa')
    scan_ = LineScan(f, (b'"usage":',))
    assert list(scan_) == [b'{"usage":1}', b'{"usage":2}']
    assert scan_.end_offset == 24 and scan_.tail_start is None
    with open(f, "ab") as fh:
        fh.write(b'ge":3}\n')
    resumed = LineScan(f, (b'"usage":',), start=24)
    assert list(resumed) == [b'{"usage":3}'] and resumed.end_offset == f.stat().st_size
