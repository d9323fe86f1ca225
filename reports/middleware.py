"""Response headers every page gets."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from reports.lib.logcontext import request_id_var, sane_request_id
from reports.views.decorators import unverified_staff_redirect

REQUEST_ID_HEADER = "X-Request-ID"
logger = logging.getLogger(__name__)

# No inline script or style anywhere: everything comes from our own static files.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


class RequestIdMiddleware:
    """Give every request an id: a sane incoming X-Request-ID (set by the proxy, so one id follows
    the request through both logs) or a new one. It is on every log record of the request
    (reports.lib.logcontext), on the tasks the request queues (hotline/celery.py), and echoed in the
    response so that a user's "it failed" can be found in the logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"
        )
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class BodySizeLimitMiddleware:
    """Refuse over-large bodies with 413 before anything reads them, by declared length.

    Hash-list imports may be large (100,000 entries), other API calls less so, and the public
    form far less: its 50 URLs and description fit in a few hundred kilobytes.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @staticmethod
    def limit_for(path: str) -> int:
        if path.startswith("/api/"):
            if path.rstrip("/").endswith("/entries"):
                return settings.HOTLINE_API_MAX_HASHLIST_BODY_BYTES
            return settings.HOTLINE_API_MAX_BODY_BYTES
        return settings.HOTLINE_MAX_FORM_BODY_BYTES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.limit_for(request.path):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": "The request body is too large."}, status=413)
            return HttpResponse("The request is too large.", status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class StaffOTPRequiredMiddleware:
    """Defence in depth for staff pages: no request under /staff/ reaches a view unless its user has
    passed the second factor in this session, whether or not the view is wrapped in `staff_view`.

    Roles and permissions stay with the views; this only refuses password-only sessions. The public
    pages and the partner API (/api/, token-authenticated) are not affected.
    """

    PREFIX = "/staff/"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(self.PREFIX):
            response = unverified_staff_redirect(request)
            if response is not None:
                return response
        return self.get_response(request)


class ServiceUnavailableMiddleware:
    """A database or Redis outage answers 503 with Retry-After, not a 500.

    The report was not stored (its transaction failed), and the answer says so: "try again shortly"
    is what a reporter or a partner's client should do, and what monitoring should tell apart from
    a bug. Everything else still propagates as it did.
    """

    RETRY_AFTER_SECONDS = 30
    OUTAGES = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, self.OUTAGES):
            return None
        # With the traceback: an OperationalError is usually an outage, but can be a bug (a timeout, a lock).
        logger.error("service unavailable: %s: %s", type(exception).__name__, exception, exc_info=exception)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {"detail": "The service is briefly unavailable; nothing was stored. Retry after the given seconds."},
                status=503,
            )
        else:
            response = HttpResponse(
                "Hotline is briefly unavailable and nothing was stored. Please try again in a minute.",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response
