"""LineScan with markers of different first bytes (Aider's) finds each by bytes.find: the same lines,
end offset and unfinished tail as the regex alternation it replaces there."""
import random

from nomira.sources import scan

MARKERS = (b"# aider chat started at ", b"> Model: ", b"Tokens: ", b"Cost: $", b"ab")
PIECES = [b"# aider chat started at 2025", b"> Model: x", b"Tokens: 1", b"Cost: $2", b"ab", b"a", b"b", b"\n", b"\n",
          b"xx ", b"Tok", b"> ", b"Cost", b"Tokens: Tokens: ", b"abab", b"\r\n"]


def test_find_per_marker_equals_the_regex(tmp_path):
    rnd = random.Random(3)
    f = tmp_path / "f"
    assert scan.LineScan(f, MARKERS)._markers == MARKERS  # (the find path is the one taken)
    for _ in range(1500):
        f.write_bytes(b"".join(rnd.choice(PIECES) for _ in range(rnd.randrange(0, 60))))
        start = rnd.randrange(0, 3)
        for chunk in (7, 64, 1 << 20):
            got = scan.LineScan(f, MARKERS, start, chunk)
            want = scan.LineScan(f, MARKERS, start, chunk)
            want._markers = None  # the regex
            assert list(got) == list(want)
            assert (got.end_offset, got.tail_start) == (want.end_offset, want.tail_start)
