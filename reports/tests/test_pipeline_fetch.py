"""Fetching: a reported URL becomes captures and contents (hashed, previewed, provenance read).

Against a local `SyntheticSite` serving pictures drawn in code: distinct images, a gallery page,
an AI-tagged PNG and every kind of hostile answer. Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
from cryptography.fernet import InvalidToken
from django.conf import settings as django_settings
from django.test import Client
from PIL import Image

from reports.lib.imaging import decrypt_preview
from reports.lib.synthetic import Response, SyntheticSite, ai_tagged_png, default_routes
from reports.models import Capture, Case, Content, Url
from reports.models.choices import CaptureError, CaseQueue, FetchStatus, PartnerKind, ReportStatus
from reports.services.fetching import gather, url_fetch
from reports.services.partners import partner_create
from reports.tests.factories import make_public_report
from reports.tests.pipeline_helpers import (
    cached_routes,
    case_of,
    contents_of,
    fetch,
    fetch_and_match,
    only_content,
    original_bytes,
    variant_of,
)


def hostile_routes() -> dict:
    routes = default_routes()
    routes["/loop"] = lambda: Response(status=302, headers={"Location": "/loop"}, content_type="text/plain")
    routes["/text.jpg"] = lambda: Response(body=b"plain words, no picture", content_type="text/plain")
    routes["/truncated.jpg"] = lambda: Response(body=original_bytes(2)[:2000])
    routes["/empty.jpg"] = lambda: Response(body=b"")
    return routes


@pytest.fixture(scope="module")
def site() -> Iterator[SyntheticSite]:
    with SyntheticSite(routes=cached_routes(hostile_routes())) as running:
        yield running


@pytest.fixture
def allowed(pipeline, site: SyntheticSite):
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    return pipeline


# --- A picture becomes content ---------------------------------------------------------------------


@pytest.mark.django_db
def test_an_image_url_becomes_one_content_with_its_hashes(allowed, site: SyntheticSite) -> None:
    original = original_bytes(1)

    url, outcome = fetch(site.url("/img/1.jpg"))

    assert outcome.state == "fetched"
    assert (url.fetch_status, url.fetch_error, url.fetch_attempts) == (FetchStatus.FETCHED, "", 1)
    assert url.hosting_ip == "127.0.0.1"
    capture = Capture.objects.get(url=url)
    assert capture.error == ""
    assert (capture.http_status, capture.ip, capture.byte_count) == (200, "127.0.0.1", len(original))
    assert (capture.declared_type, capture.detected_type) == ("image/jpeg", "image/jpeg")
    assert capture.final_url == site.url("/img/1.jpg")
    content = capture.content
    assert content is not None
    assert content.sha256 == hashlib.sha256(original).hexdigest()
    assert content.md5 == hashlib.md5(original, usedforsecurity=False).hexdigest()
    assert content.sha1 == hashlib.sha1(original, usedforsecurity=False).hexdigest()
    assert len(content.pdq) == 64
    assert content.pdq_quality >= django_settings.HOTLINE_PDQ_MIN_QUALITY
    assert len(content.pdq_dihedral) == 8
    assert content.pdq_dihedral[0] == content.pdq
    assert len(content.phash) == 16
    assert (content.media_type, content.width, content.height, content.byte_count) == (
        "image/jpeg",
        640,
        480,
        len(original),
    )
    assert content.ai_indicated is False
    assert outcome.new_content_ids == (content.pk,)
    assert content.matched_at is None  # matching is the next task's work


@pytest.mark.django_db
def test_the_preview_is_stored_encrypted_and_is_a_small_jpeg(allowed, site: SyntheticSite) -> None:
    url, _ = fetch(site.url("/img/2.jpg"))
    stored = bytes(only_content(url).preview)

    assert stored
    assert not stored.startswith(b"\xff\xd8")  # not a JPEG at rest
    assert b"JFIF" not in stored
    assert b"Exif" not in stored
    preview = decrypt_preview(stored, django_settings.HOTLINE_PREVIEW_KEYS)
    assert preview.startswith(b"\xff\xd8\xff")
    with Image.open(io.BytesIO(preview)) as image:
        assert image.format == "JPEG"
        assert max(image.size) <= 512
        assert image.size == (512, 384)  # 640x480 scaled, aspect kept
    with pytest.raises(InvalidToken):
        decrypt_preview(stored, [django_settings.HOTLINE_FIELD_KEYS[0]])  # another key does not open it


@pytest.mark.django_db
def test_the_same_image_at_two_urls_is_one_content(allowed, site: SyntheticSite) -> None:
    first, _ = fetch(site.url("/img/6.jpg"))
    second, _ = fetch(site.url("/img/6.jpg?copy=2"))
    redirected, _ = fetch(site.url("/redirect/1"))  # 302 to /img/6.jpg

    assert len({first.pk, second.pk, redirected.pk}) == 3
    assert only_content(first) == only_content(second) == only_content(redirected)
    assert Content.objects.count() == 1
    capture = Capture.objects.get(url=redirected)
    assert capture.requested_url == site.url("/redirect/1")
    assert capture.final_url == site.url("/img/6.jpg")


@pytest.mark.django_db
def test_a_gallery_page_captures_each_linked_image(allowed, site: SyntheticSite) -> None:
    url, outcome = fetch(site.url("/gallery/1.html"))

    assert outcome.state == "fetched"
    page = Capture.objects.get(url=url, parent=None)
    assert (page.detected_type, page.content) == ("text/html", None)
    children = list(page.children.order_by("pk"))
    assert [child.requested_url for child in children] == [
        site.url(path) for path in ("/img/3.jpg", "/img/4.jpg", "/img/5.jpg", "/img/1/mirrored.jpg")
    ]
    assert all(child.error == "" and child.content is not None for child in children)
    expected = [original_bytes(seed) for seed in (3, 4, 5)] + [variant_of(1, "mirrored")]
    assert [child.content.sha256 for child in children] == [  # type: ignore[union-attr]
        hashlib.sha256(data).hexdigest() for data in expected
    ]
    assert len(contents_of(url)) == 4
    case = case_of(url)
    assert set(case.contents.all()) == set(contents_of(url))
    assert sorted(outcome.new_content_ids) == sorted(content.pk for content in contents_of(url))


@pytest.mark.django_db
def test_the_ai_tagged_png_is_ai_indicated_and_queued_as_such(allowed, site: SyntheticSite) -> None:
    url = fetch_and_match(site.url("/ai/1.png"))

    content = only_content(url)
    assert content.media_type == "image/png"
    assert content.ai_indicated is True
    assert content.provenance["ai_indicated"] is True
    assert content.provenance["reasons"]
    assert any(signal["name"] == "parameters" for signal in content.provenance["signals"])
    assert content.sha256 == hashlib.sha256(ai_tagged_png(20)).hexdigest()
    case = case_of(url)
    assert case.queue == CaseQueue.AI_INDICATED
    plain = case_of(fetch_and_match(site.url("/img/7.jpg")))
    assert plain.queue == CaseQueue.NEW_UNKNOWN
    assert case.priority > plain.priority  # new unknown content first, then AI-indicated


# --- Hostile answers end in a recorded capture error -------------------------------------------------

HOSTILE = [
    ("/dead.jpg", CaptureError.HTTP_4XX, 404),
    ("/nowhere.jpg", CaptureError.HTTP_4XX, 404),
    ("/error.jpg", CaptureError.HTTP_5XX, 500),
    ("/fake.jpg", CaptureError.NOT_AN_IMAGE, 200),
    ("/text.jpg", CaptureError.NOT_AN_IMAGE, 200),
    ("/empty.jpg", CaptureError.NOT_AN_IMAGE, 200),
    ("/truncated.jpg", CaptureError.DECODE, 200),
    ("/bomb.png", CaptureError.BOMB, 200),
    ("/huge.jpg", CaptureError.TOO_BIG, 200),
    ("/gzip-bomb.jpg", CaptureError.TOO_BIG, 200),
    ("/slow.jpg", CaptureError.TIMEOUT, 200),
    ("/loop", CaptureError.TOO_MANY_REDIRECTS, 302),
]


@pytest.mark.parametrize(("path", "error", "status"), HOSTILE, ids=[path for path, _, _ in HOSTILE])
@pytest.mark.django_db
def test_a_hostile_answer_ends_in_a_recorded_capture_error(
    allowed, site: SyntheticSite, path: str, error: str, status: int
) -> None:
    allowed.HOTLINE_FETCH_MAX_BYTES = 2 * 2**20  # /huge.jpg says 25 MiB, /gzip-bomb.jpg inflates to 64 MiB
    allowed.HOTLINE_FETCH_TOTAL_TIMEOUT = 1.0  # /slow.jpg drips a byte every half second

    url, outcome = fetch(site.url(path))

    assert outcome.state == "error"
    assert (url.fetch_status, url.fetch_error) == (FetchStatus.ERROR, error)
    capture = Capture.objects.get(url=url)
    assert (capture.error, capture.http_status) == (error, status)
    assert capture.error_detail
    assert capture.content is None
    assert capture.finished_at is not None
    assert Content.objects.count() == 0
    case = case_of(url)  # a dead link is work too, queued behind content
    assert case.contents.count() == 0
    assert case.priority > 10


@pytest.mark.django_db
def test_a_slow_server_cannot_hold_the_worker(allowed, site: SyntheticSite) -> None:
    allowed.HOTLINE_FETCH_TOTAL_TIMEOUT = 0.6
    started = time.monotonic()
    result = gather(site.url("/slow.jpg")).result
    assert result.error == CaptureError.TIMEOUT
    assert time.monotonic() - started < 2


@pytest.mark.django_db
def test_a_page_linking_to_hostile_images_records_each_failure(pipeline, site: SyntheticSite) -> None:
    routes = {
        "/page.html": lambda: Response(
            body=b'<html><body><img src="/dead.jpg"><img src="/fake.jpg"><img src="/bomb.png">'
            b'<img src="/error.jpg"><img src="/ok.jpg"></body></html>',
            content_type="text/html",
        ),
        "/ok.jpg": lambda: Response(body=original_bytes(8)),
    }
    hostile = default_routes()
    routes.update({path: hostile[path] for path in ("/dead.jpg", "/fake.jpg", "/bomb.png", "/error.jpg")})
    with SyntheticSite(routes=routes) as own:
        pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [own.authority]
        url, outcome = fetch(own.url("/page.html"))

    assert outcome.state == "fetched"  # the page itself was fine
    errors = list(Capture.objects.filter(url=url, parent__isnull=False).order_by("pk").values_list("error", flat=True))
    assert errors == [CaptureError.HTTP_4XX, CaptureError.NOT_AN_IMAGE, CaptureError.BOMB, CaptureError.HTTP_5XX, ""]
    assert [content.sha256 for content in contents_of(url)] == [hashlib.sha256(original_bytes(8)).hexdigest()]


# --- Retries ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_transient_error_leaves_the_url_pending_with_a_capture(allowed, site: SyntheticSite) -> None:
    url, outcome = fetch(site.url("/error.jpg"), final_attempt=False)

    assert (outcome.state, outcome.error) == ("retry", CaptureError.HTTP_5XX)
    assert (url.fetch_status, url.fetch_attempts) == (FetchStatus.PENDING, 1)
    assert Capture.objects.get(url=url).error == CaptureError.HTTP_5XX
    assert not Case.objects.filter(url=url).exists()  # no case until the URL's fetching is over

    again = url_fetch(url_id=url.pk, final_attempt=True)
    url.refresh_from_db()
    assert again.state == "error"
    assert (url.fetch_status, url.fetch_error, url.fetch_attempts) == (FetchStatus.ERROR, CaptureError.HTTP_5XX, 2)
    assert Capture.objects.filter(url=url, error=CaptureError.HTTP_5XX).count() == 2
    assert case_of(url).contents.count() == 0


@pytest.mark.django_db
def test_a_transient_error_then_success_fetches_the_url(pipeline) -> None:
    answers = iter([Response(status=503, body=b"busy", content_type="text/plain"), Response(body=original_bytes(4))])
    with SyntheticSite(routes={"/flaky.jpg": lambda: next(answers)}) as own:
        pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [own.authority]
        url, first = fetch(own.url("/flaky.jpg"), final_attempt=False)
        second = url_fetch(url_id=url.pk, final_attempt=False)

    url.refresh_from_db()
    assert (first.state, second.state) == ("retry", "fetched")
    assert (url.fetch_status, url.fetch_attempts) == (FetchStatus.FETCHED, 2)
    assert list(Capture.objects.filter(url=url).order_by("pk").values_list("error", flat=True)) == [
        CaptureError.HTTP_5XX,
        "",
    ]
    assert len(contents_of(url)) == 1


@pytest.mark.django_db
def test_a_batch_task_hands_a_transient_failure_to_its_own_retrying_task(
    allowed, site: SyntheticSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fetch_urls` (a worker, not in-process): the URL that failed transiently goes on alone, as the
    first retry of `fetch_url` after the first backoff; the others are done."""
    from reports.tasks import fetching as fetch_tasks
    from reports.tests.pipeline_helpers import url_row

    queued: list[tuple[tuple[int, ...], dict]] = []
    monkeypatch.setattr(fetch_tasks.fetch_url, "apply_async", lambda args, **options: queued.append((args, options)))
    good, flaky = url_row(site.url("/img/5.jpg")), url_row(site.url("/error.jpg"))

    states = fetch_tasks.fetch_urls.run([good.pk, flaky.pk])

    assert states == {"fetched": 1, "retry": 1}
    assert queued == [((flaky.pk,), {"countdown": 30, "retries": 1})]
    flaky.refresh_from_db()
    assert (flaky.fetch_status, flaky.fetch_attempts) == (FetchStatus.PENDING, 1)


