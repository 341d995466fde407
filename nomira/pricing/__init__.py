"""Cache-aware pricing: a dated per-model rate table and the cost of one event.

The names below are loaded when first asked for: `pricing.stamp` (what a cached report keys on)
is imported without the engine and the table."""

_LAZY = {"Cost": "engine", "price_event": "engine", "PriceTable": "table", "load_bundled": "table"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nomira.pricing' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"nomira.pricing.{module}"), name)
