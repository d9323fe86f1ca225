"""Reads for matching: which earlier content or hash-list entry a hash is already known as.

Exact lookups only; near-duplicate search (PDQ/pHash distance) goes through the in-memory index
of the pipeline and is stored as `Match` rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TypedDict

from reports.models import Content, KnownHash

CONTENT_HASH_FIELDS = ("sha256", "md5", "sha1", "pdq", "phash")


class MatchInfo(TypedDict):
    kind: str
    distance: int
    content: str | None  # SHA-256 of the matched content
    hash_list: str | None


def exact_matches(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[MatchInfo]]:
    """For each (algorithm, lower-case hex value): every content and active list entry with that
    exact value. Two queries per algorithm present, whatever the number of pairs."""
    by_algorithm: dict[str, set[str]] = defaultdict(set)
    for algorithm, value in pairs:
        by_algorithm[algorithm].add(value)
    found: dict[tuple[str, str], list[MatchInfo]] = defaultdict(list)
    for algorithm, values in by_algorithm.items():
        if algorithm not in CONTENT_HASH_FIELDS or not values:
            continue
        for value, sha256 in Content.objects.filter(**{f"{algorithm}__in": values}).values_list(algorithm, "sha256"):
            found[(algorithm, value)].append({"kind": algorithm, "distance": 0, "content": sha256, "hash_list": None})
        entries = KnownHash.objects.filter(
            algorithm=algorithm, value__in=values, hash_list__active=True, quarantined=False
        ).values_list("value", "hash_list__name")
        for value, list_name in entries:
            found[(algorithm, value)].append(
                {"kind": algorithm, "distance": 0, "content": None, "hash_list": list_name}
            )
    return found