@pytest.mark.django_db
def test_a_permanent_error_ends_the_url_even_before_the_last_attempt(allowed, site: SyntheticSite) -> None:
    url, outcome = fetch(site.url("/dead.jpg"), final_attempt=False)

    assert outcome.state == "error"
    assert (url.fetch_status, url.fetch_error) == (FetchStatus.ERROR, CaptureError.HTTP_4XX)
    assert url_fetch(url_id=url.pk).state == "skipped"  # done is done: a redelivery records nothing
    assert Capture.objects.filter(url=url).count() == 1


@pytest.mark.django_db
def test_a_fetched_url_is_not_fetched_twice(allowed, site: SyntheticSite) -> None:
    url, _ = fetch(site.url("/img/3.jpg"))
    hits = site.hits.get("/img/3.jpg", 0)

    assert url_fetch(url_id=url.pk).state == "skipped"
    assert url_fetch(url_id=10**9).state == "skipped"
    assert site.hits.get("/img/3.jpg", 0) == hits
    assert Capture.objects.filter(url=url).count() == 1


# --- The task path, end to end -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_public_report_runs_fetch_and_match_after_commit(allowed, site: SyntheticSite) -> None:
    allowed.HOTLINE_FETCH_MAX_BYTES = 2 * 2**20
    hostile = ["/dead.jpg", "/error.jpg", "/fake.jpg", "/bomb.png", "/gzip-bomb.jpg"]

    report = make_public_report(
        urls=[site.url("/img/5.jpg"), site.url("/img/5/resized.jpg")] + [site.url(path) for path in hostile]
    )

    statuses = {row.canonical_url: (row.fetch_status, row.fetch_error) for row in Url.objects.all()}
    assert statuses == {
        site.url("/img/5.jpg"): (FetchStatus.FETCHED, ""),
        site.url("/img/5/resized.jpg"): (FetchStatus.FETCHED, ""),
        site.url("/dead.jpg"): (FetchStatus.ERROR, CaptureError.HTTP_4XX),
        site.url("/error.jpg"): (FetchStatus.ERROR, CaptureError.HTTP_5XX),  # eager: the one and final try
        site.url("/fake.jpg"): (FetchStatus.ERROR, CaptureError.NOT_AN_IMAGE),
        site.url("/bomb.png"): (FetchStatus.ERROR, CaptureError.BOMB),
        site.url("/gzip-bomb.jpg"): (FetchStatus.ERROR, CaptureError.TOO_BIG),
    }
    assert Content.objects.count() == 2
    assert Content.objects.filter(matched_at__isnull=True).count() == 0
    assert Case.objects.count() == 7
    assert Capture.objects.exclude(error="").count() == len(hostile)
    report.refresh_from_db()
    assert report.status == ReportStatus.IN_ASSESSMENT


