"""SHA-1 and SHA-256 from Python's built-in modules: importing `hashlib` loads OpenSSL (3-6 ms),
more than a replayed report or a status line render spends on everything else it hashes."""
from __future__ import annotations


def sha1():
    """The sha1 constructor (the built-in module; hashlib's where there is none)."""
    try:
        from _sha1 import sha1 as built_in
    except ImportError:
        from hashlib import sha1 as built_in
    return built_in


def sha256(data: bytes = b""):
    """A sha256 of `data` (the built-in module; hashlib's where there is none)."""
    try:
        from _sha2 import sha256 as built_in  # Python 3.12+
    except ImportError:
        try:
            from _sha256 import sha256 as built_in
        except ImportError:
            from hashlib import sha256 as built_in
    return built_in(data)
