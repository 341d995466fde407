"""Write docs/USER-GUIDE.md: every command in cli.COMMANDS, run on the demo history, real output.

    python tools/gen_guide.py           # regenerate docs/USER-GUIDE.md
    python tools/gen_guide.py --check   # exit 1 (with a diff) when the file differs from a fresh run

Each command runs as its COMMANDS example reads, unless RUNS below says otherwise (an example that
names a network service, a file the demo lacks or a session id of someone else's history). A command
that needs a network service or runs until stopped is shown with its --help only; so is any command
whose run outlasts demo_env.TIMEOUT. Inputs are pinned by tools/demo_env.py, so a re-run gives the
same bytes: CI checks it (tests/test_docs.py).
"""
from __future__ import annotations

import json
import re
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_env import COLUMNS, DEMO_NOW, ROOT, DemoEnv, write_or_check  # noqa: E402

OUT = ROOT / "docs" / "USER-GUIDE.md"
MAX_LINES = 45
STATUSLINE_PAYLOAD = ROOT / "tests" / "fixtures" / "statusline" / "payload.json"

# command -> invocations on the demo history; None: --help only, with the reason.
RUNS = {
    "report": [["nomira"], ["nomira", "report", "--by-project"]],
    "limits": [["nomira", "limits"]],  # the example's --fetch asks the agents' own endpoints
    "statusline": "statusline",  # built below: Claude Code's payload names a demo transcript
    "doctor": [["nomira", "doctor"]],  # the example's --remote needs a collector
    "forensics": [["nomira", "forensics"]],  # the example's session id is not in the demo history
    "ship": [["nomira", "ship", "--db", "laptop.db", "--developer", "ana"]],  # a local store, not --remote
    "tenant": [["nomira", "tenant", "create", "acme", "--db", "team.db"],
               ["nomira", "tenant", "list", "--db", "team.db"]],
    "reconcile": [["nomira", "reconcile", "--db", "team.db"]],  # no bill in the demo: the report says so
    "serve": None,
    "cursor": None,
    "hooks": [["nomira", "hooks", "status"]],  # install edits the agents' config (and names timed backups)
}
# Read-only over the demo history: these run alongside each other. Every other command may read or
# write state (stores, events.json, the ship ledger, limits.json) and runs in COMMANDS order.
PURE = {"report", "daily", "monthly", "session", "blocks", "forensics", "optimize", "prices"}
WHY_HELP = {"serve": "it runs until stopped; see DEPLOY.md",
            "cursor": "it needs a Cursor team admin key and Cursor's Admin API"}
NETWORK_HINTS = ("--remote", "--fetch", "--watch", "http://", "https://", "postgresql://", "fetch")
SECRET = re.compile(r"\b(nmr_)[A-Za-z0-9_-]{8,}")  # API keys are random: masked


def invocations(name: str, example: str, env: DemoEnv):
    """[(argv, stdin)] for `name`, or a reason to show only --help."""
    plan = RUNS.get(name, "example")
    if plan is None:
        return WHY_HELP.get(name, "it needs a network service")
    if plan == "statusline":
        payload = json.loads(STATUSLINE_PAYLOAD.read_text())
        payload["transcript_path"] = str(latest_transcript(env))
        del payload["cost"]  # Claude's own figure for another session: the line would show both
        return [(["nomira", "statusline"], json.dumps(payload))]
    if plan != "example":
        return [(argv, None) for argv in plan]
    words = shlex.split(example)
    if any(h in w for w in words for h in NETWORK_HINTS):
        return "it needs a network service"
    if words[0] != "nomira" or any(w in ("&&", "|", "<", ">") or "$" in w for w in words):
        return "its example needs input the demo history does not have"
    return [(words, None)]


def latest_transcript(env: DemoEnv) -> Path:
    """The demo's most recent main-session transcript: the one a status line would be drawn for."""
    def last_stamp(path: Path) -> str:
        return json.loads(path.read_text().splitlines()[-1]).get("timestamp", "")
    files = [f for f in (env.demo / "claude" / "projects").glob("*/*.jsonl")]
    return max(files, key=lambda f: (last_stamp(f), f.name))


def mask(text: str) -> str:
    return SECRET.sub(r"\1… (a new random key on each run)", text)


def block(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES] + [f"… ({len(lines) - MAX_LINES} more lines)"]
    return "```\n" + "\n".join(lines).replace("```", "` ` `") + "\n```\n"


