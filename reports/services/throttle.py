"""Rate limits and throttles that never store who the client is.

A client is known only by an HMAC of its address with the server's pepper, and only for the
current hour's window in the cache: nothing is written to the database.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

WINDOW_SECONDS = 3600


def client_address(request: HttpRequest) -> str:
    """The client's address, trusting only as many X-Forwarded-For hops as there are proxies."""
    proxies = settings.HOTLINE_TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def client_key(request: HttpRequest) -> str:
    address = client_address(request)
    return hmac.new(settings.HOTLINE_PEPPER.encode(), f"client:{address}".encode(), hashlib.sha256).hexdigest()[:32]


def _window_key(scope: str, key: str, window: int) -> str:
    return f"throttle:{scope}:{key}:{window}:{int(time.time() // window)}"


def throttle_count(*, scope: str, key: str, window: int = WINDOW_SECONDS) -> int:
    return int(cache.get(_window_key(scope, key, window), 0))


def throttle_hit(*, scope: str, key: str, window: int = WINDOW_SECONDS) -> int:
    """Count one event in the current fixed window and return the new count."""
    window_key = _window_key(scope, key, window)
    if cache.add(window_key, 1, timeout=window):
        return 1
    try:
        return int(cache.incr(window_key))
    except ValueError:  # expired between add and incr
        cache.add(window_key, 1, timeout=window)
        return 1


def throttle_exceeded(*, scope: str, key: str, limit: int, window: int = WINDOW_SECONDS) -> bool:
    return throttle_count(scope=scope, key=key, window=window) >= limit


def throttle_retry_after(*, window: int) -> int:
    """Seconds until the current fixed window ends."""
    return max(1, window - int(time.time()) % window)
