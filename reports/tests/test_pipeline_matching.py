"""Matching: near-duplicate variants find their originals, distinct pictures never link, partner
hashes and hash lists are matched like fetched content, runaway hashes are quarantined, and every
worker's in-memory index sees what the others matched.

Pictures are drawn in code and served by a `SyntheticSite` on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import count

import pytest
from django.conf import settings as django_settings
from django.test import Client

from reports.lib.imaging import digest_image, hex_distance
from reports.lib.synthetic import VARIANTS, SyntheticSite
from reports.models import Case, Content, KnownHash, Match, Report, SubmittedHash
from reports.models.choices import CaseQueue, PartnerKind, ReportStatus
from reports.selectors import match_index
from reports.selectors.match_index import CONTENT, KNOWN, MatchIndex
from reports.selectors.match_index import encode as encode_target
from reports.services.matching import content_match, hashlist_create, hashlist_import, report_hashes_match
from reports.services.partners import PartnerReportInput, partner_create, partner_reports_submit
from reports.services.triage import case_for_url
from reports.tests.factories import make_partner
from reports.tests.pipeline_helpers import (
    cached_routes,
    case_of,
    fetch,
    fetch_and_match,
    only_content,
    original_bytes,
    url_row,
    variant_of,
)

SEEDS = range(1, 9)
_serial = count(1)


@pytest.fixture(scope="module")
def site() -> Iterator[SyntheticSite]:
    with SyntheticSite(routes=cached_routes()) as running:
        yield running


@pytest.fixture
def allowed(pipeline, site: SyntheticSite):
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    return pipeline


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_for(data: bytes) -> Content:
    return Content.objects.get(sha256=sha256(data))


def linked(a: Content, b: Content) -> bool:
    return (
        Match.objects.filter(content=a, matched_content=b).exists()
        or Match.objects.filter(content=b, matched_content=a).exists()
    )


# --- Near duplicates ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_variant_links_to_its_original_and_distinct_pictures_never_link(allowed, site: SyntheticSite) -> None:
    for seed in SEEDS:
        fetch_and_match(site.url(f"/img/{seed}.jpg"))
    for seed in SEEDS:
        for name in VARIANTS:
            fetch_and_match(site.url(f"/img/{seed}/{name}.jpg"))

    originals = {seed: content_for(original_bytes(seed)) for seed in SEEDS}
    variants = {(seed, name): content_for(variant_of(seed, name)) for seed in SEEDS for name in VARIANTS}
    assert Content.objects.count() == len(originals) + len(variants)  # every variant is its own file
    for (seed, name), content in variants.items():
        to_original = Match.objects.filter(content=content, matched_content=originals[seed], kind="pdq")
        assert to_original.exists(), f"{name} of {seed} did not find its original"
        assert to_original.get().distance <= django_settings.HOTLINE_PDQ_THRESHOLD
    seed_of = {content.pk: seed for seed, content in originals.items()}
    seed_of |= {content.pk: seed for (seed, _), content in variants.items()}
    content_pairs = Match.objects.filter(content__isnull=False, matched_content__isnull=False)
    assert content_pairs.count() > len(variants)
    for match in content_pairs:
        assert seed_of[match.content_id] == seed_of[match.matched_content_id], match  # type: ignore[index]
        assert match.content_id != match.matched_content_id
    for original in originals.values():  # nothing earlier to find: originals came first
        assert not Match.objects.filter(content=original).exists()
    assert not Content.objects.filter(matched_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_mirrored_copy_matches_only_through_the_dihedral_hashes(allowed, site: SyntheticSite) -> None:
    original = only_content(fetch_and_match(site.url("/img/3.jpg")))
    mirrored = only_content(fetch_and_match(site.url("/img/3/mirrored.jpg")))

    assert hex_distance(original.pdq, mirrored.pdq) > django_settings.HOTLINE_PDQ_THRESHOLD
    match = Match.objects.get(content=mirrored, matched_content=original, kind="pdq")
    assert match.distance == min(hex_distance(h, original.pdq) for h in mirrored.pdq_dihedral)


@pytest.mark.django_db
def test_matching_is_idempotent(allowed, site: SyntheticSite) -> None:
    fetch_and_match(site.url("/img/4.jpg"))
    variant = only_content(fetch_and_match(site.url("/img/4/resized.jpg")))
    before = Match.objects.count()

    assert content_match(content_id=variant.pk) == []
    assert content_match(content_id=10**9) == []
    assert Match.objects.count() == before


# --- Hash lists ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_content_matches_hash_list_entries_exactly_and_near(allowed, site: SyntheticSite) -> None:
    original = original_bytes(5)
    digest = digest_image(original)[0]
    hash_list = hashlist_create(name="Partner list")
    result = hashlist_import(
        hash_list=hash_list,
        entries=[("sha256", digest.sha256, ""), ("pdq", digest.pdq, ""), ("md5", "0" * 32, "")],
    )
    assert (result.added, result.invalid) == (3, 0)

    exact = only_content(fetch_and_match(site.url("/img/5.jpg")))
    near = only_content(fetch_and_match(site.url("/img/5/cropped.jpg")))

    exact_kinds = dict(Match.objects.filter(content=exact, known_hash__isnull=False).values_list("kind", "distance"))
    assert exact_kinds == {"sha256": 0, "pdq": 0}
    near_match = Match.objects.get(content=near, known_hash__isnull=False)
    assert near_match.known_hash.algorithm == "pdq"  # type: ignore[union-attr]
    assert 0 < near_match.distance <= django_settings.HOTLINE_PDQ_THRESHOLD
    assert case_of(Match.objects.get(content=exact, kind="sha256").content.captures.first().url).queue == (  # type: ignore[union-attr]
        CaseQueue.KNOWN_NEW_LOCATION
    )


@pytest.mark.django_db
def test_an_inactive_hash_list_matches_nothing(allowed, site: SyntheticSite) -> None:
    hash_list = hashlist_create(name="Switched off")
    hashlist_import(hash_list=hash_list, entries=[("sha256", sha256(original_bytes(6)), "")])
    hashlist_import(hash_list=hash_list, entries=[("pdq", digest_image(original_bytes(6))[0].pdq, "")])
    hash_list.active = False
    hash_list.save(update_fields=["active"])

    url = fetch_and_match(site.url("/img/6.jpg"))

    assert not Match.objects.exists()
    assert case_of(url).queue == CaseQueue.NEW_UNKNOWN


# --- Partner hash-only reports ----------------------------------------------------------------------


def hash_report(partner, hashes: list[tuple[str, str]]) -> Report:
    item = PartnerReportInput(
        url_items=[], hashes=hashes, category="csam", ai_suspected="unknown", external_id=f"ext-{next(_serial)}"
    )
    return partner_reports_submit(partner=partner, items=[item])[0].report


@pytest.mark.django_db
def test_submitted_hashes_match_content_and_lists_exactly_and_near(allowed, site: SyntheticSite) -> None:
    fetched = only_content(fetch_and_match(site.url("/img/7.jpg")))
    listed = sha256(b"a file on a partner's list, never fetched here")
    hash_list = hashlist_create(name="Known files")
    hashlist_import(hash_list=hash_list, entries=[("sha256", listed, "")])
    brightened_pdq = digest_image(variant_of(7, "brightened"))[0].pdq
    report = hash_report(
        make_partner(),
        [("md5", fetched.md5), ("sha256", listed), ("pdq", brightened_pdq), ("sha1", "f" * 40)],
    )

    rows = report_hashes_match(report_id=report.pk)

    assert len(rows) == 3
    by_algorithm = {submitted.algorithm: submitted for submitted in SubmittedHash.objects.filter(report=report)}
    md5 = Match.objects.get(submitted_hash=by_algorithm["md5"])
    assert (md5.matched_content, md5.kind, md5.distance) == (fetched, "md5", 0)
    listed_match = Match.objects.get(submitted_hash=by_algorithm["sha256"])
    assert (listed_match.known_hash.hash_list, listed_match.distance) == (hash_list, 0)  # type: ignore[union-attr]
    near = Match.objects.get(submitted_hash=by_algorithm["pdq"])
    assert near.matched_content == fetched
    assert 0 < near.distance <= django_settings.HOTLINE_PDQ_THRESHOLD
    assert not Match.objects.filter(submitted_hash=by_algorithm["sha1"]).exists()
    assert not SubmittedHash.objects.filter(report=report, matched_at__isnull=True).exists()
    case = Case.objects.get(report=report)
    assert (case.url, case.queue, case.status) == (None, CaseQueue.HASH_ONLY, "open")
    report.refresh_from_db()
    assert report.status == ReportStatus.IN_ASSESSMENT

    assert report_hashes_match(report_id=report.pk) == []  # matched once is matched
    assert Case.objects.filter(report=report).count() == 1


@pytest.mark.django_db
def test_content_fetched_later_finds_an_earlier_submitted_hash(allowed, site: SyntheticSite) -> None:
    original = digest_image(original_bytes(8))[0]
    report = hash_report(make_partner(), [("pdq", original.pdq), ("sha256", original.sha256)])
    report_hashes_match(report_id=report.pk)
    assert not Match.objects.exists()

    content = only_content(fetch_and_match(site.url("/img/8/greyscale.jpg")))
    exact = only_content(fetch_and_match(site.url("/img/8.jpg")))

    near = Match.objects.get(submitted_hash__algorithm="pdq", matched_content=content)
    assert near.distance <= django_settings.HOTLINE_PDQ_THRESHOLD
    assert Match.objects.filter(submitted_hash__algorithm="sha256", matched_content=exact, distance=0).exists()
    assert Match.objects.filter(submitted_hash__algorithm="pdq", matched_content=exact, distance=0).exists()


@pytest.mark.django_db(transaction=True)
def test_a_hash_only_report_through_the_api_is_matched_and_queued(allowed, site: SyntheticSite, client: Client) -> None:
    fetched = only_content(fetch_and_match(site.url("/img/1.jpg")))
    _partner, issued = partner_create(name="Platform Example", kind=PartnerKind.PLATFORM, country="NL")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}
    resized = digest_image(variant_of(1, "resized"))[0]
    body = {
        "hashes": [{"algorithm": "sha256", "value": fetched.sha256}, {"algorithm": "pdq", "value": resized.pdq}],
        "category": "csam",
    }

    created = client.post("/api/v1/reports", body, content_type="application/json", **auth)

    assert created.status_code == 201, created.content
    report = Report.objects.get(pk=created.json()["id"])
    case = Case.objects.get(report=report)
    assert (case.url, case.queue) == (None, CaseQueue.HASH_ONLY)
    detail = client.get(f"/api/v1/reports/{report.pk}", **auth).json()
    assert detail["status"] == ReportStatus.IN_ASSESSMENT
    hashes = {entry["algorithm"]: entry for entry in detail["hashes"]}
    assert hashes["sha256"]["matches"] == [
        {"kind": "sha256", "distance": 0, "content": fetched.sha256, "hash_list": None}
    ]
    [near] = hashes["pdq"]["matches"]
    assert near["content"] == fetched.sha256
    assert 0 < near["distance"] <= django_settings.HOTLINE_PDQ_THRESHOLD


# --- Runaway hashes -----------------------------------------------------------------------------------


def hex_with_bits(bits: range) -> str:
    return f"{sum(1 << bit for bit in bits):064x}"


def planted_content(pdq: str) -> Content:
    """Content with a chosen PDQ hash (no picture has to exist for it), in its own open case."""
    serial = next(_serial)
    content = Content.objects.create(
        sha256=sha256(f"planted {serial}".encode()),
        md5=f"{serial:032x}",
        sha1=f"{serial:040x}",
        pdq=pdq,
        pdq_quality=100,
        pdq_dihedral=[pdq],
        media_type="image/jpeg",
    )
    case_for_url(url=url_row(f"https://example.com/planted/{serial}"), contents=[content])
    return content


def queue_of(content: Content) -> str:
    return Case.objects.get(contents=content).queue


@pytest.mark.django_db
def test_a_hash_list_entry_matching_too_much_is_quarantined_and_decides_nothing(pipeline) -> None:
    pipeline.HOTLINE_RUNAWAY_THRESHOLD = 2
    entry = hex_with_bits(range(0))  # all zeros: a "blank picture" entry
    hash_list = hashlist_create(name="Sloppy list")
    hashlist_import(hash_list=hash_list, entries=[("pdq", entry, "")])
    known = KnownHash.objects.get()
    # 20 bits from the entry each, in disjoint places: 40 apart from each other, so they match
    # only the entry, never one another.
    contents = [planted_content(hex_with_bits(range(20 * i, 20 * i + 20))) for i in range(4)]

    for content in contents[:2]:
        content_match(content_id=content.pk)
    known.refresh_from_db()
    assert not known.quarantined
    assert [queue_of(content) for content in contents[:2]] == [CaseQueue.KNOWN_NEW_LOCATION] * 2

    content_match(content_id=contents[2].pk)
    known.refresh_from_db()
    assert known.quarantined
    assert Match.objects.filter(known_hash=known).count() == 3
    assert not Match.objects.filter(content__isnull=False, matched_content__isnull=False).exists()
    # The entry no longer sends anything to the "known" queue: not the third, nor the first two.
    assert [queue_of(content) for content in contents[:3]] == [CaseQueue.NEW_UNKNOWN] * 3

    content_match(content_id=contents[3].pk)
    assert queue_of(contents[3]) == CaseQueue.NEW_UNKNOWN


@pytest.mark.django_db
def test_a_runaway_hash_list_entry_from_fetched_pictures(allowed, site: SyntheticSite) -> None:
    allowed.HOTLINE_RUNAWAY_THRESHOLD = 2
    hash_list = hashlist_create(name="Entry for seed 2")
    hashlist_import(hash_list=hash_list, entries=[("pdq", digest_image(original_bytes(2))[0].pdq, "")])

    for name in ("resized", "brightened"):
        fetch_and_match(site.url(f"/img/2/{name}.jpg"))
    assert not KnownHash.objects.get().quarantined
    fetch_and_match(site.url("/img/2/cropped.jpg"))

    assert KnownHash.objects.get().quarantined
    assert Match.objects.filter(known_hash__isnull=False).values("content").distinct().count() == 3


@pytest.mark.django_db
def test_submitted_hash_matches_do_not_count_towards_a_runaway_entry(pipeline) -> None:
    pipeline.HOTLINE_RUNAWAY_THRESHOLD = 2
    entry = hex_with_bits(range(0))
    hash_list = hashlist_create(name="Shared entry")
    hashlist_import(hash_list=hash_list, entries=[("pdq", entry, "")])
    report = hash_report(make_partner(), [("pdq", hex_with_bits(range(200, 210)))])
    report_hashes_match(report_id=report.pk)  # a partner's hash near the entry: not a content
    assert Match.objects.filter(known_hash__isnull=False, submitted_hash=report.hashes.get()).exists()

    for i in range(2):
        content_match(content_id=planted_content(hex_with_bits(range(20 * i, 20 * i + 20))).pk)

    assert not KnownHash.objects.get().quarantined  # two contents: not more than the threshold


# --- Two workers, one truth ----------------------------------------------------------------------------


@pytest.fixture
def workers(pipeline, monkeypatch: pytest.MonkeyPatch):
    """Two in-memory indexes, as two worker processes hold; `use(i)` makes worker i do the matching."""
    indexes = [MatchIndex(), MatchIndex()]

    def use(i: int) -> MatchIndex:
        monkeypatch.setattr(match_index, "_index", indexes[i])
        return indexes[i]

    return use


@pytest.mark.django_db
def test_content_matched_by_one_worker_is_found_by_the_other(allowed, site: SyntheticSite, workers) -> None:
    first, second = workers(0), workers(1)
    first.catch_up()
    second.catch_up()  # both loaded, both empty

    workers(0)
    original = only_content(fetch_and_match(site.url("/img/6.jpg")))
    workers(1)
    variant = only_content(fetch_and_match(site.url("/img/6/brightened.jpg")))

    assert Match.objects.filter(content=variant, matched_content=original, kind="pdq").exists()
    first.catch_up()  # the first worker learns of the variant (and of its own match, once committed)
    assert {encode_target(CONTENT, original.pk), encode_target(CONTENT, variant.pk)} <= set(
        first.near_pdq(variant.pdq_dihedral)
    )
    assert first.catch_up() == 0


@pytest.mark.django_db
def test_a_hash_list_imported_after_a_worker_loaded_is_found_on_its_next_match(
    allowed, site: SyntheticSite, workers
) -> None:
    worker = workers(0)
    worker.catch_up()
    digest = digest_image(original_bytes(3))[0]
    hash_list = hashlist_create(name="Imported later")
    hashlist_import(hash_list=hash_list, entries=[("pdq", digest.pdq, ""), ("phash", digest.phash, "")])
    known = {entry.algorithm: entry for entry in KnownHash.objects.all()}

    content = only_content(fetch_and_match(site.url("/img/3/reencoded.jpg")))

    assert set(Match.objects.filter(content=content).values_list("kind", "known_hash")) == {
        ("pdq", known["pdq"].pk),
        ("phash", known["phash"].pk),
    }
    assert encode_target(KNOWN, known["pdq"].pk) in worker.near_pdq([digest.pdq])


@pytest.mark.django_db
def test_a_worker_matching_only_exact_hashes_still_learns_other_workers_near_hashes(
    allowed, site: SyntheticSite, workers
) -> None:
    partner = make_partner()
    original = digest_image(original_bytes(4))[0]
    workers(0).catch_up()
    workers(1)
    report_hashes_match(report_id=hash_report(partner, [("pdq", original.pdq)]).pk)
    workers(0)
    report_hashes_match(report_id=hash_report(partner, [("md5", "1" * 32)]).pk)  # nothing near to look up

    content = only_content(fetch_and_match(site.url("/img/4/resized.jpg")))

    assert Match.objects.filter(submitted_hash__algorithm="pdq", matched_content=content).exists()


@pytest.mark.django_db
def test_a_match_that_rolls_back_leaves_the_workers_index_in_step(
    allowed, site: SyntheticSite, workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reports.services import matching

    worker = workers(0)
    first, _ = fetch(site.url("/img/7.jpg"))
    failing = monkeypatch.context()
    with failing as patch:
        patch.setattr(matching, "cases_refresh_for_contents", _raise)
        with pytest.raises(RuntimeError):
            content_match(content_id=only_content(first).pk)
    assert only_content(first).matched_at is None  # rolled back, to be retried
    workers(1)
    other = only_content(fetch_and_match(site.url("/img/5.jpg")))  # takes the sequence number freed above
    workers(0)

    variant = only_content(fetch_and_match(site.url("/img/5/brightened.jpg")))

    assert worker is match_index.get_match_index()
    assert Match.objects.filter(content=variant, matched_content=other).exists()


def _raise(*args: object, **kwargs: object) -> None:
    raise RuntimeError("the database went away")


# --- Batches ------------------------------------------------------------------------------------


def _match_set() -> set[tuple[str, str, str, int]]:
    """Every content-to-content and content-to-list match, by SHA-256 and list value."""
    return {
        (m.content.sha256, m.matched_content.sha256 if m.matched_content else m.known_hash.value, m.kind, m.distance)
        for m in Match.objects.filter(content__isnull=False).select_related("content", "matched_content", "known_hash")
    }


@pytest.mark.django_db
def test_a_batch_matches_exactly_what_one_at_a_time_matches(pipeline) -> None:
    """Families of near-copies (some of them mirrored) and loners, some near a list entry, matched
    one at a time and then again as one batch: the same matches, the same runaway verdicts."""
    import random

    from reports.services.matching import contents_match

    pipeline.HOTLINE_RUNAWAY_THRESHOLD = 3
    rng = random.Random(7)
    hash_list = hashlist_create(name="Batch list")
    bases = [rng.getrandbits(256) for _ in range(6)]
    hashlist_import(hash_list=hash_list, entries=[("pdq", f"{bases[0] ^ 0b111:064x}", "")])
    contents = []
    for base in bases:
        for _ in range(rng.randint(1, 6)):  # one family: the base with a few bits flipped each time
            flipped = base
            for bit in rng.sample(range(256), rng.randint(0, 14)):
                flipped ^= 1 << bit
            contents.append(planted_content(f"{flipped:064x}"))
    mirrored = contents[1]
    mirrored.pdq_dihedral = [mirrored.pdq, f"{rng.getrandbits(256):064x}"]
    mirrored.save(update_fields=["pdq_dihedral"])

    for content in contents:
        content_match(content_id=content.pk)
    one_at_a_time = _match_set()
    quarantined = set(KnownHash.objects.filter(quarantined=True).values_list("value", flat=True))
    assert len(one_at_a_time) > len(bases)  # the families did link

    Match.objects.all().delete()
    Content.objects.update(matched_at=None, match_seq=None, quarantined=False)
    KnownHash.objects.update(quarantined=False)
    match_index.reset_match_index()
    contents_match(content_ids=[content.pk for content in reversed(contents)])  # order given does not matter

    assert _match_set() == one_at_a_time
    assert set(KnownHash.objects.filter(quarantined=True).values_list("value", flat=True)) == quarantined
    seqs = list(Content.objects.order_by("first_seen_at", "pk").values_list("match_seq", flat=True))
    assert seqs == sorted(seqs)
    assert None not in seqs


@pytest.mark.django_db
def test_fetched_variants_matched_in_one_batch_link_to_their_original(allowed, site: SyntheticSite) -> None:
    from reports.services.matching import contents_match, contents_pending_match

    for seed in (1, 2):
        fetch(site.url(f"/img/{seed}.jpg"))
        for name in VARIANTS:
            fetch(site.url(f"/img/{seed}/{name}.jpg"))
    pending = contents_pending_match(limit=100)
    assert len(pending) == 2 * (1 + len(VARIANTS))

    contents_match(content_ids=pending)

    assert contents_pending_match(limit=100) == []
    for seed in (1, 2):
        original = only_content(url_row(site.url(f"/img/{seed}.jpg")))
        for name in VARIANTS:
            copy = only_content(url_row(site.url(f"/img/{seed}/{name}.jpg")))
            assert Match.objects.filter(content=copy, matched_content=original).exists(), name
    originals = [only_content(url_row(site.url(f"/img/{seed}.jpg"))) for seed in (1, 2)]
    assert not Match.objects.filter(content__in=originals, matched_content__in=originals).exists()
