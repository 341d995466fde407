"""Local agent logs: one module per agent, the shared scanning beside them.

Each agent module has `default_paths(env)`, `find_files(roots)`, `scan_file(path, start, state)`
and `events_from_files(per_file, stats)`; `registry` lists them and collects a history, `scan`
reads lines, `scancache` keeps per-file results between runs, `paths` finds the logs. This file
stays empty so a command that needs only `paths` (the statusline, a hook) loads nothing else.
"""