def shown(argv: list[str], stdin: str | None) -> str:
    return "$ " + " ".join(shlex.quote(w) for w in argv) + (" < payload.json" if stdin else "")


def section(name: str, module_help: str, example: str, env: DemoEnv, helped: str) -> str:
    parts = [f"## nomira {name}\n", f"{module_help[0].upper()}{module_help[1:]}.\n",
             f"Example from `nomira {name} --help`: `{example}`\n"]
    plan = invocations(name, example, env)
    if isinstance(plan, str):
        parts.append(f"Not run here: {plan}. Its options:\n")
    else:
        for i, (argv, stdin) in enumerate(plan):
            # commands running alongside each other keep separate scan caches (one SQLite writer each)
            own = {"XDG_CACHE_HOME": str(env.home / f".cache-{name}-{i}")} if name in PURE else None
            r = env.run(argv, stdin, own)
            if r.timed_out:
                parts.append(f"`{' '.join(argv)}` did not finish within the generator's time limit.\n")
                continue
            text = shown(argv, stdin) + "\n" + mask(r.stdout)
            if r.stderr:
                text += mask(r.stderr)
            if r.status:
                text += f"(exit {r.status})\n"
            parts.append(block(text))
        parts.append("Options:\n")
    parts.append(block(f"$ nomira {name} --help\n" + helped))
    return "\n".join(parts)


def render() -> str:
    from nomira.cli import COMMANDS
    with DemoEnv() as env:
        helps = env.helps()
        head = f"""# User guide

Every Nomira command, with the output it gives on the demo history (`nomira --demo`). This file is
generated by `python tools/gen_guide.py` from the commands themselves, so it cannot drift from the
product: CI regenerates it and fails on any difference. Do not edit it by hand.

The runs use the demo history as it is on {DEMO_NOW[:10]} at {DEMO_NOW[11:16]} UTC (`NOMIRA_DEMO_NOW`
pins the demo's end), `TZ=UTC`, `COLUMNS={COLUMNS}`, `NO_COLOR=1`, and an empty home folder whose
agent folders are the demo's, so the examples read it as they would read your own logs. Money in the
demo is *API-equivalent value*: the agents ran on subscriptions (see `--regime`).

Other documents: [README](../README.md) · [Deployment](DEPLOY.md) · [Privacy](PRIVACY.md) ·
[Security](SECURITY.md) · [Pricing rules](PRICING.md) · [Sources](SOURCES.md) ·
[Operations](OPERATIONS.md) · [Reconciliation](RECONCILE.md) · [Integrations](INTEGRATIONS.md) ·
[Architecture](ARCHITECTURE.md) · [Performance](PERFORMANCE.md)

## Start

```
$ pip install -e .
$ nomira --demo        # writes the sample history and reports on it
$ nomira               # your own logs, from the agents' default folders
```

## Commands

| command | what it does |
|---|---|
""" + "".join(f"| [`{n}`](#nomira-{n}) | {h} |\n" for n, (_m, h, _e) in COMMANDS.items()) + f"""
{block("$ nomira --help" + chr(10) + helps[""])}"""
        with ThreadPoolExecutor(4) as pool:
            def one(name):
                _m, help_text, example = COMMANDS[name]
                return section(name, help_text, example, env, helps[name])
            chained = [n for n in COMMANDS if n not in PURE]
            later = pool.submit(lambda: [one(n) for n in chained])
            pure = [n for n in COMMANDS if n in PURE]
            done = dict(zip(pure, pool.map(one, pure)))
            done.update(zip(chained, later.result()))
        body = [done[name] for name in COMMANDS]
    return head + "\n" + "\n".join(body)


GENERATED_WITH = (3, 11)  # argparse lays out --help differently in other Python versions (CI and Pages use 3.11)
HELP_BLOCK = re.compile(r"```\n\$ nomira[^\n]*--help\n.*?```\n", re.S)


def main(argv: list[str]) -> int:
    check, text = "--check" in argv, render()
    if check and sys.version_info[:2] != GENERATED_WITH and OUT.exists() \
            and HELP_BLOCK.sub("", OUT.read_text()) == HELP_BLOCK.sub("", text):
        here, made = (".".join(map(str, v)) for v in (sys.version_info[:2], GENERATED_WITH))
        print(f"{OUT.relative_to(ROOT)} is up to date (--help blocks not compared: Python {here}, made with {made})")
        return 0
    return 1 if write_or_check(OUT, text, check, "tools/gen_guide.py") and check else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
