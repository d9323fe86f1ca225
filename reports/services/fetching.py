"""Fetching: turn a reported URL into captures and contents (hashed, previewed, provenance read).

The network and the image work happen first, in memory and outside any transaction; then one
short transaction records everything, under the URL's row lock so that a redelivered or swept
duplicate task records nothing twice. The original bytes are dropped when this returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from reports.lib.image_links import extract_image_links
from reports.lib.imaging import ImageDigest, ImageRejected, digest_image, encrypt_preview, hex_distance, make_preview
from reports.lib.provenance import read_provenance
from reports.lib.safe_fetch import RESERVED_SUFFIXES, FetchResult, safe_fetch
from reports.models import Capture, Content, Url
from reports.models.choices import CaptureError, FetchStatus
from reports.services.hosting import HOSTING_FIELDS, url_hosting_fill
from reports.services.triage import cases_for_urls
from reports.tasks.matching import enqueue_content_match

logger = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass
class Inspected:
    """One fetch attempt and what its bytes turned out to be."""

    result: FetchResult
    error: str = ""
    error_detail: str = ""
    digest: ImageDigest | None = None
    preview: bytes = b""  # encrypted
    provenance: dict[str, Any] = field(default_factory=dict)
    children: list[Inspected] = field(default_factory=list)

    @property
    def transient(self) -> bool:
        return not self.error_is_content and self.result.transient

    @property
    def error_is_content(self) -> bool:
        """The error came from the bytes (not an image, a bomb), not from the network."""
        return bool(self.error) and not self.result.error


@dataclass(frozen=True)
class FetchOutcome:
    url_id: int
    state: str  # "fetched", "error", "retry" or "skipped"
    error: str = ""
    new_content_ids: tuple[int, ...] = ()


def retry_delay(attempt: int) -> int:
    """Seconds before retry number `attempt + 1` of a transient failure: 30 s, 60 s, 120 s … ≤ 1 h."""
    return min(3600, 30 * 2**attempt)


def fetch_options(*, deadline: float | None = None) -> dict[str, Any]:
    total = settings.HOTLINE_FETCH_TOTAL_TIMEOUT
    if deadline is not None:
        total = max(0.5, min(total, deadline - time.monotonic()))
    return {
        "allow_hosts": settings.HOTLINE_FETCH_ALLOW_HOSTS,
        "max_bytes": settings.HOTLINE_FETCH_MAX_BYTES,
        "connect_timeout": settings.HOTLINE_FETCH_CONNECT_TIMEOUT,
        "read_timeout": settings.HOTLINE_FETCH_READ_TIMEOUT,
        "total_timeout": total,
        "max_redirects": settings.HOTLINE_FETCH_MAX_REDIRECTS,
        "unresolvable_suffixes": RESERVED_SUFFIXES,
    }


def inspect_image(result: FetchResult) -> Inspected:
    """Hash, preview and read provenance of fetched bytes, all in memory."""
    inspected = Inspected(result=result)
    if result.error:
        inspected.error, inspected.error_detail = result.error, result.error_detail
        return inspected
    body = result.body or b""
    try:
        digest, image = digest_image(body, max_pixels=settings.HOTLINE_MAX_IMAGE_PIXELS)
    except ImageRejected as exc:
        inspected.error = exc.kind if exc.kind in CaptureError.values else CaptureError.DECODE
        inspected.error_detail = str(exc.detail or exc)[:300]
        return inspected
    inspected.digest = digest
    inspected.preview = encrypt_preview(make_preview(image), settings.HOTLINE_PREVIEW_KEYS)
    try:
        inspected.provenance = read_provenance(body, image)
    except Exception:  # provenance informs, it must never cost us the content
        logger.exception("provenance reading failed for %s", digest.sha256)
        inspected.provenance = {"ai_indicated": False, "reasons": [], "signals": [], "error": "unreadable"}
    return inspected


def gather(url: str) -> Inspected:
    """Fetch `url`; for an HTML page, also fetch the images it links to (within the page budget)."""
    deadline = time.monotonic() + settings.HOTLINE_FETCH_PAGE_BUDGET
    result = safe_fetch(url, **fetch_options(deadline=deadline))
    declared = (result.declared_type or "").split(";", 1)[0].strip().lower()
    if result.error or result.detected_type not in HTML_TYPES or declared.startswith("image/"):
        # A page served as an image is not followed: it is recorded as "not an image".
        return inspect_image(result)
    page = Inspected(result=result)
    links = extract_image_links(
        result.body or b"", result.final_url or url, limit=settings.HOTLINE_FETCH_MAX_IMAGES_PER_PAGE
    )
    for link in links:
        if time.monotonic() >= deadline:
            skipped = FetchResult(requested_url=link, error=CaptureError.TIMEOUT, error_detail="page budget spent")
            page.children.append(Inspected(result=skipped, error=skipped.error, error_detail=skipped.error_detail))
            continue
        page.children.append(inspect_image(safe_fetch(link, **fetch_options(deadline=deadline))))
    result.body = None  # the page's HTML is not kept either
    return page


def _capture(
    url: Url, inspected: Inspected, *, parent: Capture | None, content: Content | None, recheck: bool
) -> Capture:
    result = inspected.result
    return Capture(
        url=url,
        parent=parent,
        requested_url=result.requested_url[:4096],
        final_url=(result.final_url or "")[:4096],
        ip=result.ip,
        http_status=result.http_status,
        declared_type=(result.declared_type or "")[:100],
        detected_type=(result.detected_type or "")[:40],
        byte_count=result.byte_count,
        error=inspected.error,
        error_detail=inspected.error_detail[:300],
        content=content,
        is_recheck=recheck,
        started_at=result.started_at,
        finished_at=timezone.now(),
    )


def contents_get_or_create(items: Sequence[Inspected]) -> dict[str, Content]:
    """Content rows by SHA-256 for the images in `items`, created where new. Unique by SHA-256 in the
    database, so concurrent workers never make twins: an insert that meets an existing row is skipped
    and the read that follows returns the row that was there first. Two round trips, new or known."""
    digests = {item.digest.sha256: item for item in items if item.digest is not None}
    if not digests:
        return {}
    fresh = []
    for item in digests.values():
        digest = item.digest
        assert digest is not None  # noqa: S101 - filtered above
        fresh.append(
            Content(
                sha256=digest.sha256,
                md5=digest.md5,
                sha1=digest.sha1,
                pdq=digest.pdq,
                pdq_quality=digest.pdq_quality,
                pdq_dihedral=digest.pdq_dihedral,
                phash=digest.phash,
                media_type=digest.media_type,
                width=digest.width,
                height=digest.height,
                byte_count=item.result.byte_count,
                provenance=item.provenance,
                ai_indicated=bool(item.provenance.get("ai_indicated")),
                preview=item.preview,
            )
        )
    Content.objects.bulk_create(fresh, ignore_conflicts=True)
    # The encrypted preview is most of a row's bytes, and nothing downstream of a fetch reads it.
    return {content.sha256: content for content in Content.objects.filter(sha256__in=digests).defer("preview")}


def url_fetch(*, url_id: int, final_attempt: bool = True) -> FetchOutcome:
    """Fetch a pending URL once and record the attempt. A transient failure leaves the URL pending
    (the task retries) unless this is the final attempt; a permanent one ends it."""
    return urls_fetch(url_ids=[url_id], final_attempt=final_attempt)[0]


def urls_fetch(*, url_ids: Sequence[int], final_attempt: bool = True) -> list[FetchOutcome]:
    """`url_fetch` for several URLs: the network and image work one URL after the other, then one
    transaction records them all (a dozen statements for the lot, not a dozen per URL). URLs not
    reached within half a page budget come back as "deferred", for the caller to queue one by one,
    so that a batch stays well inside the task's time limit. Outcomes are in `url_ids` order."""
    ids = list(dict.fromkeys(url_ids))
    pending = dict(Url.objects.filter(pk__in=ids, fetch_status=FetchStatus.PENDING).values_list("pk", "canonical_url"))
    started = time.monotonic()
    gathered: list[tuple[int, Inspected]] = []
    deferred: list[int] = []
    for pk in ids:
        if pk not in pending:
            continue
        if gathered and time.monotonic() - started > settings.HOTLINE_FETCH_PAGE_BUDGET / 2:
            deferred.append(pk)
            continue
        gathered.append((pk, gather(pending[pk])))
    recorded = {outcome.url_id: outcome for outcome in _record(gathered, final_attempt=final_attempt)}
    return [
        recorded.get(pk) or FetchOutcome(url_id=pk, state="deferred" if pk in deferred else "skipped") for pk in ids
    ]


