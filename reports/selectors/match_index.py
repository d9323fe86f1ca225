"""The near-duplicate index of one worker process, kept in step with the database.

Each process holds two `HammingIndex`es (PDQ, pHash) over every matched content, every active
hash-list entry and every matched partner-submitted hash. Before each use it catches up with
what other workers committed since: contents and submitted hashes by `match_seq`, hash-list
entries by id. Both orders are commit orders because matching and hash-list imports take the
same lock (`MATCH_LOCK_KEY`); so a new known hash reaches every worker on its next match.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from reports.lib.hamming_index import HammingIndex
from reports.models import Content, KnownHash, SubmittedHash

# Arbitrary constant: the PostgreSQL advisory lock held while matching and importing hash lists.
MATCH_LOCK_KEY = 0x4855_4D54  # "HUMT"

# Ids of three kinds of target share one index: the low two bits say which.
CONTENT, KNOWN, SUBMITTED = 0, 1, 2
_LOAD_CHUNK = 20_000


def encode(kind: int, pk: int) -> int:
    return pk * 4 + kind


def decode(code: int) -> tuple[int, int]:
    return code % 4, code // 4


def match_lock() -> None:
    """Take the matching lock for the rest of the transaction (PostgreSQL; SQLite has one writer)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [MATCH_LOCK_KEY])


def _hash_row(kind: int, pk: int, algorithm: str, value: str) -> tuple[int, int, str, int | None, str]:
    return (kind, pk, value if algorithm == "pdq" else "", None, value if algorithm == "phash" else "")


@dataclass
class _Marks:
    content_seq: int = 0
    known_id: int = 0
    submitted_seq: int = 0


class MatchIndex:
    def __init__(self) -> None:
        self.pdq = HammingIndex(bits=256, max_distance=max(settings.HOTLINE_PDQ_THRESHOLD, 1))
        self.phash = HammingIndex(bits=64, max_distance=max(settings.HOTLINE_PHASH_THRESHOLD, 1))
        self.marks = _Marks()
        self.lock = threading.Lock()
        self.warm = False  # has loaded everything committed before its first use

    def _load(self, rows: list[tuple[int, int, str, int | None, str]]) -> None:
        """Add (kind, pk, pdq, pdq quality, phash) rows in bulk; low-quality PDQ hashes are left out."""
        floor = settings.HOTLINE_PDQ_MIN_QUALITY
        self.pdq.add_hex_rows(
            (encode(kind, pk), pdq)
            for kind, pk, pdq, quality, _ in rows
            if pdq and (quality is None or quality >= floor)
        )
        self.phash.add_hex_rows((encode(kind, pk), phash) for kind, pk, _, _, phash in rows if phash)

    def catch_up(self) -> int:
        """Load what was committed since the last call, a chunk at a time; returns the rows read."""
        read = 0
        while True:
            contents = list(
                Content.objects.filter(match_seq__gt=self.marks.content_seq)
                .order_by("match_seq")
                .values_list("pk", "pdq", "pdq_quality", "phash", "match_seq")[:_LOAD_CHUNK]
            )
            if not contents:
                break
            self._load([(CONTENT, pk, pdq, quality, phash) for pk, pdq, quality, phash, _ in contents])
            self.marks.content_seq = contents[-1][4]
            read += len(contents)
            if len(contents) < _LOAD_CHUNK:
                break
        while True:
            known = list(
                KnownHash.objects.filter(pk__gt=self.marks.known_id, algorithm__in=("pdq", "phash"))
                .order_by("pk")
                .values_list("pk", "algorithm", "value")[:_LOAD_CHUNK]
            )
            if not known:
                break
            self._load([_hash_row(KNOWN, pk, algorithm, value) for pk, algorithm, value in known])
            self.marks.known_id = known[-1][0]
            read += len(known)
            if len(known) < _LOAD_CHUNK:
                break
        while True:
            submitted = list(
                SubmittedHash.objects.filter(match_seq__gt=self.marks.submitted_seq, algorithm__in=("pdq", "phash"))
                .order_by("match_seq")
                .values_list("pk", "algorithm", "value", "match_seq")[:_LOAD_CHUNK]
            )
            if not submitted:
                break
            self._load([_hash_row(SUBMITTED, pk, algorithm, value) for pk, algorithm, value, _ in submitted])
            self.marks.submitted_seq = submitted[-1][3]
            read += len(submitted)
            if len(submitted) < _LOAD_CHUNK:
                break
        self.warm = True
        return read

    def near_pdq(self, hexes: list[str]) -> dict[int, int]:
        """Smallest distance per indexed target to any of `hexes` (an image's dihedral set)."""
        found: dict[int, int] = {}
        for hex_value in hexes:
            for code, distance in self.pdq.query_hex(hex_value, settings.HOTLINE_PDQ_THRESHOLD):
                if distance < found.get(code, 257):
                    found[code] = distance
        return found

    def near_phash(self, hex_value: str) -> dict[int, int]:
        return dict(self.phash.query_hex(hex_value, settings.HOTLINE_PHASH_THRESHOLD))


_index: MatchIndex | None = None
_index_lock = threading.Lock()


def get_match_index() -> MatchIndex:
    """This process's index, loaded on first use, or at worker start with HOTLINE_WARM_MATCH_INDEX
    (see reports/tasks/matching.py), so that the first match does not wait for the load."""
    global _index
    with _index_lock:
        if _index is None:
            _index = MatchIndex()
        return _index


def reset_match_index() -> None:
    """Forget the in-memory index (tests; a process that must reload from scratch)."""
    global _index
    with _index_lock:
        _index = None
