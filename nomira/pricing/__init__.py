"""Cache-aware pricing: a dated per-model rate table and the cost of one event."""
from nomira.pricing.engine import Cost, price_event  # noqa: F401
from nomira.pricing.table import PriceTable, load_bundled  # noqa: F401
