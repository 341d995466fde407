"""Who may ingest and who may look.

Ingest: a tenant's API key (its tenant is forced onto every event), or the legacy
shared NOMIRA_INGEST_TOKEN (a writer for every tenant), or nothing at all only while the
collector is bound to localhost and has neither. Dashboard: open on localhost without a
password; otherwise a login with NOMIRA_DASHBOARD_PASSWORD (sees every tenant) or a
tenant API key (sees only that tenant).

Sessions: the cookie is a random id plus an HMAC under a key derived for sessions only;
CSRF tokens use another derived key and another shape, so one can never stand for the
other. The id names a server-side row (role, tenant, credential fingerprint, expiry,
revocation); every request re-checks that the tenant key is still live or that the
password is unchanged. Reading a session is SELECTs only. Secrets compare in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from nomira.ledger import store
from nomira.collector.http import HTTPError, Request

SESSION_TTL = 12 * 3600
SESSION_COOKIE, PRELOGIN_COOKIE = "nomira_session", "nomira_prelogin"
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Viewer:
    admin: bool
    tenant: str | None  # None with admin: every tenant
    session: str | None = None  # the session id hash, when logged in by cookie


@dataclass
class Config:
    host: str = "127.0.0.1"
    ingest_token: str | None = None
    dashboard_password: str | None = None
    metrics_token: str | None = None
    allowed_hosts: tuple = ()
    behind_proxy: bool = False
    max_ingest_bytes: int = 16 << 20  # a 5,000-event spool batch is ~3.5 MB
    max_import_bytes: int = 50 << 20
    max_form_bytes: int = 16 << 10
    login_free_failures: int = 5  # per client address, then 429 with a doubling lockout
    login_max_lockout: int = 15 * 60
    db_pool: int = 16  # store connections per process (serve: --workers)

    @classmethod
    def from_env(cls, host: str, env=os.environ, allowed_hosts=(), behind_proxy: bool = False) -> "Config":
        names = [*allowed_hosts, *(env.get("NOMIRA_ALLOWED_HOSTS") or "").split(",")]
        return cls(host=host, ingest_token=env.get("NOMIRA_INGEST_TOKEN") or None,
                   dashboard_password=env.get("NOMIRA_DASHBOARD_PASSWORD") or None,
                   metrics_token=env.get("NOMIRA_METRICS_TOKEN") or None,
                   allowed_hosts=tuple(n.strip().lower() for n in names if n.strip()), behind_proxy=behind_proxy)

    @property
    def local_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


# --- the request's origin ---

def host_allowed(req: Request, config: Config) -> bool:
    """DNS rebinding: a page on evil.example that resolves to 127.0.0.1 still sends Host: evil.example."""
    if not config.local_only and not config.allowed_hosts:
        return True  # exposed without configured names: auth guards every page
    host = req.header("Host").strip().lower()
    if not host:
        return True  # HTTP/1.0 tools; every browser sends Host
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":")[0]
    return host in LOCAL_NAMES | {config.host.lower()} | set(config.allowed_hosts)


def is_https(req: Request, config: Config) -> bool:
    if req.environ.get("wsgi.url_scheme") == "https":
        return True
    return config.behind_proxy and req.header("X-Forwarded-Proto").split(",")[0].strip().lower() == "https"


def client_address(req: Request, config: Config) -> str:
    if config.behind_proxy:
        hops = [h.strip() for h in req.header("X-Forwarded-For").split(",") if h.strip()]
        if hops:
            return hops[-1]  # what the proxy itself saw; earlier entries are the client's claims
    return req.remote


# --- ingest ---

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


# --- keys: one secret in the store, one derived key per purpose ---

class Keys:
    def __init__(self, db):
        secret = store.setting_value(db, "dashboard_secret")
        if not secret:
            raise RuntimeError("store has no dashboard secret (migration 0007 not applied)")
        base = secret.encode()
        self.session = hmac.new(base, b"nomira/v1/session-cookie", hashlib.sha256).digest()
        self.csrf = hmac.new(base, b"nomira/v1/csrf-token", hashlib.sha256).digest()
        self.credential = hmac.new(base, b"nomira/v1/admin-password", hashlib.sha256).digest()

    @staticmethod
    def mac(key: bytes, message: str) -> str:
        return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    """Constant-time comparison that never raises on non-ASCII input."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def password_fingerprint(keys: Keys, config: Config) -> str | None:
    return keys.mac(keys.credential, config.dashboard_password) if config.dashboard_password else None


