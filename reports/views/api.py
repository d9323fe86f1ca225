"""The partner API (v1): token-authenticated intake of URLs and hashes, read-back, hash lists.

Views validate (schemas in api_schemas.py), call one service or selector, and shape the answer.
Every error is JSON with a `detail` message; validation errors also name the JSON path.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI, Query, Router
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status
from ninja.security import HttpBearer
from pydantic import ValidationError as PydanticValidationError

from reports.models import ApiToken, HashList, Partner
from reports.models.choices import TokenScope
from reports.selectors.partners import (
    partner_report_detail,
    partner_report_get,
    partner_reports_page,
    report_submit_summaries,
    token_authenticate,
)
from reports.services.matching import hashlist_create, hashlist_export_csv, hashlist_import, parse_hash_csv
from reports.services.partners import PartnerReportInput, partner_reports_submit, token_mark_used
from reports.services.throttle import throttle_hit, throttle_retry_after
from reports.views.api_schemas import (
    BatchOut,
    ErrorOut,
    HashEntriesIn,
    HashListIn,
    HashListOut,
    ImportOut,
    ReportDetailOut,
    ReportIn,
    ReportOut,
    ReportPageOut,
    UtcDatetime,
)

RATE_WINDOW = 60


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


class PartnerToken(HttpBearer):
    """`Authorization: Bearer <token>`; sets request.partner and request.api_token."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        api_token = token_authenticate(token)
        if api_token is None:
            return None
        token_mark_used(token=api_token)
        count = throttle_hit(scope="api", key=str(api_token.partner_id), window=RATE_WINDOW)
        if count > settings.HOTLINE_API_RATE_LIMIT:
            raise RateLimited(throttle_retry_after(window=RATE_WINDOW))
        request.api_token = api_token  # type: ignore[attr-defined]
        request.partner = api_token.partner  # type: ignore[attr-defined]
        return api_token


api = NinjaAPI(
    title="Hotline partner API",
    version="1.0.0",
    description="Report URLs and hashes to Hotline, read back what became of them, and manage hash lists. "
    "Authenticate with `Authorization: Bearer <token>` (from `manage.py create_partner`).",
    urls_namespace="api-v1",
    openapi_url="/schema/",
    docs_url="/docs/",
    auth=PartnerToken(),
)


def _json_error(request: HttpRequest, status: int, detail: str, errors: list[dict[str, str]] | None = None) -> Any:
    body: dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = errors
    return api.create_response(request, body, status=status)


