from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.core.cache import cache
from django.test import Client


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


@pytest.fixture
def staff_client(db, settings) -> Callable[..., Client]:
    """Factory: `staff_client(role)` is a test Client logged in *and* verified by a second factor, as a
    new staff user of `role` (analyst, senior_analyst, coordinator, admin) made by `staff_create`.

    The client carries `.user`, `.password` and `.device` (the user's TOTP device). Verification is
    what django_otp's `login(request, device)` does: the device's persistent id in the session under
    DEVICE_ID_SESSION_KEY. Creating and logging in write "staff.created" and "auth.login" audit events.
    """
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from reports.services.staff import staff_create
    from reports.tests.factories import login_verified

    # Each user's password is hashed once; the real hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    numbers = itertools.count(1)

    def make(role: str, *, username: str | None = None) -> Client:
        user, password, _uri = staff_create(username=username or f"{role}-{next(numbers)}", role=role)
        device = TOTPDevice.objects.get(user=user, name="default")
        client = login_verified(Client(), user, device)
        client.user, client.password, client.device = user, password, device
        return client

    return make
