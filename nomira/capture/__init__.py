"""Headless capture: usage of one non-interactive agent run, read from the agent's own output."""
