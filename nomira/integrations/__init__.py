"""SDK adapters (architecture Mode B): a team's own application reports each call's usage.

Each adapter reads the provider's usage object from a response or stream it only observes,
maps it with nomira.sources.api_usage and records it through nomira.integrations.tracking.track (priced,
allowlisted, stored or spooled). Frameworks are optional: importing an adapter never imports
its framework; using it without the framework raises one clear ImportError.
"""
from __future__ import annotations

import importlib


def require(module: str, package: str | None = None):
    """The framework module, or an ImportError that says what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this Nomira integration needs the `{package or module}` package "
                          f"(pip install {package or module})") from exc


def record(provider: str, model, tokens, tags: dict, **ident) -> None:
    """Record one call; never raises (track counts and logs its own failures)."""
    from nomira.integrations.tracking import track
    track(provider, model or "unknown", tokens, **{**tags, **{k: v for k, v in ident.items() if v}})


def failed(what: str, exc: BaseException | None = None) -> None:
    """Count and log an adapter failure without disturbing the caller."""
    from nomira.integrations.tracking import error
    error(f"{what}{f': {type(exc).__name__}: {exc}' if exc is not None else ''}")


class Watch:
    """Observes a stream's items for usage and records one event when the stream ends
    (exhausted, closed or dropped), whatever the caller does with the items."""

    def __init__(self, on_item, on_end):
        self.on_item, self.on_end, self.done = on_item, on_end, False

    def item(self, item) -> bool:
        """False when the item is ours to hide (usage we asked for that the caller did not)."""
        try:
            return self.on_item(item) is not False
        except Exception as exc:  # noqa: BLE001
            failed("stream item not read", exc)
            return True

    def end(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.on_end()
        except Exception as exc:  # noqa: BLE001
            failed("stream usage not recorded", exc)

    def sync(self, iterator):
        try:
            for item in iterator:
                if self.item(item):
                    yield item
        finally:
            self.end()

    async def aio(self, iterator):
        try:
            async for item in iterator:
                if self.item(item):
                    yield item
        finally:
            self.end()


def watch_stream(stream, watch: Watch, is_async: bool) -> bool:
    """Route the SDK stream object's own iterator through `watch`; the caller keeps the very
    object the SDK returned (same type, same methods). False when the stream has no iterator
    to observe (an SDK version this adapter does not know)."""
    try:
        inner = stream._iterator  # openai and anthropic Stream / AsyncStream
    except AttributeError:
        return False
    stream._iterator = watch.aio(inner) if is_async else watch.sync(inner)
    return True


MARK = "_nomira_wrapped"


def wrap_method(create, before, after):
    """`create` with `before(kwargs)` ahead of the call and `after(result, kwargs, state, is_async)`
    once the result is there. Async SDK methods are often plain functions returning a coroutine
    (argument-checking decorators), so the result decides, not the signature."""
    import functools
    import inspect

    async def later(awaitable, kwargs, state):
        result = await awaitable
        after(result, kwargs, state, True)
        return result

    @functools.wraps(create)
    def wrapped(*args, **kwargs):
        state = before(kwargs)
        result = create(*args, **kwargs)
        if inspect.isawaitable(result):
            return later(result, kwargs, state)
        after(result, kwargs, state, False)
        return result
    setattr(wrapped, MARK, True)
    return wrapped
