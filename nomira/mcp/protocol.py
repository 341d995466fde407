"""MCP over JSON-RPC 2.0, transport-free: one message in, at most one message out.

Per the MCP specification (modelcontextprotocol.io/specification, revisions 2024-11-05 to
2025-11-25): `initialize` answers the client's protocolVersion when it is one we speak, else our
latest; capabilities `{"tools": {"listChanged": false}}`; `notifications/*` get no answer;
`tools/list` -> `{"tools": [...]}`; `tools/call` -> `{"content": [{"type": "text", ...}],
"structuredContent": {...}, "isError": bool}`. A failing tool is a result with isError (the model
sees it); an unknown tool is the protocol error -32602, an unknown method -32601.
"""
from __future__ import annotations

import json
from typing import Callable

from nomira import __version__

VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")  # newest first
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL = -32700, -32600, -32601, -32602, -32603


class ToolError(Exception):
    """A tool could not answer (bad arguments, no data): reported in the result, isError true."""


def _error(id_, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}


class Server:
    """`tools`: name -> (description, input JSON Schema, function(arguments) -> dict)."""

    def __init__(self, tools: dict[str, tuple[str, dict, Callable[[dict], dict]]]):
        self.tools = tools

    def handle_line(self, line: str | bytes) -> str | None:
        try:
            msg = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return json.dumps(_error(None, PARSE_ERROR, "Parse error"))
        out = self.handle(msg)
        return None if out is None else json.dumps(out, separators=(",", ":"))

    def handle(self, msg) -> dict | None:
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not isinstance(msg.get("method"), str):
            if isinstance(msg, dict) and "method" not in msg and ("result" in msg or "error" in msg):
                return None  # a response to a request we never sent: nothing to say
            return _error(msg.get("id") if isinstance(msg, dict) else None, INVALID_REQUEST, "Invalid Request")
        if "id" not in msg:
            return None  # a notification (notifications/initialized, cancelled, ...)
        id_, method = msg["id"], msg["method"]
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        if method == "initialize":
            asked = params.get("protocolVersion")
            return self._ok(id_, {"protocolVersion": asked if asked in VERSIONS else VERSIONS[0],
                                  "capabilities": {"tools": {"listChanged": False}},
                                  "serverInfo": {"name": "nomira", "title": "Nomira", "version": __version__},
                                  "instructions": "Read-only AI coding spend from local agent logs: usage by "
                                                  "period/project/model, top sessions, recommendations, limits."})
        if method == "ping":
            return self._ok(id_, {})
        if method == "tools/list":
            return self._ok(id_, {"tools": [
                {"name": name, "description": desc, "inputSchema": schema,
                 "annotations": {"readOnlyHint": True, "openWorldHint": False}}
                for name, (desc, schema, _fn) in self.tools.items()]})
        if method == "tools/call":
            name = params.get("name")
            if name not in self.tools:
                return _error(id_, INVALID_PARAMS, f"Unknown tool: {name}")
            args = params.get("arguments") or {}
            if not isinstance(args, dict):
                return _error(id_, INVALID_PARAMS, "arguments must be an object")
            try:
                data = self.tools[name][2](args)
            except ToolError as exc:
                return self._ok(id_, {"content": [{"type": "text", "text": str(exc)}], "isError": True})
            return self._ok(id_, {"content": [{"type": "text", "text": json.dumps(data)}],
                                  "structuredContent": data, "isError": False})
        return _error(id_, METHOD_NOT_FOUND, f"Method not found: {method}")

    @staticmethod
    def _ok(id_, result: dict) -> dict:
        return {"jsonrpc": "2.0", "id": id_, "result": result}