def _json_path(loc: tuple[Any, ...] | list[Any], prefix: str = "$") -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _pydantic_errors(errors: list[dict[str, Any]], prefix: str = "$", skip: int = 0) -> list[dict[str, str]]:
    described = []
    for error in errors:
        loc = [part for part in error.get("loc", ())[skip:] if part not in ("function-after[_to_url_item(), str]",)]
        message = str(error.get("msg", "invalid value"))
        message = message.removeprefix("Value error, ")
        described.append({"path": _json_path(loc, prefix), "message": message})
    return described


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        loc = list(error.get("loc", ()))
        # ninja prefixes ("body", "<param name>", ...) or ("query", ...); the JSON path starts after.
        if loc and loc[0] == "body":
            loc = loc[2:]
        elif loc and loc[0] in ("query", "path", "header"):
            loc = loc[1:]
        errors.extend(_pydantic_errors([{**error, "loc": loc}]))
    return _json_error(request, 400, "The request is not valid.", errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _json_error(request, 401, "Missing, invalid or revoked token. Send 'Authorization: Bearer <token>'.")
    response["WWW-Authenticate"] = 'Bearer realm="hotline"'
    return response


@api.exception_handler(RateLimited)
def _rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = _json_error(request, 429, "Too many requests; slow down and retry after the given seconds.")
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _json_error(request, 413, "The request body is too large.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _json_error(request, exc.status_code, str(exc))


def _partner(request: HttpRequest, scope: TokenScope) -> Partner:
    token: ApiToken = request.api_token  # type: ignore[attr-defined]
    if scope.value not in token.scopes:
        raise HttpError(403, f"This token does not have the '{scope.value}' scope.")
    return token.partner


def _to_input(report: ReportIn, idempotency_key: str | None = None) -> PartnerReportInput:
    return PartnerReportInput(
        url_items=_unique_urls(report),
        hashes=list(dict.fromkeys((h.algorithm, h.value) for h in report.hashes)),
        category=report.category,
        ai_suspected={True: "yes", False: "no", None: "unknown"}[report.ai_suspected],
        note=report.note,
        found_at=report.found_at,
        external_id=report.external_id,
        idempotency_key=idempotency_key if report.external_id is None else None,
    )


def _unique_urls(report: ReportIn) -> list[Any]:
    seen: set[str] = set()
    unique = []
    for item in report.urls:
        canonical = item.canonical.url  # type: ignore[attr-defined]
        if canonical not in seen:
            seen.add(canonical)
            unique.append(item)
    return unique


reports_router = Router(tags=["reports"])
hashlists_router = Router(tags=["hash lists"])


@reports_router.post(
    "/reports",
    response={
        200: ReportOut,
        201: ReportOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        413: ErrorOut,
        429: ErrorOut,
    },
    summary="Submit one report",
    description="201 with the new report; 200 with the first report when the same `external_id` "
    "(or `Idempotency-Key` header) was sent before by this partner.",
)
def submit_report(request: HttpRequest, payload: ReportIn) -> Status[dict[str, Any]]:
    partner = _partner(request, TokenScope.SUBMIT)
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 0 < len(key) <= 200 or "\x00" in key):
        raise HttpError(400, "The Idempotency-Key header must be 1 to 200 characters, none of them null.")
    result = partner_reports_submit(partner=partner, items=[_to_input(payload, key)])[0]
    return Status(201 if result.created else 200, report_submit_summaries([result.report])[0])


@reports_router.post(
    "/reports/batch",
    response={200: BatchOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 413: ErrorOut, 429: ErrorOut},
    summary="Submit up to 1,000 reports",
    description="One result per item, in order. An invalid item is reported with its errors and does "
    "not stop the others.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["reports"],
                        "properties": {
                            "reports": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": settings.HOTLINE_API_MAX_BATCH,
                                "items": {"$ref": "#/components/schemas/ReportIn"},
                            }
                        },
                    }
                }
            },
        }
    },
)
def submit_batch(request: HttpRequest) -> dict[str, Any]:
    partner = _partner(request, TokenScope.SUBMIT)
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise HttpError(400, "The body is not valid JSON.") from exc
    items = body.get("reports") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise HttpError(400, "$.reports must be a non-empty array of reports.")
    if len(items) > settings.HOTLINE_API_MAX_BATCH:
        raise HttpError(400, f"$.reports holds at most {settings.HOTLINE_API_MAX_BATCH} reports.")
    valid: list[tuple[int, PartnerReportInput]] = []
    results: list[dict[str, Any]] = []
    for index, raw in enumerate(items):
        try:
            report = ReportIn.model_validate(raw)
        except PydanticValidationError as exc:
            errors = _pydantic_errors(exc.errors(), prefix=f"$.reports[{index}]")
            results.append({"index": index, "result": "invalid", "report": None, "errors": errors})
            continue
        valid.append((index, _to_input(report)))
        results.append({"index": index, "result": "pending", "report": None, "errors": []})
    stored = partner_reports_submit(partner=partner, items=[item for _, item in valid]) if valid else []
    summaries = report_submit_summaries([result.report for result in stored])
    for (index, _), result, summary in zip(valid, stored, summaries, strict=True):
        results[index]["result"] = "created" if result.created else "replayed"
        results[index]["report"] = summary
    counts = {kind: sum(1 for r in results if r["result"] == kind) for kind in ("created", "replayed", "invalid")}
    return {**counts, "results": results}


@reports_router.get(
    "/reports/{report_id}",
    response={200: ReportDetailOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut},
    summary="Read back one of your reports",
)
def get_report(request: HttpRequest, report_id: int) -> dict[str, Any]:
    partner = _partner(request, TokenScope.READ)
    report = partner_report_get(partner=partner, report_id=report_id)
    if report is None:
        raise HttpError(404, "No such report.")
    return partner_report_detail(partner=partner, report=report)


def _decode_cursor(cursor: str) -> int:
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise HttpError(400, "The cursor is not valid; use next_cursor from the previous page.") from exc
    if value < 0:
        raise HttpError(400, "The cursor is not valid; use next_cursor from the previous page.")
    return value


def _encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


@reports_router.get(
    "/reports",
    response={200: ReportPageOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 429: ErrorOut},
    summary="Page through your reports",
)
def list_reports(
    request: HttpRequest,
    since: UtcDatetime | None = Query(
        None, description="Only reports received at or after this time (UTC when no offset is given)."
    ),
    cursor: str | None = Query(None, max_length=40, description="next_cursor of the previous page."),
    limit: int = Query(100, ge=1, le=500),
) -> dict[str, Any]:
    partner = _partner(request, TokenScope.READ)
    after_id = _decode_cursor(cursor) if cursor else None
    page, next_id = partner_reports_page(partner=partner, since=since, after_id=after_id, limit=limit)
    return {
        "results": [
            {
                "id": r.pk,
                "external_id": r.external_id,
                "status": r.status,
                "category": r.category,
                "created_at": r.created_at,
            }
            for r in page
        ],
        "next_cursor": _encode_cursor(next_id) if next_id is not None else None,
    }


