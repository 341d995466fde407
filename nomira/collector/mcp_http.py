"""/mcp: the MCP server over Streamable HTTP (spec revision 2025-11-25, basic/transports), behind
the collector's auth, with read-only tools over the viewer's own tenant.

- POST one JSON-RPC message (no batches; removed from the protocol in 2025-06-18). The client must
  accept both `application/json` and `text/event-stream` (else 406); a request is answered with one
  `application/json` object (a server may choose it over an SSE stream); a notification or response
  gets 202 with no body.
- `Origin`, when sent, must be this collector's own origin or an --allowed-host (else 403 with a
  JSON-RPC error without id): a web page cannot drive a local collector through DNS rebinding.
- Sessions are stateless so that any collector process can serve them: the `MCP-Session-Id` given
  with the InitializeResult is a MAC over (viewer, protocol version, issue time). A request without
  one is 400; an id that is forged, expired or issued to another viewer is 404 (the client starts a
  new session). GET (no server-initiated stream) and DELETE (nothing to end) are 405.
- `MCP-Protocol-Version` must be one this server speaks (else 400); without it the session's is used.
"""
from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlsplit

from nomira.ledger import wire
from nomira.collector import auth, budget_card
from nomira.collector.http import HTTPError, Request, Response
from nomira.mcp.protocol import INVALID_REQUEST, PARSE_ERROR, VERSIONS, Server
from nomira.mcp.tools import team_usage_tool

MAX_BODY = 256 << 10
SESSION_TTL = 24 * 3600
HEADER = "Mcp-Session-Id"


def _rpc_error(status: int, code: int, message: str, headers=None) -> Response:
    """An HTTP error whose body is a JSON-RPC error response without id (as the transport allows)."""
    resp = Response.json({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}, status)
    resp.headers += headers or []
    return resp


def origin_ok(req: Request, config: auth.Config) -> bool:
    origin = req.header("Origin").strip()
    if not origin:
        return True  # not a browser: nothing a page could rebind
    u = urlsplit(origin)
    if u.scheme not in ("http", "https") or not u.hostname:
        return False  # includes "null" (sandboxed frames, file:)
    return u.netloc.lower() == req.header("Host").strip().lower() or u.hostname.lower() in config.allowed_hosts


def _who(viewer: auth.Viewer) -> str:
    return "admin" if viewer.admin else f"tenant:{viewer.tenant}"


def new_session(keys: auth.Keys, viewer: auth.Viewer, version: str, now: float) -> str:
    body = base64.urlsafe_b64encode(json.dumps([_who(viewer), version, int(now)]).encode()).decode().rstrip("=")
    return f"m1.{body}.{keys.mac(keys.session, 'mcp/m1.' + body)}"


def session_version(keys: auth.Keys, viewer: auth.Viewer, sid: str, now: float) -> str | None:
    """The protocol version of a live session of this viewer, else None."""
    parts = sid.split(".")
    if len(parts) != 3 or parts[0] != "m1" or not auth._same(parts[2], keys.mac(keys.session, "mcp/m1." + parts[1])):
        return None
    try:
        who, version, issued = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    if who != _who(viewer) or version not in VERSIONS or not 0 <= now - issued < SESSION_TTL:
        return None
    return version


def tools(app, viewer: auth.Viewer, ctx: dict) -> dict:
    """The viewer's tools: its tenant's team usage (the dashboard's rollups) and its budgets."""
    def budgets(args):
        statuses, error = app.budgets.current(app.db)
        return {"budgets": [s.as_dict() for s in budget_card.visible(statuses, ctx)],
                "error": error if viewer.admin else None}
    return {
        "team_usage": team_usage_tool(tenant=viewer.tenant, connection=lambda: app.db),
        "budgets": ("Budgets of this view (the collector's budgets.toml, counted over the store): spent, "
                    "amount, percent and thresholds crossed in the current window.",
                    {"type": "object", "properties": {}, "additionalProperties": False}, budgets)}


def handle(app, req: Request) -> Response:
    if not origin_ok(req, app.config):
        return _rpc_error(403, INVALID_REQUEST, "Origin not allowed")
    viewer = auth.viewer_for(req, app.db, app.keys, app.config)
    if viewer is None or (not viewer.admin and not viewer.tenant):
        raise HTTPError(401, "MCP needs a tenant API key (Authorization: Bearer <key>) or a dashboard session",
                        headers=[("WWW-Authenticate", "Bearer")])
    if req.method != "POST":  # no server-initiated SSE stream, and no session state to delete
        raise HTTPError(405, "POST JSON-RPC messages to this endpoint", headers=[("Allow", "POST")])
    accept = req.header("Accept").lower()
    if "application/json" not in accept or "text/event-stream" not in accept:
        return _rpc_error(406, INVALID_REQUEST, "Accept must list application/json and text/event-stream")
    if req.header("Content-Type").split(";")[0].strip().lower() != "application/json":
        return _rpc_error(415, INVALID_REQUEST, "Content-Type must be application/json")
    try:
        msg = wire.loads(req.body(MAX_BODY) or b"null")
    except (ValueError, RecursionError):
        return _rpc_error(400, PARSE_ERROR, "Parse error")
    if not isinstance(msg, dict):
        return _rpc_error(400, INVALID_REQUEST, "the body must be one JSON-RPC message (no batches)")
    now = time.time()
    asked = req.header("MCP-Protocol-Version").strip()
    if asked and asked not in VERSIONS:
        return _rpc_error(400, INVALID_REQUEST, f"unsupported MCP-Protocol-Version {asked[:40]!r}")
    initializing = msg.get("method") == "initialize"
    sid = req.header(HEADER).strip()
    if not initializing:
        if not sid:
            return _rpc_error(400, INVALID_REQUEST, f"missing {HEADER} header (initialize first)")
        if session_version(app.keys, viewer, sid, now) is None:
            return _rpc_error(404, INVALID_REQUEST, "unknown or expired session: initialize again")
    ctx = {"viewer": viewer, "tenant": viewer.tenant}
    reply = Server(tools(app, viewer, ctx)).handle(msg)
    if reply is None:
        return Response(b"", 202, "text/plain")  # a notification or a response: accepted
    resp = Response(json.dumps(reply, separators=(",", ":")), 200, "application/json")
    if initializing and "result" in reply:
        resp.headers.append((HEADER, new_session(app.keys, viewer, reply["result"]["protocolVersion"], now)))
    return resp
