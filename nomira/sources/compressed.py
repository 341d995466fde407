"""zstd-compressed logs: Codex's rollouts older than a week (`rollout-*.jsonl.zst`), DeepSeek Harness
logs (`session.jsonl.zstd`), Zed's thread blobs.

Decoded by Python 3.14's `compression.zstd`, else by the `zstandard` package where the user installed
it (`pip install 'nomira[zstd]'`), imported only when a compressed log is met. Without either, such a
log is counted `ZSTD_MISSING` (shown by `nomira sources` and in the report's skipped counts), never
silently dropped; a damaged frame is counted `ZSTD_BAD`.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Iterator

ZSTD_MISSING = "unreadable:zstd_needs_python_3.14_or_zstandard"
ZSTD_BAD = "unreadable:zstd_frame"
TO_READ = "pip install 'nomira[zstd]' (or run it on Python 3.14) to read them"
SUFFIXES = (".zst", ".zstd")
BLOCK = 1 << 20
MAX_LINE = 64 << 20


def is_compressed(name: str) -> bool:
    return name.endswith(SUFFIXES)


def _stdlib():
    try:
        from compression import zstd  # Python 3.14+
    except ImportError:
        return None
    return zstd


def _zstandard():
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


def decompress(data: bytes) -> bytes | None:
    """The decoded bytes of one or more zstd frames; None when no decoder is installed. A damaged
    frame raises (the caller counts it)."""
    std = _stdlib()
    if std is not None:
        return std.decompress(data)
    zs = _zstandard()
    if zs is None:
        return None
    return b"".join(_zstandard_blocks(zs, io.BytesIO(data)))


def lines(path: str | Path) -> Iterator[bytes] | None:
    """The decoded file's lines (each with its newline, the last maybe without), read a block at a
    time, never held whole; None when no decoder is installed. A damaged or cut-short frame raises
    as it is met (the lines before it have been yielded: the caller counts the file)."""
    std = _stdlib()
    if std is not None:
        return _std_lines(std, path)
    zs = _zstandard()
    if zs is None:
        return None
    return _split_lines(_zstandard_blocks(zs, open(path, "rb")))


def _std_lines(std, path) -> Iterator[bytes]:
    with std.open(path, "rb") as fh:
        yield from _split_lines(iter(lambda: fh.read(BLOCK), b""))


def _zstandard_blocks(zs, fh: IO[bytes]) -> Iterator[bytes]:
    """Decoded blocks of each frame in turn, closing `fh` at the end; raises EOFError when the last
    frame is cut short (zstandard's own stream reader ends quietly there)."""
    with fh:
        frame, fed = zs.ZstdDecompressor().decompressobj(), False
        while block := fh.read(BLOCK):
            while block:
                out = frame.decompress(block)
                fed = True
                if out:
                    yield out
                if not frame.eof:
                    break
                block = frame.unused_data
                frame, fed = zs.ZstdDecompressor().decompressobj(), False
        if fed and not frame.eof:
            raise EOFError("zstd frame cut short")


def _split_lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines of the decoded blocks. A line longer than `MAX_LINE` (a tool's output; no usage line is
    near it, and a small compressed file can decode to gigabytes) is passed over, never held whole."""
    pieces: list[bytes] = []
    held = 0
    for block in blocks:
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            if held + end - start < MAX_LINE:
                pieces.append(block[start:end + 1])
                yield b"".join(pieces)
            pieces, held, start = [], 0, end + 1
        if start < len(block):
            held += len(block) - start
            if held < MAX_LINE:
                pieces.append(block[start:])
            else:
                pieces = []
    if pieces and held < MAX_LINE:
        yield b"".join(pieces)
