"""Hash value validation, shared by the API, the importers and the pipeline. Django-free."""

from __future__ import annotations

import re

# Length in hex digits of each algorithm's value (PDQ: 256 bits; pHash: 64 bits).
HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "phash": 16}
_HEX_RE = re.compile(r"^[0-9a-f]+$")


class InvalidHash(ValueError):
    pass


def normalise_hash(algorithm: str, value: str) -> tuple[str, str]:
    """(algorithm, lower-case hex) or InvalidHash with a message naming what is wrong."""
    algorithm = algorithm.strip().lower()
    if algorithm not in HEX_LENGTH:
        raise InvalidHash(f"unknown algorithm {algorithm[:20]!r}; use one of {', '.join(HEX_LENGTH)}")
    value = value.strip().lower()
    expected = HEX_LENGTH[algorithm]
    if len(value) != expected or not _HEX_RE.match(value):
        raise InvalidHash(f"{algorithm} values are {expected} hexadecimal digits")
    return algorithm, value
