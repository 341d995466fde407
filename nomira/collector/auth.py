"""Who may ingest and who may look.

Ingest: a tenant's API key (its tenant is forced onto every event), or the legacy
shared NOMIRA_INGEST_TOKEN, or nothing at all only while the collector is bound to
localhost and has neither. Dashboard: open on localhost without a password; otherwise
a login with NOMIRA_DASHBOARD_PASSWORD (sees every tenant) or a tenant API key (sees
only that tenant). Sessions are HMAC-signed cookies; secrets compare in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from dataclasses import dataclass

from nomira import store
from nomira.collector.http import HTTPError, Request

SESSION_TTL = 12 * 3600


@dataclass(frozen=True)
class Viewer:
    admin: bool
    tenant: str | None  # None with admin: every tenant


@dataclass
class Config:
    host: str = "127.0.0.1"
    ingest_token: str | None = None
    dashboard_password: str | None = None
    max_ingest_bytes: int = 16 << 20  # a 5,000-event spool batch is ~3.5 MB
    max_import_bytes: int = 50 << 20

    @classmethod
    def from_env(cls, host: str, env=os.environ) -> "Config":
        return cls(host=host, ingest_token=env.get("NOMIRA_INGEST_TOKEN") or None,
                   dashboard_password=env.get("NOMIRA_DASHBOARD_PASSWORD") or None)

    @property
    def local_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def bearer(req: Request) -> str | None:
    value = req.header("Authorization")
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return req.header("X-Nomira-Token") or None


def ingest_tenant(req: Request, db, config: Config) -> tuple[bool, str | None]:
    """(authorised, tenant to force or None); raises 401 for a missing or bad key."""
    token = bearer(req)
    if token:
        tenant = store.tenant_for_key(db, token)
        if tenant is not None:
            return True, tenant
        if config.ingest_token and hmac.compare_digest(token.encode(), config.ingest_token.encode()):
            return True, None
        raise HTTPError(401, "unknown or revoked API key")
    if config.local_only and not config.ingest_token and not store.has_api_keys(db):
        return True, None
    raise HTTPError(401, "missing API key (Authorization: Bearer <key>)")


def _secret(db) -> bytes:
    return store.setting(db, "session_secret", lambda: secrets.token_hex(32)).encode()


def sign(db, payload: str) -> str:
    mac = hmac.new(_secret(db), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def unsign(db, value: str) -> str | None:
    payload, _, mac = value.rpartition(".")
    good = hmac.new(_secret(db), payload.encode(), hashlib.sha256).hexdigest()
    return payload if payload and hmac.compare_digest(mac, good) else None


def session_cookie(db, viewer: Viewer) -> str:
    role = "admin" if viewer.admin else "tenant"
    return sign(db, f"{role}:{(viewer.tenant or '').encode().hex()}:{int(time.time()) + SESSION_TTL}")


def viewer_for(req: Request, db, config: Config) -> Viewer | None:
    """The dashboard viewer of this request, or None when a login is needed."""
    raw = req.cookies.get("nomira_session")
    if raw:
        payload = unsign(db, raw)
        if payload:
            role, tenant_hex, expires = payload.split(":")
            if int(expires) > time.time():
                return Viewer(role == "admin", bytes.fromhex(tenant_hex).decode() or None)
    token = bearer(req)
    if token:
        tenant = store.tenant_for_key(db, token)
        if tenant is not None:
            return Viewer(False, tenant)
    if config.local_only and not config.dashboard_password:
        return Viewer(True, None)
    return None


def login(db, config: Config, secret: str) -> Viewer | None:
    if config.dashboard_password and hmac.compare_digest(secret.encode(), config.dashboard_password.encode()):
        return Viewer(True, None)
    tenant = store.tenant_for_key(db, secret) if secret else None
    return Viewer(False, tenant) if tenant is not None else None


def csrf_token(db, req: Request) -> str:
    """Bound to the session cookie (or the client for cookie-less local use)."""
    basis = req.cookies.get("nomira_session") or "local"
    return hmac.new(_secret(db), b"csrf:" + basis.encode(), hashlib.sha256).hexdigest()


def check_csrf(db, req: Request, supplied: str | None) -> None:
    if not supplied or not hmac.compare_digest(supplied, csrf_token(db, req)):
        raise HTTPError(403, "missing or invalid CSRF token")
