"""Usage out of a provider response as its bytes pass: the id, the model, the `usage` object, nothing else.

A reader is fed the response body chunk by chunk (after the chunk went to the client) and keeps only a
partial SSE line and the few fields it needs; every other event (the content deltas) is dropped as soon as
its line ends, without JSON parsing unless the line mentions a non-null `usage`. A plain JSON response is
held (bounded) until it ends, parsed once (on the recorder's thread unless large), and released. Provider
semantics are mapped to TokenCounts by `nomira.sources.api_usage`, the one mapping shared with the SDK
integrations.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from nomira.ledger.events import TokenCounts
from nomira.sources.api_usage import from_anthropic, from_openai, merge_anthropic_stream

MAX_HELD = 32 * 1024 * 1024  # a JSON body or one SSE line larger than this is passed on but not read
DEFER_HELD = 256 * 1024  # a JSON body up to this size is parsed on the recorder's thread, not the relay's
PRICED_TIERS = ("batch", "priority", "flex")  # service tiers the engine prices apart (others are the base rate)


@dataclass(slots=True)
class Found:
    """What one call's response said about its usage (never its content)."""

    provider: str
    model: str = ""
    response_id: str = ""
    usage: dict | None = None
    usage_delta: dict | None = None  # Anthropic `message_delta` usage, merged over `usage` at the end
    service_tier: str = ""
    problems: list[str] = field(default_factory=list)

    def tokens(self) -> TokenCounts | None:
        if self.provider == "anthropic":
            if self.usage is None and self.usage_delta is None:
                return None
            return from_anthropic(merge_anthropic_stream(self.usage or {}, self.usage_delta or {}))
        return None if self.usage is None else from_openai(self.usage)


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _tier(value) -> str:
    return value if value in PRICED_TIERS else ""


def _holder(found: Found, obj: dict) -> dict | None:
    """The object carrying id, model and usage in one parsed JSON object (a whole response, or one SSE
    event's data); None when there is none (a `message_delta` is folded into `found` here)."""
    kind = obj.get("type")
    if found.provider == "anthropic":
        if kind == "message_start":
            return obj.get("message")
        if kind == "message_delta":
            if isinstance(obj.get("usage"), dict):
                found.usage_delta = merge_anthropic_stream(found.usage_delta or {}, obj["usage"])
            return None
        return obj if kind in ("message", None) else None
    if isinstance(kind, str) and kind.startswith("response."):  # Responses API stream event
        return obj.get("response")
    return obj


def take(found: Found, obj) -> None:
    """Fold one parsed JSON object into `found`: its id, model, usage and priced service tier only."""
    holder = _holder(found, obj) if isinstance(obj, dict) else None
    if not isinstance(holder, dict):
        return
    usage = holder.get("usage")
    if isinstance(usage, dict):
        found.usage = usage
    found.model = _text(holder.get("model")) or found.model
    found.response_id = _text(holder.get("id")) or found.response_id
    # Anthropic reports the tier inside `usage`, OpenAI beside it
    tier = (usage or {}).get("service_tier") if found.provider == "anthropic" else holder.get("service_tier")
    found.service_tier = _tier(tier) or found.service_tier


def _mentions_usage(data: bytes) -> bool:
    """Cheap bytes test before any JSON parse: a `"usage"` key whose value is not null.

    Content inside a JSON string has its quotes escaped, so it cannot forge the bare `"usage"` key.
    """
    at = data.find(b'"usage"')
    while at >= 0:
        rest = data[at + 7:at + 24].lstrip(b" \t:")
        if not rest.startswith(b"null"):
            return True
        at = data.find(b'"usage"', at + 7)
    return False


class JSONReader:
    """A non-streamed response: held (up to MAX_HELD bytes) and parsed once at the end."""

    def __init__(self, provider: str):
        self.found = Found(provider)
        self.held: bytearray | None = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self.held is None:
            return
        if len(self.held) + len(chunk) > MAX_HELD:
            self.held = None
            self.found.problems.append("body_too_large")
            return
        self.held += chunk

    def finish(self) -> Found:
        held, self.held = self.held, None
        if held:
            try:
                take(self.found, json.loads(bytes(held)))
            except (ValueError, UnicodeDecodeError):
                self.found.problems.append("unparseable_json")
        return self.found


class Finished:
    """A reader already finished (its Found ready): what the recorder gets for a large JSON body, parsed on
    the relay's thread rather than held in the recorder's queue."""

    __slots__ = ("found",)

    def __init__(self, found: Found):
        self.found = found

    def finish(self) -> Found:
        return self.found


def for_recorder(reader):
    """The reader to queue for the recorder: itself (finished on the recorder's thread), or finished now when
    it holds a JSON body over DEFER_HELD bytes (the queue should not hold many large bodies)."""
    if isinstance(reader, JSONReader) and reader.held is not None and len(reader.held) > DEFER_HELD:
        return Finished(reader.finish())
    return reader


class SSEReader:
    """A text/event-stream response, read event by event as its bytes pass."""

    def __init__(self, provider: str):
        self.found = Found(provider)
        self.partial = b""
        self.data: list[bytes] = []
        self.skipping = False  # the current line overflowed MAX_HELD: drop it up to its end

    def feed(self, chunk: bytes) -> None:
        if (not self.partial and not self.data and not self.skipping and chunk.endswith(b"\n\n")
                and b'"usage"' not in chunk):
            return  # whole events only (the usual read), none of them mentioning usage: nothing to keep
        lines = (self.partial + chunk).split(b"\n") if self.partial else chunk.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if self.skipping:
                self.skipping = False
                continue
            self._line(line[:-1] if line.endswith(b"\r") else line)
        if len(self.partial) > MAX_HELD:
            self.partial, self.skipping = b"", True
            self.found.problems.append("sse_line_too_large")

    def _line(self, line: bytes) -> None:
        if not line:
            if self.data:
                self._event(b"\n".join(self.data))
                self.data = []
        elif line.startswith(b"data:"):
            value = line[5:]
            self.data.append(value[1:] if value.startswith(b" ") else value)

    def _event(self, data: bytes) -> None:
        if not _mentions_usage(data):
            return
        try:
            take(self.found, json.loads(data))
        except (ValueError, UnicodeDecodeError):
            self.found.problems.append("unparseable_event")

    def finish(self) -> Found:
        if self.partial and not self.skipping:
            self._line(self.partial)
        if self.data:  # a stream that ended without the blank line after its last event
            self._event(b"\n".join(self.data))
        self.partial, self.data = b"", []
        return self.found


class Decoded:
    """A reader fed through gzip/deflate decompression: a decompressed copy is read, the client gets the
    bytes as sent."""

    def __init__(self, reader, encoding: str):
        self.reader, self.broken = reader, False
        self.z = zlib.decompressobj(47 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> None:
        if self.broken:
            return
        try:
            self.reader.feed(self.z.decompress(chunk))
        except zlib.error:
            self.broken = True

    def finish(self) -> Found:
        if self.broken:
            return Found(self.reader.found.provider, problems=["bad_compression"])
        return self.reader.finish()


def reader_for(provider: str, content_type: str, content_encoding: str = ""):
    """The reader for a response of this media type and encoding; None when the encoding is not readable."""
    encoding = content_encoding.strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        return None
    if content_type.split(";", 1)[0].strip().lower() == "text/event-stream":
        reader = SSEReader(provider)
    else:
        reader = JSONReader(provider)
    return reader if encoding in ("", "identity") else Decoded(reader, encoding)
