"""Endpoints for machines: /healthz for load balancers and orchestrators, /metrics for Prometheus."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reports.lib.metrics import QueueLengthCollector, render_latest
from reports.selectors.health import broker_in_use, health_status


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and broker answer and every queue's workers sent a recent heartbeat;
    503 otherwise, naming the check that failed. No authentication: it says nothing but that."""
    health = health_status()
    return JsonResponse(
        {"status": "ok" if health.healthy else "unhealthy", "checks": health.checks},
        status=200 if health.healthy else 503,
    )


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.HOTLINE_METRICS_TOKEN
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    # Behind a reverse proxy every visitor's request comes from the proxy's address, so an address
    # allow-list would let the whole internet in: there, only the token counts.
    behind_proxy = settings.SECURE_PROXY_SSL_HEADER is not None or "HTTP_X_FORWARDED_FOR" in request.META
    if settings.HOTLINE_METRICS_ALLOW_IPS and not behind_proxy:
        # The connecting peer, never X-Forwarded-For: a scraper talks to the app directly.
        try:
            peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        for allowed in settings.HOTLINE_METRICS_ALLOW_IPS:
            try:
                if peer in ipaddress.ip_network(allowed, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _queue_collectors() -> list[QueueLengthCollector]:
    if not broker_in_use() or not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return []
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
    prefix = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", ""))
    queues = {settings.CELERY_TASK_DEFAULT_QUEUE} | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return [QueueLengthCollector(client, sorted(queues), key_prefix=prefix)]


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. 404 (not 401/403) when the caller is not allowed: nothing to find."""
    if not _metrics_allowed(request):
        return HttpResponse("Not found.", status=404, content_type="text/plain; charset=utf-8")
    body = render_latest(_queue_collectors())
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