def _own_hash_list(partner: Partner, list_id: int) -> HashList:
    hash_list = HashList.objects.filter(pk=list_id, source=partner).first()
    if hash_list is None:
        raise HttpError(404, "No such hash list.")
    return hash_list


def _hash_list_out(hash_list: HashList, entries: int) -> dict[str, Any]:
    return {
        "id": hash_list.pk,
        "name": hash_list.name,
        "default_category": hash_list.default_category,
        "active": hash_list.active,
        "entries": entries,
    }


@hashlists_router.get("/hashlists", response={200: list[HashListOut], 401: ErrorOut, 403: ErrorOut, 429: ErrorOut})
def list_hash_lists(request: HttpRequest) -> list[dict[str, Any]]:
    partner = _partner(request, TokenScope.HASHLISTS)
    lists = HashList.objects.filter(source=partner).annotate(n=Count("entries")).order_by("name")
    return [_hash_list_out(hash_list, hash_list.n) for hash_list in lists]  # type: ignore[attr-defined]


@hashlists_router.post(
    "/hashlists",
    response={
        201: HashListOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        409: ErrorOut,
        413: ErrorOut,
        429: ErrorOut,
    },
)
def create_hash_list(request: HttpRequest, payload: HashListIn) -> Status[dict[str, Any]]:
    partner = _partner(request, TokenScope.HASHLISTS)
    try:
        hash_list = hashlist_create(name=payload.name, source=partner, default_category=payload.default_category)
    except (IntegrityError, DjangoValidationError) as exc:
        raise HttpError(409, "A hash list with this name exists.") from exc
    return Status(201, _hash_list_out(hash_list, 0))


def _json_entries(request: HttpRequest) -> Iterator[tuple[str, str, str]]:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise HttpError(400, "The body is not valid JSON.") from exc
    try:
        parsed = HashEntriesIn.model_validate(body)
    except PydanticValidationError as exc:
        errors = _pydantic_errors(exc.errors())
        raise _BadEntries(errors) from exc
    return ((entry.algorithm, entry.value, entry.category) for entry in parsed.entries)


class _BadEntries(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors


@api.exception_handler(_BadEntries)
def _bad_entries(request: HttpRequest, exc: _BadEntries) -> HttpResponse:
    return _json_error(request, 400, "The request is not valid.", exc.errors)


@hashlists_router.post(
    "/hashlists/{list_id}/entries",
    response={
        200: ImportOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        429: ErrorOut,
    },
    summary="Import entries (JSON or CSV)",
    description='JSON `{"entries": [{"algorithm", "value", "category"?}]}` or `text/csv` with lines '
    "`algorithm,value[,category]` (a header line is allowed). Up to 100,000 entries; duplicates are skipped.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HashEntriesIn"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def import_entries(request: HttpRequest, list_id: int) -> dict[str, Any]:
    partner = _partner(request, TokenScope.HASHLISTS)
    hash_list = _own_hash_list(partner, list_id)
    content_type = request.content_type or ""
    if content_type == "text/csv":
        entries: Iterator[tuple[str, str, str]] = parse_hash_csv(request)  # type: ignore[arg-type]
    elif content_type in ("application/json", ""):
        entries = _json_entries(request)
    else:
        raise HttpError(415, "Send application/json or text/csv.")
    try:
        result = hashlist_import(
            hash_list=hash_list, entries=entries, max_entries=settings.HOTLINE_API_MAX_HASHLIST_ENTRIES
        )
    except ValueError as exc:
        raise HttpError(413, str(exc)) from exc
    return result.as_dict()


@hashlists_router.get(
    "/hashlists/{list_id}/entries",
    response={200: None, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut},
    summary="Export entries as CSV",
    openapi_extra={
        "responses": {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}}
    },
)
def export_entries(request: HttpRequest, list_id: int) -> StreamingHttpResponse:
    partner = _partner(request, TokenScope.HASHLISTS)
    hash_list = _own_hash_list(partner, list_id)
    response = StreamingHttpResponse(hashlist_export_csv(hash_list), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="hashlist-{hash_list.pk}.csv"'
    return response


api.add_router("", reports_router)
api.add_router("", hashlists_router)