@pytest.mark.django_db(transaction=True)
def test_the_read_back_api_shows_what_the_pipeline_found(allowed, site: SyntheticSite, client: Client) -> None:
    _partner, issued = partner_create(name="Hotline Example", kind=PartnerKind.HOTLINE, country="NL")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}
    fetch_and_match(site.url("/img/2.jpg"))  # known before the partner's report
    body = {
        "urls": [site.url("/img/2/brightened.jpg"), site.url("/ai/1.png"), site.url("/error.jpg")],
        "category": "csam",
    }

    created = client.post("/api/v1/reports", body, content_type="application/json", **auth)
    assert created.status_code == 201
    detail = client.get(f"/api/v1/reports/{created.json()['id']}", **auth)

    assert detail.status_code == 200
    data = detail.json()
    assert data["status"] == ReportStatus.IN_ASSESSMENT
    by_url = {entry["url"]: entry for entry in data["urls"]}
    brightened = by_url[site.url("/img/2/brightened.jpg")]
    assert brightened["fetch_status"] == "fetched"
    assert brightened["case_status"] == "open"
    [content] = brightened["contents"]
    original = Content.objects.get(sha256=hashlib.sha256(original_bytes(2)).hexdigest())
    assert content["sha256"] != original.sha256
    matches = {match["kind"]: match for match in content["matches"]}
    assert set(matches) == {"pdq", "phash"}
    assert matches["pdq"]["content"] == matches["phash"]["content"] == original.sha256
    assert matches["pdq"]["hash_list"] is None
    assert 0 < matches["pdq"]["distance"] <= django_settings.HOTLINE_PDQ_THRESHOLD
    assert content["provenance"] == {"ai_indicated": False, "signals": []}
    [ai] = by_url[site.url("/ai/1.png")]["contents"]
    assert ai["provenance"]["ai_indicated"] is True
    assert ai["provenance"]["signals"]
    assert ai["matches"] == []
    failed = by_url[site.url("/error.jpg")]
    assert (failed["fetch_status"], failed["contents"]) == (CaptureError.HTTP_5XX, [])


