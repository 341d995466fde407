"""Request, Response and HTTP errors for the WSGI app: small, stdlib only."""
from __future__ import annotations

import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

STATUS = {200: "OK", 302: "Found", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
          404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"}


class HTTPError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


class Request:
    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/") or "/"
        self.query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        cookie = SimpleCookie()
        try:
            cookie.load(environ.get("HTTP_COOKIE", ""))
        except Exception:  # a malformed cookie header is treated as no cookie
            pass
        self.cookies = {k: m.value for k, m in cookie.items()}
        self.remote = environ.get("REMOTE_ADDR", "")
        self.state: dict = {}

    def header(self, name: str, default: str = "") -> str:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() == "content-type":
            key = "CONTENT_TYPE"
        return self.environ.get(key, default)

    def body(self, limit: int) -> bytes:
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HTTPError(400, "bad Content-Length")
        if length > limit:
            raise HTTPError(413, f"body larger than {limit} bytes")
        return self.environ["wsgi.input"].read(length) if length else b""

    def form(self, limit: int = 65536) -> dict:
        return {k: v[-1] for k, v in parse_qs(self.body(limit).decode("utf-8", "replace")).items()}


class Response:
    def __init__(self, body: bytes | str = b"", status: int = 200, content_type: str = "text/html; charset=utf-8",
                 headers: list | None = None):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.headers = [("Content-Type", content_type), *(headers or [])]

    @classmethod
    def json(cls, obj, status: int = 200) -> "Response":
        return cls(json.dumps(obj, indent=1, default=str), status, "application/json")

    @classmethod
    def html(cls, text: str, status: int = 200) -> "Response":
        return cls(text, status)

    @classmethod
    def redirect(cls, location: str, headers: list | None = None) -> "Response":
        return cls(b"", 303, "text/plain", [("Location", location), *(headers or [])])

    def set_cookie(self, name: str, value: str, max_age: int | None = None) -> "Response":
        parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        self.headers.append(("Set-Cookie", "; ".join(parts)))
        return self

    def wsgi(self, start_response):
        headers = self.headers + [("Content-Length", str(len(self.body))), ("X-Content-Type-Options", "nosniff"),
                                  ("Referrer-Policy", "same-origin")]
        if self.headers[0][1].startswith("text/html"):
            headers.append(("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; "
                                                       "script-src 'unsafe-inline'; img-src 'self' data:"))
        start_response(f"{self.status} {STATUS.get(self.status, 'Status')}", headers)
        return [self.body]
