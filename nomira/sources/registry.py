"""Local agent log sources. Each module has `default_paths(env)`, `find_files(roots)`,
`scan_file(path, start, state) -> (records, state, end_offset, stats)` and
`events_from_files(per_file, stats)`; a new agent is one module and one line here."""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from nomira.sources import partition
from nomira.ledger.events import UsageEvent
from nomira.sources.scan import Planned, Progress, ScanStats, events_of, iter_planned, pooled, run_jobs
from nomira.sources import project


class Modules(dict):
    """name -> source module, each imported when first asked for: a run that reads one agent's logs
    (`--source claude`) imports one parser, not sixty (about 40 ms of a cold start, and of every
    worker's copy of the parent). Values are module names until then; `get`, `items` and `values`
    import what they hand out, iteration over the names imports nothing."""

    def __getitem__(self, name: str):
        mod = dict.__getitem__(self, name)
        if type(mod) is str:
            mod = importlib.import_module(f"nomira.sources.{mod}")
            dict.__setitem__(self, name, mod)
        return mod

    def get(self, name, default=None):
        return self[name] if name in self else default

    def values(self):
        return [self[k] for k in self]

    def items(self):
        return [(k, self[k]) for k in self]


SOURCES = Modules({"claude": "claude_code", "codex": "codex", "opencode": "opencode"})
# Agents whose files are recognised by `claims(name, parent)` (checked before the generic rules below).
# qwen before gemini: Qwen's chats/archive/ folders look like Gemini sub-agent folders.
CLAIMING = Modules({k: k for k in ("qwen", "gemini", "amp", "copilot", "goose", "kimi", "droid", "pi", "cline", "crush")})
CLAIMING.update({k: k for k in ("openhands", "aider", "zed", "kilo", "mux", "gptme", "vibe", "openclaw")})  # issue 27 agents
CLAIMING.update({"omp": "oh_my_pi", "prime": "prime_agent", "hermes": "hermes", "lmstudio": "lmstudio",
                 "kimi_code": "kimi_code", "poolside": "poolside"})  # issue 27 agents
CLAIMING.update({k: k for k in ("qclaw", "kimi_work", "mimocode", "icodemate", "openclaude", "cowork", "traex",
                                "shelley", "zcode", "posit", "qoder")})
CLAIMING.update({k: k for k in ("vscode_copilot", "grok", "senpi")})
CLAIMING.update({k: k for k in ("augure_code", "augure_desktop", "evener", "workbuddy", "opencodereview",
                                "codebuddy")})  # s27d
CLAIMING.update({"fx": "fx", "cherry": "cherry_studio", "reasonix": "reasonix", "muse": "muse", "cherry_pi": "cherry_pi",
                 "commandcode": "commandcode", "trae_agent": "trae_agent"})  # issue 27, s27e
# Sources whose files are named like another's (an agent built on it) but in their own folders:
# checked first when explicit paths are classified.
CLAIM_FIRST = ("qclaw", "senpi")
CLAIM_FIRST += ("cherry_pi",)  # named like pi's files, in a CherryStudio folder
CLAIMING.update({k: k for k in ("unsloth", "jcode", "kimchi", "gajae", "antigravity_cli", "visualstudio_copilot",
                                "deepseek_harness", "aside")})  # issue 27, s27c
CLAIM_FIRST += ("kimchi", "gajae")  # issue 27, s27c
CLAIM_FIRST += ("omp", "prime")  # pi's files in .omp / .prime folders (else read as pi under --path)
SOURCES.update(CLAIMING)


