"""The collector's WSGI app: one route table, plain view functions, one error renderer.

Views compute a dict; HTML pages render it, and the same path ending in `.json`
(or /api/summary) returns it as JSON. The store is the only state: any number of
collector processes can serve the same database.
"""
from __future__ import annotations

import email.parser
import email.policy
import json
import re
import sys
import threading
import time
import traceback
from datetime import date
from urllib.parse import unquote

from nomira import rollups, store
from nomira.collector import auth, pages, reconcile_page
from nomira.collector.http import HTTPError, Request, Response
from nomira.exchange import parse_export
from nomira.reports.aggregate import REGIME_LABELS
from nomira.wire import SchemaError, assert_no_content

PLAN_USD = 200.0  # default subscription price per developer and month (Claude Max 20x), for "value vs plan"


class Metrics:
    """Per-process counters for /metrics (Prometheus scrapes each process)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"ingest_requests": 0, "ingest_events": 0, "ingest_deduped": 0, "ingest_rejected": 0,
                       "auth_failures": 0}

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.counts[k] += v


class App:
    def __init__(self, db_path, config: auth.Config):
        self.db_path, self.config = db_path, config
        self.local = threading.local()
        self.metrics = Metrics()
        store.open_db(db_path).close()  # migrate once, up front
        self.routes = [
            ("POST", r"/ingest", self.ingest), ("POST", r"/v1/usage/events", self.ingest),
            ("GET", r"/healthz", self.healthz), ("GET", r"/metrics", self.prometheus),
            ("GET", r"/api/summary", self.api_summary),
            ("GET", r"/login", self.login_form), ("POST", r"/login", self.login), ("POST", r"/logout", self.logout),
            ("GET", r"/import", self.import_form), ("POST", r"/import", self.import_upload),
            ("GET", r"/(?:index\.json)?", self.dashboard),
            ("GET", r"/project/(?P<name>[^/]+?)(?P<json>\.json)?", self.project),
            ("GET", r"/developer/(?P<name>[^/]+?)(?P<json>\.json)?", self.developer),
            ("GET", r"/compare/developers(?P<json>\.json)?", self.compare),
            ("GET", r"/reconcile(?P<ext>\.json|\.csv)?", lambda req, ext=None: reconcile_page.view(self, req, ext)),
        ]
        self.compiled = [(m, re.compile(f"^{p}$"), v) for m, p, v in self.routes]

    @property
    def db(self):
        db = getattr(self.local, "db", None)
        if db is None:
            db = self.local.db = store.open_db(self.db_path)
        return db

    def __call__(self, environ, start_response):
        req = Request(environ)
        try:
            resp = self.dispatch(req)
        except HTTPError as exc:
            resp = self.error(req, exc)
        except Exception:  # one place renders unexpected errors; details go to the log, not the client
            traceback.print_exc(file=sys.stderr)
            resp = self.error(req, HTTPError(500, "internal error"))
        return resp.wsgi(start_response)

    def dispatch(self, req: Request) -> Response:
        allowed = False
        for method, rx, view in self.compiled:
            m = rx.match(req.path)
            if m:
                if method == req.method:
                    return view(req, **{k: v for k, v in m.groupdict().items()})
                allowed = True
        raise HTTPError(405 if allowed else 404, "method not allowed" if allowed else "not found")

    def error(self, req: Request, exc: HTTPError) -> Response:
        body = {"status": "error", "error": exc.message, **({"field": exc.field} if exc.field else {})}
        wants_html = "text/html" in req.header("Accept") and not req.path.endswith(".json")
        if wants_html and exc.status == 401:
            return Response.redirect("/login")
        if wants_html:
            return Response.html(pages.layout("Error", pages.Markup(f"<h1>{exc.status}</h1><p>{pages.esc(exc.message)}"
                                                                    "</p>"), {}), exc.status)
        return Response.json(body, exc.status)

    # --- ingest ---

    def ingest(self, req: Request) -> Response:
        self.metrics.add(ingest_requests=1)
        try:
            _, tenant = auth.ingest_tenant(req, self.db, self.config)
        except HTTPError:
            self.metrics.add(auth_failures=1)
            raise
        try:
            doc = json.loads(req.body(self.config.max_ingest_bytes) or b"null")
        except ValueError:
            self.metrics.add(ingest_rejected=1)
            raise HTTPError(400, "body is not JSON", "body")
        events = doc.get("events") if isinstance(doc, dict) else doc
        if not isinstance(events, list):
            raise HTTPError(400, "expected {\"events\": [...]}", "events")
        for i, e in enumerate(events):
            try:
                assert_no_content(e)
            except SchemaError as exc:
                self.metrics.add(ingest_rejected=len(events))
                raise HTTPError(400, f"events[{i}].{exc}", f"events[{i}].{exc.field}")
            claimed = (e.get("tags") or {}).get("tenant")
            if tenant is not None and claimed not in (None, "", tenant):
                self.metrics.add(ingest_rejected=len(events))
                raise HTTPError(403, f"this key writes for tenant {tenant!r}, not {claimed!r}",
                                f"events[{i}].tags.tenant")
        accepted, deduped = store.ingest(self.db, events, tenant=tenant) if events else (0, 0)
        self.metrics.add(ingest_events=accepted, ingest_deduped=deduped)
        return Response.json({"status": "accepted", "accepted": accepted, "deduped": deduped})

    # --- operations ---

    def healthz(self, req: Request) -> Response:
        self.db.execute("SELECT 1").fetchone()
        return Response.json({"status": "ok"})

    def prometheus(self, req: Request) -> Response:
        s = rollups.ingest_stats(self.db)
        c = dict(self.metrics.counts)
        lag = None
        if s["last_occurred_at"]:
            from nomira.events import parse_timestamp
            lag = max(0.0, time.time() - parse_timestamp(s["last_occurred_at"]).timestamp())
        lines = []
        for name, kind, help_text, value in (
                ("nomira_ingest_requests_total", "counter", "Ingest requests (this process)", c["ingest_requests"]),
                ("nomira_ingest_events_total", "counter", "New events accepted (this process)", c["ingest_events"]),
                ("nomira_ingest_deduped_total", "counter", "Duplicate events (this process)", c["ingest_deduped"]),
                ("nomira_ingest_rejected_total", "counter", "Events rejected by the schema (this process)",
                 c["ingest_rejected"]),
                ("nomira_auth_failures_total", "counter", "Ingest requests with a bad key", c["auth_failures"]),
                ("nomira_raw_events", "gauge", "Raw events stored", s["raw_events"]),
                ("nomira_dedup_ratio", "gauge", "Share of raw events superseded as duplicates",
                 s["superseded"] / s["raw_events"] if s["raw_events"] else 0.0),
                ("nomira_ingest_lag_seconds", "gauge", "Seconds since the newest stored event occurred",
                 lag if lag is not None else float("nan"))):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return Response("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")

    # --- viewers, scope ---

    def ctx(self, req: Request) -> dict:
        viewer = auth.viewer_for(req, self.db, self.config)
        if viewer is None:
            raise HTTPError(401, "login required")
        period = req.query.get("period", "30d")
        if period not in rollups.PERIODS:
            raise HTTPError(400, f"period must be one of {', '.join(rollups.PERIODS)}", "period")
        tenant = viewer.tenant if not viewer.admin else (req.query.get("tenant") or None)
        return {"viewer": viewer, "period": period, "tenant": tenant, "since": rollups.since_day(period),
                "login_used": "nomira_session" in req.cookies, "reconcile": True}

    def summary(self, ctx: dict) -> dict:
        db, tenant, since = self.db, ctx["tenant"], ctx["since"]
        regimes = {r["name"]: r for r in rollups.by(db, "regime", tenant, since)}
        sub = regimes.get("subscription", {}).get("cost_usd", 0.0)
        api = regimes.get("api", {}).get("cost_usd", 0.0)
        total = rollups.totals(db, tenant, since)
        daily = rollups.fill_days(rollups.by(db, "day", tenant, since))
        developers = rollups.count_distinct(db, "developer", tenant, since)
        kpis = {"value_usd": total["cost_usd"], "api_cost_usd": api, "subscription_value_usd": sub,
                "cache_reuse": total["cache_reuse"], "developers": developers, "calls": total["calls"],
                "unpriced_calls": total["unpriced_calls"], "value_vs_plan": None, "plan_note": ""}
        if sub and daily:
            days = (date.fromisoformat(daily[-1]["name"]) - date.fromisoformat(daily[0]["name"])).days + 1
            span = max(days, rollups.PERIODS[ctx["period"]] or days)
            seats = len([d for d in rollups.by(db, "developer", tenant, since, regime="subscription")])
            plan = PLAN_USD * seats * span / 30
            kpis["value_vs_plan"] = sub / plan
            kpis["plan_note"] = f"vs ${PLAN_USD:.0f}/developer/month × {seats} × {span} days"
        label = REGIME_LABELS["subscription"] if sub >= api else "Cost"
        return {"title": f"Usage — {ctx['tenant'] or 'all tenants'}", "period": ctx["period"],
                "tenant": ctx["tenant"], "value_label": label, "kpis": kpis, "totals": total, "daily": daily,
                "projects": rollups.by(db, "project", tenant, since), "developers": rollups.by(db, "developer",
                                                                                              tenant, since),
                "models": rollups.by(db, "model", tenant, since)}

    def dashboard(self, req: Request) -> Response:
        ctx = self.ctx(req)
        d = dict(self.summary(ctx), reconcile=reconcile_page.card(self.db, ctx))
        return Response.json(d) if req.path.endswith(".json") else Response.html(pages.dashboard(d, ctx))

    def api_summary(self, req: Request) -> Response:
        return Response.json(self.summary(self.ctx(req)))

    def _detail(self, req: Request, kind: str, name: str, as_json) -> Response:
        ctx = self.ctx(req)
        name = unquote(name)
        db, tenant, since = self.db, ctx["tenant"], ctx["since"]
        other = "project" if kind == "developer" else "developer"
        total = rollups.totals(db, tenant, since, **{kind: name})
        if not total["calls"]:
            raise HTTPError(404, f"no usage for {kind} {name!r} in this view")
        d = {"kind": kind, "name": name, "period": ctx["period"], "tenant": tenant, "totals": total,
             "value_label": "Cost", "daily": rollups.fill_days(rollups.by(db, "day", tenant, since, **{kind: name})),
             "breakdown": rollups.by(db, other, tenant, since, **{kind: name}),
             "models": rollups.by(db, "model", tenant, since, **{kind: name})}
        return Response.json(d) if as_json else Response.html(pages.detail(d, ctx))

    def project(self, req: Request, name: str, json: str | None = None) -> Response:
        return self._detail(req, "project", name, json)

    def developer(self, req: Request, name: str, json: str | None = None) -> Response:
        return self._detail(req, "developer", name, json)

    def compare(self, req: Request, json: str | None = None) -> Response:
        ctx = self.ctx(req)
        rows = rollups.by(self.db, "developer", ctx["tenant"], ctx["since"])
        priced = [r for r in rows if r["cost_usd"] > 0]
        headline = None
        if len(priced) >= 2:
            top, low = priced[0], priced[-1]
            headline = (f"{top['name']} cost {top['cost_usd'] / low['cost_usd']:.1f}x {low['name']} "
                        f"({pages.money(top['cost_usd'])} vs {pages.money(low['cost_usd'])}); cache reuse "
                        f"{pages.pct(top['cache_reuse'])} vs {pages.pct(low['cache_reuse'])}")
        d = {"period": ctx["period"], "tenant": ctx["tenant"], "rows": rows, "headline": headline}
        return Response.json(d) if json else Response.html(pages.compare(d, ctx))

    # --- login and import ---

    def login_form(self, req: Request) -> Response:
        return Response.html(pages.login_page())

    def login(self, req: Request) -> Response:
        viewer = auth.login(self.db, self.config, req.form().get("secret", ""))
        if viewer is None:
            return Response.html(pages.login_page("Not a valid password or API key."), 401)
        return Response.redirect("/").set_cookie("nomira_session", auth.session_cookie(self.db, viewer),
                                                 auth.SESSION_TTL)

    def logout(self, req: Request) -> Response:
        return Response.redirect("/login").set_cookie("nomira_session", "", 0)

    def import_form(self, req: Request) -> Response:
        ctx = self.ctx(req)
        return Response.html(pages.import_page(auth.csrf_token(self.db, req), ctx))

    def import_upload(self, req: Request) -> Response:
        ctx = self.ctx(req)
        body = req.body(self.config.max_import_bytes)
        ctype = req.header("Content-Type")
        if ctype.startswith("multipart/form-data"):
            fields = _multipart(ctype, body)
            supplied, data = fields.get("csrf", b"").decode(), fields.get("file", b"")
        else:
            supplied, data = req.header("X-CSRF-Token"), body
        auth.check_csrf(self.db, req, supplied)
        try:
            events = parse_export(data)
        except SchemaError as exc:
            if "text/html" in req.header("Accept"):
                return Response.html(pages.import_page(auth.csrf_token(self.db, req), ctx,
                                                       error=f"Rejected: {exc}"), 400)
            raise HTTPError(400, f"rejected: {exc}", exc.field)
        tenant = ctx["viewer"].tenant if not ctx["viewer"].admin else ctx["tenant"]
        accepted, deduped = store.ingest(self.db, events, tenant=tenant) if events else (0, 0)
        if "text/html" in req.header("Accept"):
            return Response.html(pages.import_page(auth.csrf_token(self.db, req), ctx,
                                                   message=f"Imported {accepted} events ({deduped} already there)."))
        return Response.json({"status": "accepted", "accepted": accepted, "deduped": deduped})


def _multipart(ctype: str, body: bytes) -> dict[str, bytes]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            out[name] = part.get_payload(decode=True) or b""
    return out
