"""A few keys of an agent's TOML config (Kimi's default model, gptme's workspace), read without
importing tomllib: its import (~17 M instructions, the regexes it compiles) was the largest fixed
cost of one source in a home holding every agent's logs.

`loads` reads the plain subset these configs are written in: `[table.headers]`, `key = "text"`,
integers, `true`/`false`, one-line arrays of those, comments. Anything else (nested or multi-line
arrays, inline tables, escapes, literal or multi-line strings, floats, dates, dotted keys, a key or
a table given twice, `\\r`, a control character) goes to tomllib itself, so the result, and every
error, is always tomllib's.
"""
from __future__ import annotations

import re

_KEY = r'(?:[A-Za-z0-9_-]+|"[^"\\\x00-\x1f\x7f]*")'  # bare, or basic string without escapes
_HEADER = re.compile(rf"[ \t]*\[[ \t]*({_KEY}(?:[ \t]*\.[ \t]*{_KEY})*)[ \t]*\][ \t]*(?:#.*)?")
_VALUE = r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*"|true|false|0|-?[1-9][0-9]{0,17}'  # text, flag, integer
_PAIR = re.compile(rf"[ \t]*({_KEY})[ \t]*=[ \t]*({_VALUE}|\[[ \t]*(?:(?:{_VALUE})[ \t]*,[ \t]*)*(?:{_VALUE})?[ \t]*\])"
                   rf"[ \t]*(?:#.*)?")
_ITEM = re.compile(_VALUE)
_PART = re.compile(_KEY)
_BLANK = re.compile(r"[ \t]*(?:#.*)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # (tab and newline aside)


def loads(text: str) -> dict:
    """tomllib.loads(text), the plain subset read here."""
    doc = _plain(text)
    if doc is None:
        import tomllib
        return tomllib.loads(text)
    return doc


def load(fh) -> dict:
    """tomllib.load(fh) of a binary file."""
    return loads(fh.read().decode())


def _value(v: str):
    return v[1:-1] if v[0] == '"' else v == "true" if v[0] in "tf" else int(v)


def _name(key: str) -> str:
    return key[1:-1] if key[:1] == '"' else key


def _plain(text: str) -> dict | None:
    """The document, or None when it is not in the plain subset (then tomllib decides)."""
    if text.__class__ is not str or _CONTROL.search(text):
        return None
    doc: dict = {}
    table, declared = doc, set()
    for line in text.split("\n"):
        m = _PAIR.fullmatch(line)
        if m:
            key = _name(m.group(1))
            if key in table:
                return None
            value = m.group(2)
            table[key] = [_value(v) for v in _ITEM.findall(value)] if value[0] == "[" else _value(value)
            continue
        m = _HEADER.fullmatch(line)
        if m:
            path = tuple(_name(k) for k in _PART.findall(m.group(1)))
            if path in declared:
                return None
            declared.add(path)
            table = doc
            for key in path:
                table = table.setdefault(key, {})
                if table.__class__ is not dict:
                    return None
            continue
        if not _BLANK.fullmatch(line):
            return None
    return doc
