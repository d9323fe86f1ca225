from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle windows live in the cache (Redis on CI): start every test with none.
    cache.clear()
    yield
    cache.clear()
