"""Capture: usage as it happens, from channels other than the log files.

- Headless runs (`nomira capture`): one non-interactive agent run, read from the agent's own output.
- Live channels: agent hooks (Claude Code, Codex notify), the OpenCode plugin and event stream, and
  OTLP telemetry. Each channel turns what the agent reports into the same wire events the log
  sources produce, with the same ids, so a call seen by several channels dedupes to one event.
"""
