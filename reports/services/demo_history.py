"""A synthetic history for the demo, the statistics tests and benchmarks/stats.py: `seed_demo --reports N`.

Millions of rows in minutes: rows are generated in Python with explicit ids and written with
PostgreSQL's COPY (batched INSERTs on SQLite), never through the per-row pipeline. Everything is
obviously synthetic: every URL is on a reserved `.example` domain, partners and providers are named
"Synthetic …", hashes are digests of "synthetic-<n>" and no picture exists anywhere.

The shape follows what hotlines publish: public and partner sources, mostly CSAM reports, ~15% of
named URLs reported before (duplicates), known content rising from ~50% to ~65%, the AI-indicated
share and the analysts' "AI-generated" verdicts rising month by month, fewer public reports found
illegal than partner reports (IWF: ~26% of public reports), takedown within hours in NL and days
elsewhere, some notices never answered.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.utils import timezone

from reports.models import (
    Assessment,
    Capture,
    Case,
    Content,
    HashList,
    KnownHash,
    Match,
    Partner,
    Referral,
    Report,
    ReportedUrl,
    Url,
)
from reports.models.choices import AiSuspected, CaseStatus, ReferralKind, ReferralStatus, Virtual

SYNTHETIC_PARTNERS = (
    ("Synthetic Hotline DE", "hotline", "DE"),
    ("Synthetic Platform", "platform", "US"),
    ("Synthetic Police Unit", "police", "NL"),
)
# Hosting countries of new URLs, with weights ("" = not known).
COUNTRIES = (("NL", 22), ("US", 20), ("DE", 9), ("FR", 6), ("RU", 7), ("GB", 5), ("CA", 4), ("SE", 3), ("", 4))
# Median hours from notice to removal, per hosting country (NL: within a day, as Dutch law expects).
REMOVAL_MEDIAN_HOURS = {"NL": 10.0, "DE": 30.0, "GB": 30.0, "SE": 40.0, "FR": 50.0, "CA": 60.0, "US": 70.0}
CHUNK = 20_000


def _insert(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write `rows` (values in `columns` order) into `model`'s table; COPY on PostgreSQL. Columns not
    named that must not be NULL and have a default only in Python, or are text (fields added by other parts of the
    app after this was written) get that default, so a new field never breaks the history."""
    table = model._meta.db_table
    defaults = [
        (f.column, f.get_db_prep_save(f.get_default(), connection))
        for f in model._meta.concrete_fields
        if f.column not in columns
        and not f.primary_key
        and not f.null
        and f.db_default is models.NOT_PROVIDED
        and (f.has_default() or f.empty_strings_allowed)  # a text field's default is ""
    ]
    if defaults:
        columns = [*columns, *(column for column, _ in defaults)]
        values = tuple(value for _, value in defaults)
        rows = (tuple(row) + values for row in rows)
    count = 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608 - names from model meta
    batch: list[Sequence[Any]] = []
    with connection.cursor() as cursor:
        for row in rows:
            batch.append(row)
            if len(batch) >= 2000:
                cursor.executemany(sql, batch)
                count += len(batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
            count += len(batch)
    return count


def _next_id(model: type[models.Model]) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


def _reset_sequences(models_: Iterable[type[models.Model]]) -> None:
    """After explicit ids, PostgreSQL's sequences must continue past them."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models_:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - names from model meta
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )


def _hex(kind: str, n: int) -> str:
    return hashlib.sha256(f"synthetic-{kind}-{n}".encode()).hexdigest()


@dataclass
class Ids:
    """The next free id of each table this generator writes."""

    report: int
    url: int
    sighting: int
    content: int
    capture: int
    match: int
    case: int
    assessment: int
    referral: int
    referral_url: int


@dataclass
class HistoryResult:
    reports: int = 0
    urls: int = 0
    sightings: int = 0
    contents: int = 0
    matches: int = 0
    cases: int = 0
    assessments: int = 0
    referrals: int = 0


def _lognormal_hours(rng: random.Random, median: float, sigma: float = 1.0) -> float:
    return median * math.exp(rng.gauss(0, sigma))


SHARED_LIST = "Synthetic shared list"


def history_exists() -> bool:
    """Whether a synthetic history was seeded here before (its hash list is its first row)."""
    return HashList.objects.filter(name=SHARED_LIST).exists()


def seed_history(*, reports: int, days: int = 730, seed: int = 7, now: datetime | None = None) -> HistoryResult:
    """Add `reports` synthetic reports spread over the last `days` days (more of them recently)."""
    now = now or timezone.now()
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    partners = [
        Partner.objects.get_or_create(name=name, defaults={"kind": kind, "country": country})[0].pk
        for name, kind, country in SYNTHETIC_PARTNERS
    ]
    analysts = [get_user_model().objects.get_or_create(username=f"synthetic-analyst-{i}")[0].pk for i in range(1, 7)]
    hash_lists = []
    for name in (SHARED_LIST, "Synthetic own banked hashes"):
        hash_list, created = HashList.objects.get_or_create(name=name)
        if created:
            KnownHash.objects.bulk_create(
                KnownHash(hash_list=hash_list, algorithm="md5", value=_hex(name, i)[:32]) for i in range(500)
            )
        hash_lists.append(list(hash_list.entries.values_list("pk", flat=True)))
    ids = Ids(
        report=_next_id(Report),
        url=_next_id(Url),
        sighting=_next_id(ReportedUrl),
        content=_next_id(Content),
        capture=_next_id(Capture),
        match=_next_id(Match),
        case=_next_id(Case),
        assessment=_next_id(Assessment),
        referral=_next_id(Referral),
        referral_url=_next_id(Referral.urls.through),
    )
    result = HistoryResult()
    start = now - timedelta(days=days)
    # Oldest first, more reports as time goes by (density rising linearly).
    fractions = sorted(rng.random() ** 0.5 for _ in range(reports))
    state = _State(rng=rng, start=start, now=now, days=days, partners=partners, analysts=analysts, lists=hash_lists)
    for offset in range(0, reports, CHUNK):
        with transaction.atomic():
            _seed_chunk(state, fractions[offset : offset + CHUNK], ids, result)
    _reset_sequences(
        [Report, Url, ReportedUrl, Content, Capture, Match, Case, Assessment, Referral, Referral.urls.through]
    )
    _count_sightings(first_url=state.first_url_id)
    return result


@dataclass
class _State:
    rng: random.Random
    start: datetime
    now: datetime
    days: int
    partners: list[int]
    analysts: list[int]
    lists: list[list[int]]
    first_url_id: int = 0
    # Recent URLs (id, country, provider) that a later report may name again, and earlier contents
    # that new ones may match.
    recent_urls: list[tuple[int, str, str]] = field(default_factory=list)
    recent_contents: list[int] = field(default_factory=list)


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _w in weighted], weights=[w for _v, w in weighted])[0]


def _seed_chunk(state: _State, fractions: list[float], ids: Ids, result: HistoryResult) -> None:
    rng = state.rng
    state.first_url_id = state.first_url_id or ids.url
    recent_urls = state.recent_urls
    reports, urls, sightings, contents, captures, matches = [], [], [], [], [], []
    cases, assessments, referrals, referral_urls = [], [], [], []
    for t in fractions:
        created = state.start + timedelta(days=state.days * t)
        public = rng.random() < 0.55
        partner = None if public else rng.choice(state.partners)
        ai_share = 0.02 + 0.20 * t  # AI-indicated content rises over the months
        category = _pick(
            rng, (("csam", 70), ("ai_csam", int(5 + 25 * t)), ("sextortion", 8), ("other", 10 if public else 2))
        )
        ai_suspected = AiSuspected.YES if rng.random() < ai_share * 1.5 else AiSuspected.UNKNOWN
        report_id = ids.report
        ids.report += 1
        reports.append(
            (
                report_id,
                "public" if public else "partner",
                partner,
                category,
                ai_suspected,
                "",
                "",
                "",
                "",
                "received",
                created,
            )
        )
        result.reports += 1
        if not public and rng.random() < 0.05:
            continue  # a partner's hash-only report: no URL
        for position in range(rng.choice((1, 1, 2, 3, 3, 4, 5, 5))):
            if recent_urls and rng.random() < 0.15:
                url_id, country, provider = rng.choice(recent_urls)
                if any(row[2] == url_id and row[1] == report_id for row in sightings[-6:]):
                    continue  # the same URL twice in one report is one sighting
                sightings.append(
                    (ids.sighting, report_id, url_id, f"https://synthetic.example/{url_id}", position, True, created)
                )
                ids.sighting += 1
                result.sightings += 1
                continue
            url_id = ids.url
            ids.url += 1
            country = _pick(rng, COUNTRIES)
            provider = f"Synthetic Hosting {country or 'XX'}-{rng.randint(1, 4)}"
            canonical = f"https://h{url_id % 9973}.synthetic.example/p/{url_id}"
            fetched = rng.random() < 0.45
            urls.append(
                (
                    url_id,
                    canonical,
                    _hex("url", url_id),
                    "https",
                    f"h{url_id % 9973}.synthetic.example",
                    created,
                    created,
                    1,
                    "fetched" if fetched else "error",
                    "" if fetched else "http_4xx",
                    1,
                    country,
                    provider,
                    False,
                )
            )
            result.urls += 1
            sightings.append((ids.sighting, report_id, url_id, canonical, position, False, created))
            ids.sighting += 1
            result.sightings += 1
            recent_urls.append((url_id, country, provider))
            if len(recent_urls) > 50_000:
                del recent_urls[:10_000]
            if fetched:
                _seed_case(
                    state,
                    t,
                    created,
                    url_id,
                    country,
                    provider,
                    public,
                    ai_share,
                    ids,
                    result,
                    contents,
                    captures,
                    matches,
                    cases,
                    assessments,
                    referrals,
                    referral_urls,
                )
    _insert(
        Report,
        (
            "id",
            "source",
            "partner_id",
            "category",
            "ai_suspected",
            "where_found",
            "description",
            "email",
            "pin_digest",
            "status",
            "created_at",
        ),
        reports,
    )
    _insert(
        Url,
        (
            "id",
            "canonical_url",
            "url_hash",
            "scheme",
            "host",
            "first_seen_at",
            "last_seen_at",
            "sightings",
            "fetch_status",
            "fetch_error",
            "fetch_attempts",
            "hosting_country",
            "hosting_provider",
            "hosting_overridden",
        ),
        urls,
    )
    _insert(
        ReportedUrl, ("id", "report_id", "url_id", "submitted_url", "position", "was_known", "created_at"), sightings
    )
    _insert(
        Content,
        (
            "id",
            "sha256",
            "md5",
            "sha1",
            "pdq",
            "pdq_dihedral",
            "phash",
            "media_type",
            "byte_count",
            "provenance",
            "ai_indicated",
            "preview",
            "quarantined",
            "first_seen_at",
            "matched_at",
        ),
        contents,
    )
    _insert(
        Capture,
        (
            "id",
            "url_id",
            "requested_url",
            "final_url",
            "http_status",
            "declared_type",
            "detected_type",
            "byte_count",
            "error",
            "error_detail",
            "content_id",
            "is_recheck",
            "started_at",
            "finished_at",
        ),
        captures,
    )
    _insert(
        Match, ("id", "content_id", "kind", "distance", "matched_content_id", "known_hash_id", "created_at"), matches
    )
    _insert(
        Case,
        ("id", "url_id", "status", "queue", "priority", "auto_closed", "created_at", "assessed_at", "closed_at"),
        cases,
    )
    _insert(
        Assessment,
        (
            "id",
            "case_id",
            "content_id",
            "analyst_id",
            "verdict",
            "age_group",
            "gender",
            "virtual",
            "site_type",
            "notes",
            "created_at",
        ),
        assessments,
    )
    _insert(
        Referral,
        ("id", "kind", "case_id", "recipient", "reference", "status", "created_at", "sent_at", "removed_at"),
        referrals,
    )
    _insert(Referral.urls.through, ("id", "referral_id", "url_id"), referral_urls)


def _seed_case(
    state: _State,
    t: float,
    created: datetime,
    url_id: int,
    country: str,
    provider: str,
    public: bool,
    ai_share: float,
    ids: Ids,
    result: HistoryResult,
    contents: list,
    captures: list,
    matches: list,
    cases: list,
    assessments: list,
    referrals: list,
    referral_urls: list,
) -> None:
    """A fetched URL: its contents (known or new, AI-indicated or not), a case, assessments, referrals."""
    rng = state.rng
    recent_contents = state.recent_contents
    seen = created + timedelta(minutes=rng.uniform(1, 20))
    content_ids, all_known = [], True
    for _ in range(2 if rng.random() < 0.1 else 1):
        content_id = ids.content
        ids.content += 1
        ai = rng.random() < ai_share
        digest = _hex("content", content_id)
        contents.append(
            (
                content_id,
                digest,
                digest[:32],
                digest[:40],
                "",
                "[]",
                "",
                "image/jpeg",
                50_000,
                '{"synthetic": true}' if not ai else '{"synthetic": true, "ai_indicated": ["c2pa"]}',
                ai,
                b"",
                False,
                seen,
                seen,
            )
        )
        captures.append(
            (
                ids.capture,
                url_id,
                f"https://synthetic.example/{url_id}",
                "",
                200,
                "image/jpeg",
                "image/jpeg",
                50_000,
                "",
                "",
                content_id,
                False,
                seen,
                seen,
            )
        )
        ids.capture += 1
        result.contents += 1
        if rng.random() < 0.5 + 0.15 * t:
            if recent_contents and rng.random() < 0.7:
                matches.append(
                    (ids.match, content_id, "pdq", rng.randint(0, 20), rng.choice(recent_contents), None, seen)
                )
            else:
                entries = rng.choice(state.lists)
                matches.append((ids.match, content_id, "md5", 0, None, rng.choice(entries), seen))
            ids.match += 1
            result.matches += 1
        else:
            all_known = False
        recent_contents.append(content_id)
        if len(recent_contents) > 50_000:
            del recent_contents[:10_000]
        content_ids.append((content_id, ai))
    case_id = ids.case
    ids.case += 1
    result.cases += 1
    if created > state.now - timedelta(days=2):
        cases.append((case_id, url_id, CaseStatus.OPEN, "new_unknown", 0, False, seen, None, None))
        return
    auto = all_known and rng.random() < 0.6
    assessed = seen + timedelta(hours=0.02 if auto else _lognormal_hours(rng, 18.0, 1.0))
    if assessed > state.now:
        assessed = state.now - timedelta(minutes=1)
    cases.append(
        (
            case_id,
            url_id,
            CaseStatus.CLOSED,
            "known_new_location" if auto else "new_unknown",
            0,
            auto,
            seen,
            assessed,
            assessed,
        )
    )
    illegal_case = False
    for content_id, ai in content_ids:
        illegal = rng.random() < (0.30 if public else 0.80)
        if illegal:
            verdict = "baseline" if rng.random() < 0.6 else "national"
        else:
            verdict = _pick(rng, (("not_illegal", 60), ("adult", 30), ("unreachable", 10)))
        illegal_case = illegal_case or illegal
        if ai:
            virtual = Virtual.AI if rng.random() < 0.8 else Virtual.REAL
        else:
            virtual = _pick(rng, (("ai", int(100 * (0.03 + 0.12 * t))), ("drawn", 2), ("unknown", 10), ("real", 75)))
        assessments.append(
            (
                ids.assessment,
                case_id,
                content_id,
                None if auto else rng.choice(state.analysts),
                verdict,
                "",
                "",
                virtual,
                "",
                "",
                assessed,
            )
        )
        ids.assessment += 1
        result.assessments += 1
    if not illegal_case:
        return
    if country and rng.random() < 0.85:
        sent = assessed + timedelta(hours=rng.uniform(0.2, 3))
        removed = None
        if rng.random() < 0.88:
            removed = sent + timedelta(hours=_lognormal_hours(rng, REMOVAL_MEDIAN_HOURS.get(country, 120.0), 0.9))
            if removed > state.now:
                removed = None
        status = ReferralStatus.REMOVED if removed else ReferralStatus.SENT
        referrals.append(
            (
                ids.referral,
                ReferralKind.HOSTING_NTD,
                case_id,
                f"Synthetic abuse desk of {provider}",
                "",
                status,
                assessed,
                sent,
                removed,
            )
        )
        referral_urls.append((ids.referral_url, ids.referral, url_id))
        ids.referral += 1
        ids.referral_url += 1
        result.referrals += 1
    if rng.random() < 0.1:
        referrals.append(
            (
                ids.referral,
                ReferralKind.POLICE,
                case_id,
                "Synthetic police unit",
                "",
                ReferralStatus.SENT,
                assessed,
                assessed,
                None,
            )
        )
        referral_urls.append((ids.referral_url, ids.referral, url_id))
        ids.referral += 1
        ids.referral_url += 1
        result.referrals += 1


def _count_sightings(*, first_url: int) -> None:
    """URLs named again: their sightings counter, as intake keeps it (one UPDATE, not one per URL)."""
    url, sighting = Url._meta.db_table, ReportedUrl._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {url} SET sightings = counted.n + 1 FROM "  # noqa: S608 - names from model meta
            f"(SELECT url_id, COUNT(*) AS n FROM {sighting} WHERE url_id >= %s AND was_known GROUP BY url_id) "
            "AS counted "
            f"WHERE {url}.id = counted.url_id",
            [first_url],
        )
