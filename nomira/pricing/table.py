"""The bundled, dated price table and version-aware model matching.

Matching is exact after normalising vendor spellings (provider prefixes, Bedrock
and Vertex ids, dots for dashes, a trailing release date). It never falls back to
a prefix: `claude-opus-4-7` is not `claude-opus-4`, and `-fast` is not the base model.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from nomira.ledger.events import TOKEN_TYPES
from nomira.pricing.stamp import BUNDLED

_DATE = re.compile(r"-(?:20\d{6}|20\d{2}-\d{2}-\d{2})$")
# Bedrock cross-region inference profiles: `us.anthropic.claude-...-v1:0`. `global.` is the global rate.
_REGION = re.compile(r"^(?P<r>us|eu|apac|au|jp|ca|us-gov|global)\.(?P<rest>[a-z0-9-]+\..+)$")
_DOTTED_ID = re.compile(r"^[a-z0-9_-]+\.[a-z]")
_BEDROCK_VERSION = re.compile(r"-v(\d+)(?::\d+)?$")
# For a bare model name, the vendors' own API entries in the LiteLLM table (not resellers): the same model
# name under its vendor's prefix is that vendor's published rate, not a guess. Vertex resells, so last.
FIRST_PARTY = ("openai/", "anthropic/", "gemini/", "deepseek/", "xai/", "mistral/", "moonshot/", "zai/",
               "dashscope/", "minimax/", "vertex_ai/")
# Vendor namespaces as OpenRouter / OpenCode / models.dev spell them -> LiteLLM's first-party prefix.
VENDOR_ALIASES = {"google": "gemini/", "z-ai": "zai/", "zai-org": "zai/", "moonshotai": "moonshot/",
                  "x-ai": "xai/", "qwen": "dashscope/", "mistralai": "mistral/", "deepseek-ai": "deepseek/"}


@dataclass(frozen=True)
class Rates:
    """USD per million tokens; None where the table has no explicit rate."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None

    @classmethod
    def from_dict(cls, d: dict, base: "Rates | None" = None) -> "Rates":
        if base is not None:
            d = {"input": base.input, "output": base.output, **d}
        return cls(**{k: d.get(k) for k in TOKEN_TYPES})


@dataclass(frozen=True)
class ModelPrice:
    key: str
    provider: str
    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()
    service_tiers: dict = field(default_factory=dict)  # batch / priority / flex -> Rates
    multipliers: dict = field(default_factory=dict)  # fast, us -> float
    verified: bool = True
    source: str = "bundled"
    as_of: str = ""
    unpriced: tuple[str, ...] = ()  # what the matched entry does not price (a Bedrock region without its entry)

    @property
    def rate_source(self) -> str:
        return f"{self.source}:{self.as_of}" if self.as_of else self.source


def model_price_from_dict(key: str, d: dict, source: str | None = None) -> ModelPrice:
    base = Rates.from_dict(d)
    tiers = tuple((int(t["above_tokens"]), Rates.from_dict(t, base)) for t in d.get("tiers", ()))
    service = {name: Rates.from_dict(d[name], base) for name in ("batch", "priority", "flex") if name in d}
    return ModelPrice(key=key, provider=d.get("provider", "other"), base=base, tiers=tiers,
                      service_tiers=service, multipliers=dict(d.get("multipliers", {})),
                      verified=bool(d.get("verified", False)), source=source or d.get("source", "bundled"),
                      as_of=d.get("as_of", ""))


def _bundled_bytes() -> bytes:
    return BUNDLED.read_bytes()


class LazyModels(Mapping):
    """The bundled table's entries, each parsed and turned into a ModelPrice only when a report asks
    for that model: thousands of models are bundled, a report uses a handful."""

    def __init__(self, raw: dict[str, dict | str], source: str, as_of: str):
        self._raw, self._source, self._as_of = raw, source, as_of  # value: entry, or its JSON text
        self._built: dict[str, ModelPrice] = {}

    def __getitem__(self, key: str) -> ModelPrice:
        try:
            return self._built[key]
        except KeyError:
            d = self._raw[key]
            d = json.loads(d) if isinstance(d, str) else d
            d = dict(d, as_of=d.get("as_of", self._as_of), verified=d.get("verified", True))
            price = self._built[key] = model_price_from_dict(key, d, source=self._source)
            return price

    def raw(self, key: str) -> dict:
        d = self._raw[key]
        return json.loads(d) if isinstance(d, str) else d

    def __contains__(self, key) -> bool:
        return key in self._raw

    def __iter__(self):
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _split_table(text: str) -> tuple[dict, dict[str, dict | str]]:
    """(header, models) without parsing every model: tools/update_prices.py writes one
    `"key":{...}` line per model after a one-line header. Any other layout is parsed whole."""
    head, sep, body = text.partition("\n")
    if sep and head.endswith(',"models":{') and body.endswith("\n}}\n"):
        models: dict[str, dict | str] = {}
        for line in body[:-4].split(",\n"):
            cut = line.find('":{')
            key = line[1:cut]
            if cut < 0 or "\\" in key:
                break
            models[key] = line[cut + 2:]
        else:
            return json.loads(head + "}}"), models
    doc = json.loads(text)
    return doc, doc["models"]


@lru_cache(maxsize=1)
def load_bundled() -> "PriceTable":
    head, models = _split_table(_bundled_bytes().decode("utf-8"))
    generated = head.get("generated", "")
    return PriceTable(LazyModels(models, "bundled", generated), generated=generated, feed_source=head.get("source", ""))