class Collected:
    """A scanned history: stats and per-file states now, deduplicated events on demand.

    `fold()` reduces the events a bounded group at a time (in worker processes when the
    history was spilled and there are several cores) for reports that aggregate as they
    go; `events` holds them all, sorted, for the few that need the whole timeline.
    Duplicates are counted while deduplicating, so `stats` is complete once the events
    have been produced (reading it first produces them).
    """

    def __init__(self, pending: list, stats: ScanStats, states: dict[str, list[dict]],
                 held: dict | None = None, links: dict | None = None) -> None:
        self._pending = pending  # (source module, Partitions) not yet deduplicated
        self._stats = stats
        self.states = states
        self._events: list[UsageEvent] | None = None
        self._held = held or {}  # Partitions -> prefold.Held: files folded where they were read
        self._links = links or {}  # Partitions -> halves.Linked of its files (or None), made as they came
        self.stated: dict[str, dict[str, tuple]] = {}  # source -> path -> (size, mtime_ns) before it was read
        self.unstated = 0  # files read that no one stated before reading them (nothing may be keyed by them)

    def _tasks(self) -> list[tuple]:
        if self._pending is None:
            raise RuntimeError("the events of this history were already produced")
        self._settle(None)
        return [(mod, parts, group) for mod, parts in self._pending for group in parts.plan()]

    def _settle(self, unpack) -> list:
        """The folds of the files the workers folded that stand (`unpack(packed, project)` each); the
        other files, all of them without `unpack`, sent to their partitions."""
        standing = []
        for mod, parts in self._pending:
            held = self._held.pop(id(parts), None)
            if held is not None:
                for path, state, (packed, skipped) in held.settle(parts, everything=unpack is None):
                    standing.append(unpack(packed, mod.file_project(path, state)))  # (none without unpack)
                    for reason, n in skipped.items():
                        self._stats.skip(reason, n)
        return standing

    def _done(self) -> None:
        for _mod, parts in self._pending:
            parts.close()
        self._pending = None

    def batches(self) -> Iterator[list[UsageEvent]]:
        """Every event once, a group at a time (folds need no order; `events` sorts)."""
        if self._events is not None:
            yield self._events
            return
        tasks = self._tasks()
        for task in tasks:
            yield _dedup(task, self._stats)
        self._done()

    def fold(self, fn: Callable[[list[UsageEvent]], object], merge: Callable[[object, object], object],
             workers: int = 1, unpack: Callable | None = None):
        """merge(...merge(fn(group 1), fn(group 2))...) over the groups of events, in order. `unpack`:
        `fn` is the fold `collect(prefold=...)` had the workers make of whole files, and
        `unpack(packed, project)` makes a worker's packed fold of one file a partial with the
        history's project label: the folds that stand are merged after the groups, in path order."""
        if self._events is not None:
            return fn(self._events)
        standing = self._settle(unpack) if self._pending is not None else []
        result = self._fold_groups(fn, merge, workers)
        for partial in standing:
            result = partial if result is None else merge(result, partial)
        return result

    def in_two(self, fn: Callable[[list[UsageEvent]], object], workers: int) -> tuple | None:
        """(fn(the events of one half of the sessions), fn(the other half's)), the halves at once in two
        processes (`halves`), each fn's result marshal's values; None (nothing done) when a history is
        not split: one core, few calls, files folded where they were read, or records spilled."""
        from nomira.sources import halves
        pending = self._pending
        if (self._events is not None or pending is None or workers < 2 or self._held or not halves.usable()
                or any(parts.spill is not None for _mod, parts in pending)
                or sum(parts.records for _mod, parts in pending) < halves.MIN_RECORDS
                or not any(getattr(mod, "PREFOLD", False) for mod, _parts in pending)):
            return None
        tasks = []
        for mod, parts in pending:
            items = parts.read(None)
            linked = self._links.get(id(parts))
            if not getattr(mod, "PREFOLD", False):
                split = [0] * len(items)
            elif linked is not None and len(linked.units) == len(items):
                split = linked.sides()
            else:
                split = halves.sides(items, mod.partition_key, mod.file_session)
            tasks.append((mod, items, split))

        def side(s: int):
            stats = ScanStats()
            events = [e for mod, items, split in tasks
                      for e in events_of(mod, [it for it, k in zip(items, split) if k == s], stats)]
            return fn(events), stats.as_dict()
        (a, stats_a), (b, stats_b) = halves.both(side)
        self._stats.merge(ScanStats.from_dict(stats_a))
        self._stats.merge(ScanStats.from_dict(stats_b))
        self._done()
        return a, b

    def _fold_groups(self, fn, merge, workers: int):
        records = sum(parts.records for _mod, parts in self._pending)
        files = sum(len(parts.files) for _mod, parts in self._pending)
        # A partial carries up to a tally per session (file): with few calls per file, shipping
        # the partials back from workers costs more than folding in parallel saves; and a history
        # that fits one group in memory is folded here, in less time than forking workers takes.
        forking = workers > 1 and records >= FOLD_MIN_CALLS_PER_FILE * files and sys.platform != "win32" \
            and records > partition.BUDGET
        partials = self._fold_in_workers(fn, workers) if forking else map(fn, self.batches())
        result = None
        for partial in partials:
            result = partial if result is None else merge(result, partial)
        return result

    def _fold_in_workers(self, fn, workers: int) -> Iterator[object]:
        """fn of each group in forked workers (which inherit `fn` and the spill file), in order:
        consecutive groups in one worker task (`_bundles`), so sixty sources' small groups cost a
        few round trips, not sixty."""
        global _FOLDING
        tasks = self._tasks()
        bundles = _bundles([parts.weight(group) for _mod, parts, group in tasks], workers)
        if len(bundles) == 1:
            for task in tasks:
                yield fn(_dedup(task, self._stats))
        else:
            import multiprocessing
            _FOLDING = (tasks, bundles, fn)
            try:
                with multiprocessing.get_context("fork").Pool(min(workers, len(bundles))) as pool:
                    for done in pool.imap(_fold_task, range(len(bundles))):
                        for partial, stats in done:
                            self._stats.merge(ScanStats.from_dict(stats))
                            yield partial
            finally:
                _FOLDING = None
        self._done()

    @property
    def events(self) -> list[UsageEvent]:
        if self._events is None:
            events = [e for batch in self.batches() for e in batch]
            events.sort(key=_occurred_at)
            self._events = events
        return self._events

    @property
    def unreadable(self) -> list[str]:
        """Files that could not be read (known once scanned, before deduplication)."""
        return list(self._stats.unreadable)

    @property
    def stats(self) -> ScanStats:
        if self._pending is not None:
            self.events  # noqa: B018 - deduplicate, which counts the duplicates
        return self._stats


