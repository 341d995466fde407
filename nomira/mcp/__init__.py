"""Model Context Protocol server (read-only tools over Nomira's reports)."""
