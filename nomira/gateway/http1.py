"""Just enough HTTP/1.1 for a pass-through proxy, on raw sockets.

Why not http.server / http.client: they parse every message head through the email package and decode
and re-encode every chunk of a body, which was most of the gateway's CPU per call. Here a head is split on
CRLF once, and a chunked body is passed on as the bytes that arrived, with `Chunked` only following its
framing (to know where it ends and to hand the payload to the usage reader).
"""
from __future__ import annotations

MAX_HEAD = 64 * 1024  # a request or response head larger than this is refused
MAX_LINE = 4096  # a chunk-size or trailer line
WS = " \t\n\r\x0b\x0c"  # what bytes.strip() strips: the same after decoding as latin-1


class ProtocolError(ValueError):
    """The peer did not speak HTTP/1.1 as this proxy understands it (a 400 from a client, a 502 upstream)."""


def split_head(buf: bytearray) -> bytes | None:
    """The first message head in `buf` (up to, not including, the blank line), taken out of it with that line;
    None while the blank line has not arrived (ProtocolError past MAX_HEAD)."""
    end = buf.find(b"\r\n\r\n")
    if end >= 0:
        head = bytes(buf[:end])
        del buf[:end + 4]
        return head
    end = buf.find(b"\n\n")  # bare-LF heads, as http.server accepts them
    if end >= 0:
        head = bytes(buf[:end])
        del buf[:end + 2]
        return head
    if len(buf) > MAX_HEAD:
        raise ProtocolError("head too large")
    return None


def parse_head(head: bytes) -> tuple[list[str], list[tuple[str, str]]]:
    """(the start line split in three, [(name, value)]) of a head; ProtocolError when malformed."""
    text = head.decode("latin-1")  # once for the whole head
    lines = (text.replace("\r\n", "\n") if "\r" in text else text).split("\n")
    while lines and not lines[0]:  # stray empty lines before a request (RFC 9112 section 2.2)
        del lines[0]
    if not lines:
        raise ProtocolError("empty head")
    start = lines[0].split(" ", 2)
    if len(start) != 3:
        if len(start) == 2 and start[0].startswith("HTTP/"):  # a status line without a reason phrase
            start.append("")
        else:
            raise ProtocolError("bad start line")
    headers = []
    for i in range(1, len(lines)):
        name, colon, value = lines[i].partition(":")
        if not colon or not name or name[0] in WS or name[-1] in WS:
            raise ProtocolError("bad header line")
        headers.append((name, value.strip(WS)))
    return start, headers


def lookup(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names to values (repeated headers joined with commas, as a list header is)."""
    out: dict[str, str] = {}
    for name, value in headers:
        low = name.lower()
        out[low] = f"{out[low]}, {value}" if low in out else value
    return out


def tokens(value: str) -> set[str]:
    """The comma-separated tokens of a header such as Connection, lower-cased."""
    return {t.strip().lower() for t in value.split(",") if t.strip()}


class Chunked:
    """Follows a chunked body's framing as its bytes pass: `feed` returns the payload pieces in `data`,
    `done` turns true after the last chunk and its trailers. Bytes after the end are ignored."""

    __slots__ = ("state", "left", "line", "done")

    def __init__(self):
        self.state, self.left, self.line, self.done = 0, 0, b"", False  # 0 size line, 1 data, 2 CRLF, 3 trailers

    def feed(self, data: bytes) -> list[bytes]:
        if self.state == 0 and not self.line:  # the usual read: exactly one whole chunk
            j = data.find(b"\r\n")
            if 0 < j <= 16:
                try:
                    size = int(data[:j], 16)
                except ValueError:
                    size = 0
                if size > 0 and len(data) == j + size + 4 and data.endswith(b"\r\n"):
                    return [data[j + 2:j + 2 + size]]
        out = []
        i, n = 0, len(data)
        while i < n and not self.done:
            state = self.state
            if state == 1:
                take = min(self.left, n - i)
                out.append(data[i:i + take])
                i += take
                self.left -= take
                if not self.left:
                    self.state, self.left = 2, 2
            elif state == 2:
                take = min(self.left, n - i)
                i += take
                self.left -= take
                if not self.left:
                    self.state = 0
            else:
                j = data.find(b"\n", i)
                if j < 0:
                    self.line += data[i:]
                    if len(self.line) > MAX_LINE:
                        raise ProtocolError("chunk line too long")
                    break
                line, self.line, i = self.line + data[i:j], b"", j + 1
                if state == 0:
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise ProtocolError("bad chunk size") from None
                    if size < 0:
                        raise ProtocolError("bad chunk size")
                    self.state, self.left = (3, 0) if size == 0 else (1, size)
                elif not line.strip():
                    self.done = True
        return out


def chunk(data: bytes) -> bytes:
    """One chunk of chunked transfer encoding."""
    return b"%x\r\n%s\r\n" % (len(data), data)
