"""Invoice reconciliation: bills (console exports, cost APIs) against event-derived estimates."""
