"""Nomira: the trusted auditor of AI token spend. Usage only, never content."""
__version__ = "0.1.0"


def track(provider: str, model: str, usage, **tags):
    """Record one API call's usage (priced, usage-only) to the local store or, with
    NOMIRA_REMOTE set, to a collector through the durable spool. Never raises: returns the
    event recorded or None. See nomira.integrations.tracking (imported here, on first use only)."""
    from nomira.integrations.tracking import track as _track
    return _track(provider, model, usage, **tags)
