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
            if 0 <= end <= f.stat().st_size:
                at_line = end == 0 or f.read_bytes()[end - 1:end] == b"\n"
                assert end_signature(str(f), end) == (signature(f, end) if at_line else scan.MID_LINE)
    ends = [i + 1 for i, b in enumerate(f.read_bytes()) if b == 10]
    scan._LAST_READ = None  # nothing held: read from the file
    assert end_signature(str(f), ends[3]) == signature(f, ends[3])
    assert end_signature(str(f), ends[3] - 1) == scan.MID_LINE


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


def _plain_lines(data: bytes, start: int, markers: tuple[bytes, ...]) -> tuple[list[bytes], int, int | None]:
    """What LineScan must yield from `start`: every newline-ended line holding a marker, then an
    unended last line holding one (without its \\r); the offset after the last ended line."""
    body = data[start:]
    cut = body.rfind(b"\n") + 1
    lines = [line for line in body[:cut].split(b"\n")[:-1] if any(m in line for m in markers)]
    tail = body[cut:]
    if tail.strip() and any(m in tail for m in markers):
        return lines + [tail.rstrip(b"\r")], start + cut, start + cut
    return lines, start + cut, None


def test_linescan_equals_splitting_lines_at_every_chunk_size(tmp_path):
    """Lines across chunk boundaries, longer than a chunk, markers cut by a boundary, blank lines,
    CRLF, no final newline, resumed from an offset: the same lines as splitting the whole file."""
    rng = random.Random(11)
    pieces = [b'{"usage":1}', b'"usage":', b'"turn_context"', b"x" * 70, b"", b"\r", b"y" * 3, b'{"a":"usage"}']
    f = tmp_path / "f.jsonl"
    for trial in range(120):
        lines = [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(0, 25))]
        data = b"\n".join(lines) + rng.choice([b"\n", b"", b'{"usage":9', b"\r\n"])
        f.write_bytes(data)
        markers = rng.choice([(b'"usage":',), (b'"usage":', b'"turn_context"')])
        start = rng.choice([0, 0, data.find(b"\n") + 1])
        for chunk in (1, 2, 3, 7, 16, 64, 1 << 20):
            scan_ = LineScan(f, markers, start, chunk_size=chunk)
            got = list(scan_)
            assert (got, scan_.end_offset, scan_.tail_start) == _plain_lines(data, start, markers), (trial, chunk)