_FOLDING = None  # (tasks, bundles of task indexes, fn) for forked fold workers
FOLD_MIN_CALLS_PER_FILE = 16


def _dedup(task: tuple, stats: ScanStats) -> list[UsageEvent]:
    mod, parts, group = task
    return list(events_of(mod, parts.read(group), stats))


def _fold_task(i: int) -> list[tuple[object, dict]]:
    tasks, bundles, fn = _FOLDING
    out = []
    for j in bundles[i]:
        stats = ScanStats()
        out.append((fn(_dedup(tasks[j], stats)), stats.as_dict()))
    return out


def _bundles(weights: list[int], workers: int) -> list[list[int]]:
    """Consecutive task indexes in bundles of about a quarter of a worker's share of the records
    (four bundles a worker: the pool ends together); an empty task joins its neighbours."""
    target = max(sum(weights) // (workers * 4), 1)
    out: list[list[int]] = [[]]
    size = 0
    for i, w in enumerate(weights):
        if out[-1] and size >= target:
            out.append([])
            size = 0
        out[-1].append(i)
        size += w
    return out


def _occurred_at(e: UsageEvent):
    return e.occurred_at


def found_without_tokens(stats: ScanStats) -> list[dict]:
    """What was found but could not be priced (`no_token_data:<source>` skips), with what to use instead."""
    out = []
    for reason, n in sorted(stats.skipped.items()):
        if reason.startswith("no_token_data:"):
            mod = SOURCES.get(reason.split(":", 1)[1])
            out.append({"source": reason.split(":", 1)[1], "sessions": n,
                        "use_instead": getattr(mod, "NO_TOKEN_DATA", None)})
    return out


def _claimer(name: str, parent: str) -> str | None:
    """The source whose on-disk naming claims the file (sources built on another's format first)."""
    global _CLAIMS
    if _CLAIMS is None:  # (only explicit paths are classified: the claiming sources imported then)
        _CLAIMS = [(source, CLAIMING[source].claims) for source in dict.fromkeys((*CLAIM_FIRST, *CLAIMING))]
    for source, claims in _CLAIMS:
        if claims(name, parent):
            return source
    return None


_CLAIMS: list | None = None


def classify(files: Iterable[Path], claimed_by: dict[str, str | None] | None = None) -> dict[str, list[Path]]:
    """Split explicitly given files between sources by their on-disk naming. `claimed_by`: the
    claiming source (or None) by path, as the walk that found the files decided it."""
    out: dict[str, list[Path]] = {name: [] for name in SOURCES}
    claimed_by = claimed_by or {}
    for f in files:
        key = str(f)
        claimed = claimed_by[key] if key in claimed_by else _claimer(f.name, str(f.parent))
        if claimed is not None:
            out[claimed].append(f)
        elif f.name.startswith("rollout-"):
            out["codex"].append(f)
        elif f.suffix == ".jsonl":
            out["claude"].append(f)
        elif f.name.startswith("opencode") and ".db" in f.name or "storage" in f.parts and f.suffix == ".json":
            out["opencode"].append(f)
    return out


def _walk_explicit(explicit: list[Path], claimed_by: dict | None = None) -> list[Path]:
    """Every file under the given paths that some source reads, in one walk. `claimed_by` gets
    each kept file's claiming source (or None), so `classify` asks no source's claims() again."""
    from nomira.sources import paths
    claimed_by = {} if claimed_by is None else claimed_by

    def keep(name: str, parent: str) -> bool:
        claimed = _claimer(name, parent)
        if claimed is not None or name.endswith(".jsonl") or name.startswith("rollout-") and name.endswith(".jsonl.zst") \
                or SOURCES["opencode"]._is_opencode_file(name, parent):
            claimed_by[os.path.join(parent, name)] = claimed  # (the path os.scandir gives the file)
            return True
        return False
    files: list[Path] = []
    for p in explicit:
        files.extend(paths.files_under(p, keep))
    return sorted(set(files), key=str)


def discover(selected: Iterable[str], explicit: list[Path] | None, env: Mapping[str, str]) -> dict[str, list[Path]]:
    selected = list(selected)
    if explicit:
        missing = [p for p in explicit if not p.exists()]
        if missing:
            raise FileNotFoundError(f"no such file or directory: {missing[0]}")
        claimed_by: dict[str, str | None] = {}
        by_source = classify(_walk_explicit(explicit, claimed_by), claimed_by)
    else:
        by_source = {name: SOURCES[name].find_files(SOURCES[name].default_paths(env)) for name in selected}
    return {name: by_source.get(name, []) for name in selected}


def collect(selected: Iterable[str] = ("claude", "codex"), explicit: list[Path] | None = None,
            env: Mapping[str, str] = os.environ, cache=None, workers: int = 1,
            progress: bool = False, found: dict[str, list[Path]] | None = None,
            budget: int | None = None, known: dict | None = None, merge_worktrees: bool = False,
            prefold: Callable[[list[UsageEvent]], object] | None = None, fold_key: str | None = None,
            stat_later: bool = False, meanwhile: Callable[[], object] | None = None,
            pins: Mapping[str, str] | None = None) -> Collected:
    """Scan every file of the selected sources (through `cache` when given). `known`: (size,
    mtime_ns) by path for files already stated (`fingerprint`), so none is stated twice.

    Records wait for deduplication in `Partitions`: in memory up to `budget` records, on
    disk by dedup key beyond, so no step holds more than about `budget` calls. `prefold`: the
    fold the caller will ask `Collected.fold` for; when files are read in worker processes, each
    worker folds the whole files it reads of a source that allows it (`PREFOLD`), see `prefold`.
    `fold_key`: what `prefold`'s result depends on besides a file (prices, time window, code): the
    cache keeps each such fold under it, and a later run with the same key uses the folds of the
    files it reuses instead of their records. `stat_later`: the files of a source whose scan states
    each file as it opens it (`STATED_BY_SCAN`) and that has no cache entry are not stated first: the
    workers do it (`Collected.stated` then holds every file's (size, mtime_ns) before it was read).
    `meanwhile()`: the caller's work that can wait for the workers to start (the prices: 7-15 ms the
    parent would otherwise spend before any file is read, while it waits for the first results).
    `pins`: the project labels directories were shipped under (`project.keep_pins`).
    """
    stats = ScanStats()
    states: dict[str, list[dict]] = {}
    pending = []
    if found is None:
        found = discover(selected, explicit, env)
    # every source's files planned first, then read in one pool of workers when there are enough
    # bytes in all (a home holding many agents' logs, a few files each, uses every core as one large
    # Claude history does, with the workers and the marshal round trip of one source's scan)
    planned = {source: Planned(SOURCES[source], files, cache.load(source) if cache is not None else None, known,
                               stat_later)
               for source, files in found.items()}
    todo = sum(p.todo_bytes for p in planned.values())
    hook = file_fold = None
    if prefold is not None:  # (held files only ever come with a fold to make)
        from nomira.sources import prefold as prefolding
        file_fold = prefolding.hook(prefold)  # (one file's fold, in a worker or here)
    if file_fold is not None and cache is not None and fold_key is not None:
        for s, p in planned.items():
            if getattr(SOURCES[s], "PREFOLD", False) and p.bytes_per_file() >= prefolding.MIN_AVERAGE_BYTES:
                p.use_kept(cache.kept_folds(s, fold_key, p.reused) if p.reused else {}, fold_key, file_fold)
    if file_fold is not None and pooled([a for p in planned.values() for a in p.args], todo, workers):
        asked = [p.ask_prefold() for s, p in planned.items() if getattr(SOURCES[s], "PREFOLD", False)
                 and p.todo_bytes >= prefolding.MIN_AVERAGE_BYTES * len(p.jobs)]
        if any(asked):
            hook = file_fold
    results, pool = run_jobs([a for p in planned.values() for a in p.args],
                             [n for p in planned.values() for n in p.sizes], workers, hook)
    held, links = {}, {}
    try:
        if meanwhile is not None:
            meanwhile()
        for source, plan in planned.items():
            mod = SOURCES[source]
            writer = cache.writer(source) if cache is not None else None
            kept_states = states[source] = []
            parts = partition.Partitions(mod.partition_key, budget or partition.BUDGET)
            scanned = iter_planned(plan, results, Progress(f"scanning {source}") if progress else None, writer)
            if plan.prefold:
                keep = held[id(parts)] = prefolding.Held(mod, parts)
                for path, records, state, st, folded in scanned:
                    stats.merge(st)
                    kept_states.append(state)
                    keep.add(path, records, state, folded)
            else:
                linked = None
                if workers > 1 and getattr(mod, "PREFOLD", False):  # (for `Collected.in_two`)
                    from nomira.sources.halves import Linked
                    linked = links[id(parts)] = Linked(mod.partition_key, mod.file_session)
                for path, records, state, st in scanned:
                    stats.merge(st)
                    kept_states.append(state)
                    parts.add(path, records, state)
                    if linked is not None and records:  # (in the order of `parts.read(None)`'s items)
                        if parts.spill is None:
                            linked.add(path, records)
                        else:  # (spilled: never split; its dicts would only grow)
                            linked = links[id(parts)] = None
            if writer is not None:
                writer.close()
            pending.append((mod, parts))
    finally:
        if pool is not None:
            pool.terminate()
    project.assign((st for kept in states.values() for st in kept), merge_worktrees, pins)  # one label per cwd
    collected = Collected(pending, stats, states, held, links)
    collected.stated = {source: p.stated for source, p in planned.items()}
    collected.unstated = sum(p.unstated for p in planned.values())
    return collected


def fingerprint(found: dict[str, list[Path]]) -> list[tuple]:
    """(source, path, size, mtime_ns) of every input file: what a cached output depends on."""
    out = []
    for source, files in found.items():
        for f in files:
            try:
                st = os.stat(f)
            except OSError:
                continue
            out.append((source, str(f), st.st_size, st.st_mtime_ns))
    return out