# --- The original bytes never reach the disk ----------------------------------------------------------

_watch = threading.local()
_writes: list[str] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple) -> None:
    if not getattr(_watch, "on", False) or event != "open":
        return
    path, mode, flags = ([*list(args), None, None, None])[:3]
    if (isinstance(mode, str) and any(flag in mode for flag in "wax+")) or (
        isinstance(flags, int) and flags & _WRITE_FLAGS
    ):
        _writes.append(str(path))


_hooked = False


@pytest.fixture
def disk_writes() -> Iterator[list[str]]:
    """Paths opened for writing by this thread while the fixture is active (a Python audit hook)."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # hooks cannot be removed: this one is inert unless switched on
        _hooked = True
    _writes.clear()
    _watch.on = True
    yield _writes
    _watch.on = False


@pytest.mark.django_db
def test_fetching_and_hashing_write_no_file(allowed, site: SyntheticSite, disk_writes: list[str]) -> None:
    with tempfile.TemporaryFile():  # the control: the hook does see a file written
        pass
    assert disk_writes
    disk_writes.clear()

    url, _ = fetch(site.url("/gallery/1.html"))
    fetch(site.url("/ai/1.png"))
    fetch(site.url("/bomb.png"))

    assert disk_writes == []
    originals = {original_bytes(seed) for seed in (3, 4, 5)} | {ai_tagged_png(20)}
    for content in Content.objects.all():
        assert bytes(content.preview) not in originals
        assert all(original not in bytes(content.preview) for original in originals)
    assert len(contents_of(url)) == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("relaxed", [True, False])
def test_only_the_fetch_record_commits_without_waiting_for_the_disk(allowed, site: SyntheticSite, relaxed) -> None:
    """A fetch's own transaction may commit asynchronously (recomputable: the sweeper fetches again
    what a crash lost); nothing else is touched, and the setting switches it off."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    allowed.HOTLINE_FETCH_ASYNC_COMMIT = relaxed
    with CaptureQueriesContext(connection) as captured:
        _row, outcome = fetch(site.url("/img/4.jpg"))
    assert outcome.state == "fetched"
    relaxing = [q["sql"] for q in captured.captured_queries if "synchronous_commit" in q["sql"]]
    expected = ["SET LOCAL synchronous_commit TO OFF"] if relaxed and connection.vendor == "postgresql" else []
    assert relaxing == expected
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # SET LOCAL ended with the fetch's own transaction
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"