def new_session(db, keys: Keys, config: Config, viewer: Viewer, credential: str) -> str:
    """The cookie value for a fresh session row: `s1.<id>.<mac>`."""
    sid = secrets.token_urlsafe(32)
    now = int(time.time())
    store.create_session(db, _sid_hash(sid), "admin" if viewer.admin else "tenant", viewer.tenant, credential,
                         now, now + SESSION_TTL)
    return f"s1.{sid}.{keys.mac(keys.session, 's1.' + sid)}"


def session_viewer(req: Request, db, keys: Keys, config: Config) -> Viewer | None:
    """The viewer of a live session cookie; anything else (forged, malformed, expired,
    revoked, key revoked, password changed) is simply no session."""
    raw = req.cookies.get(SESSION_COOKIE, "")
    parts = raw.split(".")
    if len(parts) != 3 or parts[0] != "s1" or not parts[1] or not _same(parts[2], keys.mac(keys.session,
                                                                                            "s1." + parts[1])):
        return None
    sid_hash = _sid_hash(parts[1])
    row = store.get_session(db, sid_hash)
    if row is None:
        return None
    role, tenant, credential, expires = row
    if not isinstance(expires, int) or expires <= time.time():
        return None
    if role == "admin":
        current = password_fingerprint(keys, config)
        return Viewer(True, None, sid_hash) if current and _same(credential or "", current) else None
    if role == "tenant" and tenant and store.tenant_for_key_hash(db, credential or "") == tenant:
        return Viewer(False, tenant, sid_hash)
    return None


def viewer_for(req: Request, db, keys: Keys, config: Config) -> Viewer | None:
    """The dashboard viewer of this request, or None when a login is needed."""
    viewer = session_viewer(req, db, keys, config)
    if viewer is not None:
        return viewer
    token = bearer(req)
    if token:
        tenant = store.tenant_for_key(db, token)
        if tenant is not None:
            return Viewer(False, tenant)
    if config.local_only and not config.dashboard_password:
        return Viewer(True, None)
    return None


def login(db, keys: Keys, config: Config, secret: str) -> tuple[Viewer, str] | None:
    """(viewer, credential fingerprint) for a good password or live tenant key."""
    if config.dashboard_password and _same(secret, config.dashboard_password):
        return Viewer(True, None), password_fingerprint(keys, config)
    digest = store.hash_key(secret) if secret else ""
    tenant = store.tenant_for_key_hash(db, digest) if secret else None
    return (Viewer(False, tenant), digest) if tenant is not None else None


def logout(db, viewer: Viewer | None) -> None:
    if viewer is not None and viewer.session:
        store.revoke_session(db, viewer.session, int(time.time()))


# --- CSRF: a token bound to the session (or to a pre-login cookie), under its own key ---

def csrf_token(keys: Keys, basis: str) -> str:
    return keys.mac(keys.csrf, basis)


def csrf_basis(req: Request, viewer: Viewer | None) -> str:
    if viewer is not None and viewer.session:
        return "session:" + viewer.session
    if viewer is not None and not viewer.admin:
        return "tenant:" + (viewer.tenant or "")  # Bearer-key use: browsers never add that header cross-site
    return "local"


def check_csrf(keys: Keys, basis: str, supplied: str | None) -> None:
    if not supplied:
        raise HTTPError(403, "missing CSRF token")
    if not re.fullmatch(r"[0-9a-f]{64}", supplied):
        raise HTTPError(400, "malformed CSRF token", "csrf")
    if not _same(supplied, csrf_token(keys, basis)):
        raise HTTPError(403, "invalid CSRF token")


# --- login throttling, per client address ---

class LoginLimiter:
    """After `free` failures from one address, each further try waits a doubling delay (capped).

    Per process, bounded (the oldest addresses are forgotten first)."""

    def __init__(self, free: int, max_lockout: int, capacity: int = 10_000):
        self.free, self.max_lockout, self.capacity = free, max_lockout, capacity
        self.lock = threading.Lock()
        self.state: OrderedDict[str, list] = OrderedDict()  # address -> [failures, locked_until]

    def retry_after(self, address: str, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self.lock:
            s = self.state.get(address)
            return max(0, int(s[1] - now + 0.999)) if s else 0

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.lock:
            s = self.state.pop(address, None) or [0, 0.0]
            s[0] += 1
            if s[0] >= self.free:
                s[1] = now + min(self.max_lockout, 2 ** (s[0] - self.free))
            self.state[address] = s
            while len(self.state) > self.capacity:
                self.state.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self.lock:
            self.state.pop(address, None)

