"""Aggregation and rendering of priced usage."""
