"""A small validator for the subset of JSON Schema 2020-12 that docs/schemas/ uses (stdlib only).
An unknown keyword raises: a constraint is never silently ignored."""
from __future__ import annotations

import json
import re
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs"}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def load(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


def _is(value, t: str) -> bool:
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[t])


def errors(value, schema: dict, root: dict, path: str = "$") -> list[str]:
    out: list[str] = []
    for key, rule in schema.items():
        if key in ANNOTATIONS:
            continue
        if key == "$ref":
            if rule.startswith("#/"):
                target = root
                for part in rule[2:].split("/"):
                    target = target[part]
                out += errors(value, target, root, path)
            else:
                doc = load(rule)
                out += errors(value, doc, doc, path)
        elif key == "type":
            types = rule if isinstance(rule, list) else [rule]
            if not any(_is(value, t) for t in types):
                out.append(f"{path}: {type(value).__name__} is not {rule}")
        elif key == "const":
            if value != rule or type(value) is not type(rule):
                out.append(f"{path}: {value!r} is not {rule!r}")
        elif key == "enum":
            if value not in rule:
                out.append(f"{path}: {value!r} not in {rule}")
        elif key == "properties":
            if isinstance(value, dict):
                for name, sub in rule.items():
                    if name in value:
                        out += errors(value[name], sub, root, f"{path}.{name}")
        elif key == "required":
            if isinstance(value, dict):
                out += [f"{path}: missing {name}" for name in rule if name not in value]
        elif key == "additionalProperties":
            if isinstance(value, dict):
                extra = [k for k in value if k not in schema.get("properties", {})]
                if rule is False:
                    out += [f"{path}: unexpected key {k}" for k in extra]
                elif isinstance(rule, dict):
                    for k in extra:
                        out += errors(value[k], rule, root, f"{path}.{k}")
        elif key == "items":
            if isinstance(value, list):
                for i, item in enumerate(value):
                    out += errors(item, rule, root, f"{path}[{i}]")
        elif key in ("minimum", "maximum"):
            if _is(value, "number") and (value < rule if key == "minimum" else value > rule):
                out.append(f"{path}: {value} is {'below' if key == 'minimum' else 'above'} {rule}")
        elif key in ("minLength", "maxLength"):
            if isinstance(value, str) and (len(value) < rule if key == "minLength" else len(value) > rule):
                out.append(f"{path}: length {len(value)} breaks {key} {rule}")
        elif key == "pattern":
            if isinstance(value, str) and not re.search(rule, value):
                out.append(f"{path}: {value!r} does not match {rule}")
        elif key == "allOf":
            for sub in rule:
                out += errors(value, sub, root, path)
        elif key == "anyOf":
            tried = [errors(value, sub, root, path) for sub in rule]
            if all(tried):
                out.append(f"{path}: matches none of anyOf ({'; '.join(t[0] for t in tried)})")
        else:
            raise ValueError(f"jsonschema_lite: keyword {key!r} is not supported")
    return out


def validate(value, name: str) -> None:
    schema = load(name)
    found = errors(value, schema, schema)
    assert not found, f"{name}: " + "; ".join(found[:10])
