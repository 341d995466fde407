"""`nomira sources` (alias `clients`): every agent Nomira knows, where it looked, what it found.

One row per source: the folders it read (or, when none exists, where it would look), files,
sessions and calls, bad input counted; then the agents found on disk whose data cannot be
read (encrypted or without token counts), with the reason and what to use instead.
"""
from __future__ import annotations

import sys

from nomira.cli import Run


def add_arguments(name, p) -> None:
    p.set_defaults(func=cmd_sources)


def _where(key: str, mod, env) -> list[str]:
    """The folders a source reads: the existing ones, else a description of where it looks."""
    from nomira.cli import DEFAULT_PLACES
    roots = mod.default_paths(env)
    if roots:
        return [str(r) for r in roots]
    places = getattr(mod, "PLACES", None) or DEFAULT_PLACES.get(key) or PLACES.get(key)
    if places is None:  # the module docstring's first line: "<Agent>: <location>."
        first = (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else ""
        places = first.split(": ", 1)[1].rstrip(".") if ": " in first else "its default folders"
    return [places.replace("`", "")]


PLACES = {"crush": "projects.json in $CRUSH_GLOBAL_DATA, $XDG_DATA_HOME/crush or ~/.local/share/crush: each "
                   "project's crush.db"}


def survey(run: Run) -> dict:
    """What each source found (scanned through the cache), and the opaque agents present."""
    from nomira.reports.text import SOURCE_NAMES
    from nomira.sources import opaque
    from nomira.sources.registry import SOURCES, collect
    rows = []
    for key in run.selected:
        mod = SOURCES[key]
        files = run.found.get(key, [])
        calls, sessions, names = 0, set(), set()
        c = collect((key,), env=run.env, cache=run.cache, found={key: files})
        for batch in c.batches():
            for e in batch:
                calls += 1
                sessions.add(e.session_id)
                names.add(e.source)
        st = c.stats
        problems = [f"{n} {reason}" for reason, n in sorted(st.skipped.items())
                    if reason.startswith(("unreadable", "no_token_data", "not_a_"))]
        if st.malformed:
            problems.append(f"{st.malformed} malformed")
        problems += [f"unreadable: {p}" for p in st.unreadable]
        note = getattr(mod, "NO_TOKEN_DATA", None) if any(r.startswith("no_token_data") for r in st.skipped) \
            else None
        rows.append({"source": key, "name": SOURCE_NAMES.get(mod.NAME, key), "looked_in": _where(key, mod, run.env),
                     "found": bool(files), "files": len(files), "sessions": len(sessions), "calls": calls,
                     "event_sources": sorted(names), "problems": problems, "use_instead": note})
    return {"sources": rows, "unreadable_sources": opaque.seen(run.env), "known_unreadable": opaque.known(run.env),
            "unreadable_folders": list(run.unreadable)}


def cmd_sources(args) -> int:
    run = Run(args)
    doc = survey(run)
    if args.json:
        from nomira.reports.render import render_json
        sys.stdout.write(render_json(doc))
        return 0
    sys.stdout.write(render(doc, run.style))
    return 0


def render(doc: dict, style) -> str:
    from nomira.reports.render import table
    found = [r for r in doc["sources"] if r["found"]]
    rows = [[r["name"], "found" if r["found"] else "-", str(r["files"]), str(r["sessions"]), str(r["calls"]),
             ", ".join(r["looked_in"]) + ("; " + "; ".join(r["problems"]) if r["problems"] else "")]
            for r in sorted(doc["sources"], key=lambda r: (not r["found"], r["name"].lower()))]
    out = [style.bold(f"Nomira sources: {len(found)} of {len(doc['sources'])} found"), "",
           table(["Source", "Found", "Files", "Sessions", "Calls", "Where (and problems)"], rows, "llrrrl",
                 style=style)]
    for r in found:
        if r["use_instead"]:
            out.append(style.warn(f"! {r['name']}: {r['use_instead']}"))
    if doc["unreadable_sources"]:
        out += ["", style.bold("Seen but cannot be read:")]
        for o in doc["unreadable_sources"]:
            out.append(f"  {o['name']} ({', '.join(o['where'])}): {o['reason']}; use {o['use_instead']}")
    if doc["unreadable_folders"]:
        out += ["", style.warn(f"! folders that could not be listed: {', '.join(doc['unreadable_folders'])}")]
    return "\n".join(out) + "\n"
