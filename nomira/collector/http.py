"""Request, Response and HTTP errors for the WSGI app: small, stdlib only."""
from __future__ import annotations

import json
import math
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, unquote

STATUS = {200: "OK", 202: "Accepted", 302: "Found", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
          404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
          415: "Unsupported Media Type", 421: "Misdirected Request", 429: "Too Many Requests",
          500: "Internal Server Error", 503: "Service Unavailable"}


class HTTPError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, headers: list | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or []


def _raw_path(environ: dict) -> str:
    """The request path still percent-encoded, so `%2F` inside a name stays part of the name.

    From RAW_URI/REQUEST_URI when the server gives it; else rebuilt from PATH_INFO (which
    PEP 3333 decodes as latin-1)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        path = raw.split("?", 1)[0]
        if "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        return path or "/"
    decoded = (environ.get("PATH_INFO", "/") or "/").encode("latin-1", "replace").decode("utf-8", "replace")
    return quote(decoded, safe="/")


def path_part(segment: str) -> str:
    """One percent-encoded path segment, decoded as UTF-8."""
    return unquote(segment, "utf-8", "replace")


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


class Request:
    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = _raw_path(environ)
        self.query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        cookie = SimpleCookie()
        try:
            cookie.load(environ.get("HTTP_COOKIE", ""))
        except Exception:  # a malformed cookie header is treated as no cookie
            pass
        self.cookies = {k: m.value for k, m in cookie.items()}
        self.remote = environ.get("REMOTE_ADDR", "")
        self.consumed = False
        self.state: dict = {}

    def header(self, name: str, default: str = "") -> str:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() in ("content-type", "content-length"):
            key = name.upper().replace("-", "_")
        return self.environ.get(key, default)

    @property
    def has_body(self) -> bool:
        length = self.environ.get("CONTENT_LENGTH") or ""
        return length.strip() not in ("", "0") or bool(self.header("Transfer-Encoding"))

    def body(self, limit: int) -> bytes:
        """The whole body, or 400/411/413 before reading more than `limit` bytes."""
        stream = self.environ["wsgi.input"]
        raw = (self.environ.get("CONTENT_LENGTH") or "").strip()
        if not raw:
            if "chunked" in self.header("Transfer-Encoding").lower():
                if not self.environ.get("wsgi.input_terminated"):  # the server cannot de-chunk it for us
                    raise HTTPError(411, "Content-Length required (chunked bodies are not accepted here)")
                data = self._read(stream, limit + 1)
                if len(data) > limit:
                    raise HTTPError(413, f"body larger than {limit} bytes")
                self.consumed = True
                return data
            if self.header("Transfer-Encoding"):
                raise HTTPError(400, "unsupported Transfer-Encoding")
            raise HTTPError(411, "Content-Length required")
        if not raw.isdigit():  # no sign, no spaces, no hex: only a decimal count
            raise HTTPError(400, "bad Content-Length")
        length = int(raw)
        if length > limit:
            raise HTTPError(413, f"body larger than {limit} bytes")
        data = self._read(stream, length) if length else b""
        if len(data) != length:
            raise HTTPError(400, "body shorter than its Content-Length")
        self.consumed = True
        return data

    @staticmethod
    def _read(stream, n: int) -> bytes:
        """`n` bytes at most; a client that stops sending before them gets 408, not a 500 (the socket's
        timeout raises TimeoutError out of the read)."""
        try:
            return stream.read(n)
        except (TimeoutError, ConnectionError) as exc:
            raise HTTPError(408, "the body did not arrive in time (fewer bytes than its Content-Length)") from exc

    def form(self, limit: int = 16384) -> dict:
        return {k: v[-1] for k, v in parse_qs(self.body(limit).decode("utf-8", "replace")).items()}


class Response:
    def __init__(self, body: bytes | str = b"", status: int = 200, content_type: str = "text/html; charset=utf-8",
                 headers: list | None = None):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.headers = [("Content-Type", content_type), *(headers or [])]

    @classmethod
    def json(cls, obj, status: int = 200) -> "Response":
        try:
            text = json.dumps(obj, indent=1, default=str, allow_nan=False)
        except ValueError:  # a non-finite number (a bad row already stored): null, never invalid JSON
            text = json.dumps(_finite(obj), indent=1, default=str, allow_nan=False)
        return cls(text, status, "application/json")

    @classmethod
    def html(cls, text: str, status: int = 200) -> "Response":
        return cls(text, status)

    @classmethod
    def redirect(cls, location: str, headers: list | None = None) -> "Response":
        return cls(b"", 303, "text/plain", [("Location", location), *(headers or [])])

    def set_cookie(self, name: str, value: str, max_age: int | None = None, secure: bool = False,
                   same_site: str = "Strict") -> "Response":
        parts = [f"{name}={value}", "Path=/", "HttpOnly", f"SameSite={same_site}"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure:
            parts.append("Secure")
        self.headers.append(("Set-Cookie", "; ".join(parts)))
        return self

    def wsgi(self, start_response):
        headers = self.headers + [("Content-Length", str(len(self.body))), ("X-Content-Type-Options", "nosniff"),
                                  ("Referrer-Policy", "same-origin"), ("Cache-Control", "no-store")]
        if self.headers[0][1].startswith("text/html"):
            headers.append(("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; "
                                                       "script-src 'unsafe-inline'; img-src 'self' data:; "
                                                       "frame-ancestors 'none'; form-action 'self'"))
            headers.append(("X-Frame-Options", "DENY"))
        start_response(f"{self.status} {STATUS.get(self.status, 'Status')}", headers)
        return [self.body]