def _commit_without_waiting_for_disk() -> None:
    """Let this transaction's COMMIT return before its WAL reaches the disk (PostgreSQL's
    asynchronous commit, for this transaction only: SET LOCAL), when HOTLINE_FETCH_ASYNC_COMMIT is on.

    Why it is safe here and nowhere else: what a fetch records is derived, recomputable work. If
    PostgreSQL crashes (a clean restart loses nothing) within the last ~0.6 s of such commits, the
    URL is simply `pending` again, with no capture, content or case from that attempt, and the sweeper
    fetches it again. Anything durable that came to depend on those rows — a match, an analyst's
    claim — was committed synchronously, which flushes the WAL written before it, this commit's
    included. Intake, matching (workers' indexes follow `match_seq`), casework and referrals keep
    synchronous commits. It saves a disk flush per fetched URL (measured in benchmarks/pipeline.py).
    """
    # Only as the outermost transaction: SET LOCAL lasts until the end of the whole transaction, and
    # a caller's own transaction (a test's, say) is none of this function's business.
    outermost = len(connection.atomic_blocks) == 1
    if settings.HOTLINE_FETCH_ASYNC_COMMIT and connection.vendor == "postgresql" and outermost:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


@transaction.atomic
def _record(items: Sequence[tuple[int, Inspected]], *, final_attempt: bool) -> list[FetchOutcome]:
    """Record fetch attempts under the URLs' row locks, so that a redelivered or swept duplicate task
    records nothing twice; URLs no longer pending come back "skipped"."""
    if not items:
        return []
    _commit_without_waiting_for_disk()
    urls = Url.objects.select_for_update().filter(pk__in=[pk for pk, _ in items]).order_by("pk").in_bulk()
    outcomes = [
        FetchOutcome(url_id=pk, state="skipped")  # another delivery finished first
        for pk, _ in items
        if pk not in urls or urls[pk].fetch_status != FetchStatus.PENDING
    ]
    live = [
        (urls[pk], inspected) for pk, inspected in items if pk in urls and urls[pk].fetch_status == FetchStatus.PENDING
    ]
    if not live:
        return outcomes
    contents = contents_get_or_create([image for _, inspected in live for image in (inspected, *inspected.children)])
    pages = [
        _capture(url, inspected, parent=None, content=_content_of(inspected, contents), recheck=False)
        for url, inspected in live
    ]
    Capture.objects.bulk_create(pages)  # sets their ids (PostgreSQL, SQLite): the children point at them
    Capture.objects.bulk_create(
        [
            _capture(url, child, parent=page, content=_content_of(child, contents), recheck=False)
            for (url, inspected), page in zip(live, pages, strict=True)
            for child in inspected.children
        ]
    )
    now = timezone.now()
    placed: list[tuple[Url, list[Content]]] = []
    for url, inspected in live:
        url.fetch_attempts += 1
        if inspected.error and inspected.transient and not final_attempt:
            # The task retries after retry_delay(); the sweeper only steps in well after that.
            url.next_fetch_at = now + timedelta(
                seconds=retry_delay(url.fetch_attempts - 1) + settings.HOTLINE_SWEEP_AFTER_SECONDS
            )
            outcomes.append(FetchOutcome(url_id=url.pk, state="retry", error=inspected.error))
            continue
        url.fetch_status = FetchStatus.ERROR if inspected.error else FetchStatus.FETCHED
        url.fetch_error = inspected.error
        if inspected.result.ip:
            url.hosting_ip = inspected.result.ip
        url_hosting_fill(url=url)  # country, ASN and provider of the connected IP, for referrals
        found = list(
            dict.fromkeys(
                content
                for image in (inspected, *inspected.children)
                if (content := _content_of(image, contents)) is not None
            )
        )
        placed.append((url, found))
        outcomes.append(
            FetchOutcome(
                url_id=url.pk,
                state="error" if inspected.error else "fetched",
                error=inspected.error,
                new_content_ids=tuple(content.pk for content in found if content.matched_at is None),
            )
        )
    # One UPDATE for all: every URL here was read under its lock, so unchanged fields are written back as read.
    Url.objects.bulk_update(
        [url for url, _ in live],
        ["fetch_status", "fetch_error", "fetch_attempts", "next_fetch_at", *HOSTING_FIELDS],
    )
    cases_for_urls(placed)
    new_ids = tuple(dict.fromkeys(pk for outcome in outcomes for pk in outcome.new_content_ids))
    if new_ids:
        transaction.on_commit(lambda: enqueue_content_match(new_ids), robust=True)
    return outcomes