@pytest.mark.django_db
def test_a_batch_of_urls_is_recorded_in_one_transaction_as_one_at_a_time_would(allowed, site: SyntheticSite) -> None:
    """Several URLs in one task: each gets its capture, contents and case, a URL already fetched is
    skipped, a dead link ends as an error, and the recording takes a fixed dozen statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reports.services.fetching import urls_fetch
    from reports.tests.pipeline_helpers import url_row

    paths = ["/img/1.jpg", "/img/1/mirrored.jpg", "/img/2.jpg", "/gallery/1.html", "/missing.jpg", "/img/1.jpg?again=1"]
    rows = [url_row(site.url(path)) for path in paths]
    url_fetch(url_id=rows[0].pk)  # fetched before: the batch must leave it alone
    with CaptureQueriesContext(connection) as captured:
        outcomes = urls_fetch(url_ids=[row.pk for row in rows])

    assert [outcome.url_id for outcome in outcomes] == [row.pk for row in rows]
    assert [outcome.state for outcome in outcomes] == ["skipped", "fetched", "fetched", "fetched", "error", "fetched"]
    for row in rows:
        row.refresh_from_db()
        assert Case.objects.filter(url=row).count() == 1
        assert Capture.objects.filter(url=row, parent__isnull=True).count() == 1
    assert rows[4].fetch_error == CaptureError.HTTP_4XX
    assert Capture.objects.filter(url=rows[3], parent__isnull=False).count() == len(contents_of(rows[3])) > 1
    # The same file at another address is the same content, in both URLs' cases.
    assert contents_of(rows[5]) == contents_of(rows[0])
    # One read of the URLs, then one transaction for all five: lock, contents (insert, read back),
    # captures (pages, then the gallery's images), URLs, cases (read, insert), case contents, reports.
    statements = [q["sql"].split(" ", 1)[0] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 11, statements
