"""Scale-out: every worker process holds its own near-duplicate index. A hash-list entry imported after
the workers loaded theirs is found by each of them on its next match (docs/deploy.md)."""

from __future__ import annotations

import pytest

from reports.models import Match
from reports.selectors.match_index import CONTENT, KNOWN, MatchIndex, decode
from reports.services import matching
from reports.services.matching import content_match, hashlist_create, hashlist_import
from reports.tests.analyst_helpers import make_content

pytestmark = pytest.mark.django_db


def known_hits(index: MatchIndex, pdq: str) -> set[int]:
    return {pk for kind, pk in map(decode, index.near_pdq([pdq])) if kind == KNOWN}


def test_a_hash_imported_after_two_workers_loaded_reaches_both(monkeypatch) -> None:
    make_content(40)  # something already matched and indexed when the workers start
    worker_a, worker_b = MatchIndex(), MatchIndex()
    worker_a.catch_up()
    worker_b.catch_up()

    first, second = make_content(41, matched=False), make_content(42, matched=False)
    hash_list = hashlist_create(name="partner list")
    imported = hashlist_import(hash_list=hash_list, entries=[("pdq", first.pdq, "csam"), ("pdq", second.pdq, "csam")])
    assert imported.added == 2

    # Neither worker has read the new entries yet: their indexes are as loaded.
    assert known_hits(worker_a, first.pdq) == set()
    assert known_hits(worker_b, second.pdq) == set()

    # Each worker's next match catches up first (under the matching lock), and finds its entry.
    monkeypatch.setattr(matching, "get_match_index", lambda: worker_a)
    content_match(content_id=first.pk)
    monkeypatch.setattr(matching, "get_match_index", lambda: worker_b)
    content_match(content_id=second.pk)

    for content in (first, second):
        hits = Match.objects.filter(content=content, known_hash__hash_list=hash_list, kind="pdq")
        assert hits.count() == 1, f"content {content.pk} did not match the imported list"
    # And both indexes now hold both entries, whichever worker matched what.
    assert len(known_hits(worker_a, second.pdq)) == 1
    assert len(known_hits(worker_b, first.pdq)) == 1
    # Content that worker B matched reaches worker A the same way, as a near-duplicate target.
    worker_a.catch_up()
    assert (CONTENT, second.pk) in set(map(decode, worker_a.near_pdq([second.pdq])))
