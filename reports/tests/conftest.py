from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle windows live in the cache (Redis on CI): start every test with none.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_pipeline(settings):
    # Intake tests exercise intake alone; pipeline tests switch this back on (the `pipeline` fixture).
    settings.HOTLINE_ENQUEUE_TASKS = False


@pytest.fixture
def pipeline(settings):
    """Run the pipeline in-process: tasks eager (also when REDIS_URL points at a real broker) and a
    fresh matching index per test."""
    from hotline.celery import app
    from reports.selectors.match_index import reset_match_index

    settings.HOTLINE_ENQUEUE_TASKS = True
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    reset_match_index()
    yield settings
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous
    reset_match_index()
