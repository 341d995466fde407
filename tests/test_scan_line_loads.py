"""scan._line_loads (issue 27): the fast decode of a JSONL line returns what json.loads returns
and fails where json.loads fails, on every kind of line a log can hold."""
import json
import random

import pytest

from nomira.sources import scan

LINES = [
    b'{"a":1}', b'{"a": [1, 2.5, "x", null, true]}', b'{"usage":{"input":12}}  ', b'  {"a":1}',
    b'{"a":1}\r', b'{"a":1} {"b":2}', b'{"a":1}}', b'{"a":', b'{"a":1', b'{}', b'{', b'}', b'[1,2]', b'"s"',
    b'12', b'', b'   ', b'{"a":"\xc3\xa9"}', b'{"a":"\xff"}', b'{"a":"\\ud800"}', b'{"a":NaN}', b'{"a":Infinity}',
    b'\xef\xbb\xbf{"a":1}', '{"a":1}'.encode("utf-16-le"), '{"a":1}'.encode("utf-16"), b'{"a":1}\x00',
    b'{"a":"x"}\t', b'{"a":"x"}\n', b'{"k":1,"k":2}', b'{"n":1e400}', b'{"n":-0}', b'{"a":"\xed\xa0\x80"}',
    b'{"a" : 1 , "b":{ } }', b'{"a":1}\x0b', b'{"a":1}\xc2\xa0', b'{"big":' + b'9' * 5000 + b'}',
]


def _outcome(fn, line):
    try:
        return "ok", fn(line)
    except ValueError as e:
        return "error", type(e)


@pytest.mark.parametrize("line", LINES)
def test_line_loads_equals_json_loads(line):
    got, want = _outcome(scan._line_loads(), line), _outcome(json.loads, line)
    assert got[0] == want[0] and repr(got[1]) == repr(want[1])


def test_line_loads_equals_json_loads_on_damaged_lines():
    rng = random.Random(27)
    fast = scan._line_loads()
    base = json.dumps({"type": "message", "id": "a1", "message": {"role": "assistant", "usage": {"input": 3},
                                                                  "content": [{"text": "é ✓"}]}}).encode()
    for _ in range(3000):
        b = bytearray(base)
        for _ in range(rng.randint(0, 3)):
            op = rng.random()
            i = rng.randrange(len(b))
            if op < 0.4:
                b[i] = rng.randrange(256)
            elif op < 0.7:
                del b[i]
            else:
                b[i:i] = bytes([rng.randrange(256)])
        line = bytes(b)
        got, want = _outcome(fast, line), _outcome(json.loads, line)
        assert got[0] == want[0] and repr(got[1]) == repr(want[1]), line


def test_a_source_scanning_a_path_signs_from_the_bytes_it_read(tmp_path, monkeypatch):
    """A source that opens its file as a Path (scan_json_lines) is signed from the bytes just read,
    not by a second open and read of the file, and the signature is the file's."""
    from nomira.sources import scancache
    f = tmp_path / "2025-11-08T09-00-00-000Z_abc.jsonl"
    f.write_bytes(b'{"type":"session","id":"abc","cwd":"/w"}\n' + b'{"type":"message","id":"m1","timestamp":'
                  b'"2025-11-08T09:00:06.000Z","message":{"role":"assistant","model":"gpt-5","usage":'
                  b'{"input":5,"output":7}}}\n' * 3)
    want = scancache.signature(f, f.stat().st_size)
    reads = []
    real = scancache.signature
    monkeypatch.setattr(scancache, "signature", lambda *a: reads.append(a) or real(*a))
    scan._SIG = None
    _path, head, _data = scan._job(("nomira.sources.pi", str(f), 0, None, False))
    end, _stats, sig, _folded, _stated = head
    assert end == f.stat().st_size and sig == want and reads == []