def normal(name: str) -> str:
    """One spelling for dots vs dashes and Vertex's `@`: `gpt-5.1-codex` ~ `gpt-5-1-codex`."""
    return name.replace(".", "-").replace("@", "-")


@lru_cache(maxsize=4096)
def canonical_model(model: str) -> tuple[str, str]:
    """(canonical name, lineage) of a logged model name: lowercase, without `provider/` prefixes or a
    Bedrock region, `anthropic.` prefix and `-v1:0` suffix; the lineage also drops the release date.
    `us.anthropic.claude-sonnet-4-5-20250929-v1:0` -> (`claude-sonnet-4-5-20250929`, `claude-sonnet-4-5`)."""
    bare = model.strip().lower().split("/")[-1]
    r = _REGION.match(bare)
    if r:
        bare = r.group("rest")
    if bare.startswith("anthropic."):
        bare = _BEDROCK_VERSION.sub("", bare[len("anthropic."):])
    return bare, _DATE.sub("", bare)


def candidate_keys(model: str) -> list[tuple[str, str]]:
    """(spelling, what it leaves unpriced) to try, most specific first: the name as logged, then without
    each `provider/` prefix, without a trailing release date, a Bedrock id with its version spelled the
    other way (`-v1:0`, `-v1`, none: LiteLLM keys some one way, some the other), then without its region."""
    low = model.strip().lower()
    names = [model.strip(), low]
    parts = low.split("/")
    names += ["/".join(parts[i:]) for i in range(1, len(parts))]
    out: list[tuple[str, str]] = []
    for n in names:
        out.append((n, ""))
        undated = _DATE.sub("", normal(n))
        if undated != normal(n):
            out.append((undated, ""))
    bare = parts[-1]
    r = _REGION.match(bare)
    if r or bare.startswith("anthropic."):  # the same Bedrock id with its version spelled otherwise
        v = _BEDROCK_VERSION.search(bare)  # (the same version only: Claude 2's -v2 is never Claude 1's -v1)
        stem, n = (bare[:v.start()], v.group(1)) if v else (bare, "1")
        out += [(x, "") for x in (f"{stem}-v{n}:0", f"{stem}-v{n}", stem) if x != bare]
    if r:  # no entry for the regional id: the global entry, and the region flagged (never its rate silently)
        flag = "" if r.group("r") == "global" else f"bedrock_region={r.group('r')}"
        rest = r.group("rest")
        out.append((rest, flag))
        if rest.startswith("anthropic."):
            plain = _BEDROCK_VERSION.sub("", rest[len("anthropic."):])
            out += [(plain, flag), (_DATE.sub("", plain), flag)]
    elif bare.startswith("anthropic."):
        plain = _BEDROCK_VERSION.sub("", bare[len("anthropic."):])
        out += [(plain, ""), (_DATE.sub("", plain), "")]
    if not r and not bare.startswith("anthropic."):
        vendor = VENDOR_ALIASES.get(parts[-2], parts[-2] + "/") if len(parts) > 1 else None
        prefixes = [vendor] + [p for p in FIRST_PARTY if p != vendor] if vendor in FIRST_PARTY else FIRST_PARTY
        out += [(p + n, "") for p in prefixes for n in (bare, _DATE.sub("", normal(bare)))]
    seen, ordered = set(), []
    for c in out:
        if c[0] and c[0] not in seen:
            seen.add(c[0])
            ordered.append(c)
    return ordered


class PriceTable:
    """Rates by model. With `above` layers (overrides, fresh feeds), each layer is tried in
    order for every spelling of the model before the next: an override always wins."""

    def __init__(self, models: Mapping[str, ModelPrice], generated: str = "",
                 above: list[Mapping[str, ModelPrice]] | None = None, feed_source: str = ""):
        self.models = models
        self.generated = generated
        self.feed_source = feed_source
        self.layers = [*(above or []), models]
        self._normal: dict[int, dict[str, str]] = {}
        self._memo: dict[str, ModelPrice | None] = {}

    def _normal_index(self, i: int) -> dict[str, str]:
        """normal(key) -> key for layer i, built on the first lookup that needs it (the first key in sorted
        order: deterministic). One pass, no sort, and no regex for a key without a dot: the bundled
        table's 3,600 keys took ~16 M instructions, paid by any history with a model spelled otherwise."""
        index = self._normal.get(i)
        if index is None:
            index = self._normal[i] = {}
            get, dotted = index.get, _DOTTED_ID.match
            for key in self.layers[i]:
                if "." in key and dotted(key):  # Bedrock ids (`deepseek.v3.2`) match only as written
                    continue
                spelled = key.lower().replace(".", "-").replace("@", "-")  # normal(key.lower())
                first = get(spelled)
                if first is None or key < first:
                    index[spelled] = key
        return index

    def _find(self, i: int, name: str) -> ModelPrice | None:
        layer = self.layers[i]
        if name in layer:
            return layer[name]
        key = self._normal_index(i).get(normal(name))
        return None if key is None else layer[key]

    def lookup(self, model: str) -> ModelPrice | None:
        if model in self._memo:
            return self._memo[model]
        found = None
        keys = candidate_keys(model)
        for i in range(len(self.layers)):
            if not self.layers[i]:  # (no override file: every spelling of a model tried once, not twice)
                continue
            for name, flag in keys:
                found = self._find(i, name)
                if found is not None:
                    if flag:
                        found = replace(found, unpriced=(*found.unpriced, flag))
                    break
            if found is not None:
                break
        self._memo[model] = found
        return found

    def all_keys(self) -> list[str]:
        return sorted({k for layer in self.layers for k in layer})
