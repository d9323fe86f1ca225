"""Shapes of the partner API (v1). These classes validate input and generate the OpenAPI schema.

Input shapes are plain pydantic models: ninja's Schema runs model validators twice, which for a
batch of 1,000 reports means canonicalising every URL twice.

The shapes are a published contract: partners code against them. Add fields; never rename.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from django.conf import settings
from ninja import Schema
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from reports.lib.hashes import InvalidHash, normalise_hash
from reports.lib.urls import InvalidUrl, canonicalize_url
from reports.services.intake import UrlItem

CategoryName = Literal["csam", "ai_csam", "sextortion", "other"]
AlgorithmName = Literal["md5", "sha1", "sha256", "pdq", "phash"]
MAX_ITEMS = settings.HOTLINE_API_MAX_ITEMS_PER_REPORT


def _to_url_item(value: str) -> UrlItem:
    """Validate one URL with the public form's rules; the canonical form travels with it."""
    try:
        canonical = canonicalize_url(
            value, allow_hosts=settings.HOTLINE_FETCH_ALLOW_HOSTS, max_length=settings.HOTLINE_MAX_URL_LENGTH
        )
    except InvalidUrl as exc:
        raise ValueError(f"{exc.code}: {exc.message}") from exc
    return UrlItem(submitted=value, canonical=canonical)


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; the public form refuses it too (Django's ProhibitNullCharactersValidator).
    if "\x00" in value:
        raise ValueError("null characters are not allowed")
    return value


def _to_utc(value: datetime) -> datetime:
    """A naive time is taken as UTC; a time whose UTC equivalent falls outside years 1-9999 is refused
    (the databases cannot store it, and PostgreSQL refuses offsets beyond ±15:59 anyway)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is out of range") from exc


# Free text that is stored: no NUL characters.
Text = Annotated[str, AfterValidator(_no_nul)]
# A point in time, stored as UTC.
UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
AwareUtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

# Documented as a string; after validation the value is a UrlItem carrying its canonical form.
ReportedUrlStr = Annotated[
    str, Field(min_length=1, max_length=settings.HOTLINE_MAX_URL_LENGTH), AfterValidator(_to_url_item)
]


class HashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: AlgorithmName
    value: str = Field(min_length=16, max_length=64, description="Hex; md5 32, sha1 40, sha256 64, pdq 64, phash 16.")

    @field_validator("value")
    @classmethod
    def _hex(cls, value: str, info: object) -> str:
        algorithm = getattr(info, "data", {}).get("algorithm")
        if algorithm is None:  # the algorithm itself was invalid; that error is reported
            return value
        try:
            return normalise_hash(algorithm, value)[1]
        except InvalidHash as exc:
            raise ValueError(str(exc)) from exc


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: Text | None = Field(
        None, min_length=1, max_length=200, description="Your id; resubmitting it returns the first report."
    )
    urls: list[ReportedUrlStr] = Field(default_factory=list, max_length=MAX_ITEMS)
    hashes: list[HashIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    category: CategoryName
    ai_suspected: bool | None = None
    note: Text = Field("", max_length=settings.HOTLINE_MAX_DESCRIPTION_LENGTH)
    found_at: AwareUtcDatetime | None = Field(None, description="When you found it (ISO 8601 with a time zone).")

    @model_validator(mode="after")
    def _something_to_report(self) -> ReportIn:
        if not self.urls and not self.hashes:
            raise ValueError("a report needs at least one URL or hash")
        return self


class MatchOut(Schema):
    kind: AlgorithmName
    distance: int
    content: str | None = Field(description="SHA-256 of the matched content; null for a hash-list entry.")
    hash_list: str | None = Field(description="Name of the matched hash list; null for content.")


class UrlOut(Schema):
    url: str
    canonical_url: str
    known: bool = Field(description="The canonical URL had been reported before this report.")


class HashOut(Schema):
    algorithm: AlgorithmName
    value: str
    matches: list[MatchOut]


class ReportOut(Schema):
    id: int
    status: str
    urls: list[UrlOut]
    hashes: list[HashOut]


class BatchItemError(Schema):
    path: str
    message: str


class BatchItemOut(Schema):
    index: int
    result: Literal["created", "replayed", "invalid"]
    report: ReportOut | None = None
    errors: list[BatchItemError] = Field(default_factory=list)


class BatchOut(Schema):
    created: int
    replayed: int
    invalid: int
    results: list[BatchItemOut]


class ProvenanceOut(Schema):
    ai_indicated: bool
    signals: list[dict[str, object]]


class ContentOut(Schema):
    sha256: str
    md5: str
    sha1: str
    pdq: str | None
    phash: str | None
    matches: list[MatchOut]
    provenance: ProvenanceOut


class UrlDetailOut(UrlOut):
    fetch_status: str = Field(description="pending until the fetch is final, then fetched or an error kind.")
    contents: list[ContentOut]
    case_status: str | None


class ReportDetailOut(Schema):
    id: int
    external_id: str | None
    status: str
    category: str
    ai_suspected: bool | None
    created_at: datetime
    urls: list[UrlDetailOut]
    hashes: list[HashOut]
    outcome: str | None = Field(description="Referral outcome (e.g. removed), for partner kinds allowed to see it.")


class ReportSummaryOut(Schema):
    id: int
    external_id: str | None
    status: str
    category: str
    created_at: datetime


class ReportPageOut(Schema):
    results: list[ReportSummaryOut]
    next_cursor: str | None


class HashListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    default_category: CategoryName = "csam"


class HashListOut(Schema):
    id: int
    name: str
    default_category: str
    active: bool
    entries: int


class HashEntryIn(BaseModel):
    algorithm: str = Field(max_length=20)
    value: str = Field(max_length=200)
    category: str = Field("", max_length=20)


class HashEntriesIn(BaseModel):
    entries: list[HashEntryIn] = Field(max_length=settings.HOTLINE_API_MAX_HASHLIST_ENTRIES)


class ImportErrorOut(Schema):
    entry: int
    message: str


class ImportOut(Schema):
    received: int
    added: int
    duplicates: int
    invalid: int
    errors: list[ImportErrorOut]


class ErrorOut(Schema):
    detail: str
    errors: list[BatchItemError] = Field(default_factory=list)