def _content_of(item: Inspected, contents: dict[str, Content]) -> Content | None:
    return contents.get(item.digest.sha256) if item.digest is not None else None


# --- Re-check: is the content still online? ------------------------------------------------------

RECHECK_GONE_STATUSES = frozenset({404, 410, 451})


@dataclass(frozen=True)
class RecheckOutcome:
    state: str  # "online_same", "online_changed", "gone" or "unknown" (try again later)
    capture_id: int | None = None


def _same_content(known: list[Content], found: list[ImageDigest]) -> bool:
    known_sha = {content.sha256 for content in known}
    for digest in found:
        if digest.sha256 in known_sha:
            return True
        for content in known:
            if content.pdq and digest.pdq and hex_distance(content.pdq, digest.pdq) <= settings.HOTLINE_PDQ_THRESHOLD:
                return True
    return False


def url_recheck(*, url_id: int) -> RecheckOutcome:
    """Fetch a URL again (for a takedown notice) and say whether what was there is still there."""
    url = Url.objects.get(pk=url_id)
    inspected = gather(url.canonical_url)
    known = list(Content.objects.filter(captures__url=url, captures__is_recheck=False).distinct())
    found = [item.digest for item in (inspected, *inspected.children) if item.digest is not None]
    result = inspected.result
    if result.error and (result.http_status in RECHECK_GONE_STATUSES or result.error == CaptureError.DNS):
        state = "gone"
    elif result.error:
        # Transient, or a refusal that proves nothing (403 from a CDN, TLS, a redirect we refuse):
        # try again later rather than call the content changed.
        state = "unknown"
    elif _same_content(known, found):
        state = "online_same"
    elif not found and not result.error:
        state = "gone" if known else "online_changed"  # the page is up but the images are gone
    else:
        state = "online_changed"
    with transaction.atomic():
        contents = contents_get_or_create([inspected, *inspected.children])
        capture = _capture(url, inspected, parent=None, content=_content_of(inspected, contents), recheck=True)
        capture.save()
        Capture.objects.bulk_create(
            [
                _capture(url, child, parent=capture, content=_content_of(child, contents), recheck=True)
                for child in inspected.children
            ]
        )
    return RecheckOutcome(state=state, capture_id=capture.pk)
