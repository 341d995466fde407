"""Labels of the CI run a capture happens in, from the CI's own environment variables.

GitHub Actions (docs.github.com "Variables reference": GITHUB_ACTIONS, GITHUB_REPOSITORY,
GITHUB_REF_NAME, GITHUB_WORKFLOW, GITHUB_JOB, GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT, GITHUB_ACTOR) and
GitLab CI (docs.gitlab.com "Predefined CI/CD variables": GITLAB_CI, CI_PROJECT_NAME,
CI_COMMIT_REF_NAME, CI_JOB_NAME, CI_PIPELINE_ID, CI_JOB_ID, GITLAB_USER_LOGIN). Labels only: never
a workspace path (GITHUB_WORKSPACE, CI_PROJECT_DIR) or a URL.
"""
from __future__ import annotations

from typing import Mapping


def labels(env: Mapping[str, str]) -> dict[str, str]:
    """{ci, repo, branch, job, run_id, actor}: the keys the environment gives, nothing else."""
    if env.get("GITHUB_ACTIONS") == "true":
        repo = env.get("GITHUB_REPOSITORY", "")
        run = env.get("GITHUB_RUN_ID", "")
        out = {"ci": "github", "repo": repo.rsplit("/", 1)[-1], "branch": env.get("GITHUB_REF_NAME", ""),
               "job": ":".join(x for x in (env.get("GITHUB_WORKFLOW", ""), env.get("GITHUB_JOB", "")) if x),
               "run_id": f"{run}-{env.get('GITHUB_RUN_ATTEMPT', '1')}" if run else "",
               "actor": env.get("GITHUB_ACTOR", "")}
    elif env.get("GITLAB_CI") == "true":
        out = {"ci": "gitlab", "repo": env.get("CI_PROJECT_NAME", ""), "branch": env.get("CI_COMMIT_REF_NAME", ""),
               "job": env.get("CI_JOB_NAME", ""),
               "run_id": "-".join(x for x in (env.get("CI_PIPELINE_ID", ""), env.get("CI_JOB_ID", "")) if x),
               "actor": env.get("GITLAB_USER_LOGIN", "")}
    else:
        return {}
    return {k: v for k, v in out.items() if v}


def tags(ci: dict[str, str]) -> dict[str, str]:
    """The CI labels the wire schema has a tag for: repo -> project, job -> workflow, env = ci.
    (The branch and run id have no tag in the schema today: the run id goes into each event's
    request id, the branch is reported by `capture --json` only.)"""
    out = {}
    if ci.get("repo"):
        out["project"] = ci["repo"]
    if ci.get("job"):
        out["workflow"] = ci["job"][:64]
    if ci:
        out["env"] = "ci"
    return out
