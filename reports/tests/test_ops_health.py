"""/healthz: what a load balancer or an operator sees when something is down."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from reports.services.maintenance import heartbeat_record

pytestmark = pytest.mark.django_db

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.fixture
def in_process(settings):
    """The demo's set-up: no broker, tasks run in-process."""
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def with_broker(settings):
    """A deployment with a broker; a real Redis when the suite has one, else an address nobody answers."""
    settings.CELERY_BROKER_URL = REDIS_URL or "redis://127.0.0.1:1/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.HOTLINE_HEALTH_QUEUES = ["default", "fetch", "match"]
    settings.HOTLINE_HEARTBEAT_MAX_AGE = 180
    return settings


def test_in_process_demo_is_healthy_and_says_broker_and_workers_are_not_used(client, in_process) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "not used", "workers": "not used"},
    }
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a real broker)")
def test_healthy_when_every_queue_has_a_recent_heartbeat(client, with_broker) -> None:
    for queue in ("default", "fetch", "match"):
        heartbeat_record(queue=queue, now=time.time() - 5)

    response = client.get("/healthz")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["checks"]["broker"] == "ok"
    assert body["checks"]["workers"]["fetch"]["last_heartbeat_seconds_ago"] >= 5


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a real broker)")
def test_a_queue_without_workers_makes_it_unhealthy_and_says_which(client, with_broker) -> None:
    heartbeat_record(queue="default", now=time.time())
    heartbeat_record(queue="fetch", now=time.time() - 600)  # its workers stopped ten minutes ago

    response = client.get("/healthz")

    assert response.status_code == 503
    workers = response.json()["checks"]["workers"]
    assert workers["default"]["last_heartbeat_seconds_ago"] < 60
    assert workers["fetch"]["last_heartbeat_seconds_ago"] >= 600
    assert workers["match"] == "no heartbeat"


def test_an_unreachable_broker_is_named(client, with_broker, settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    started = time.monotonic()

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["broker"].startswith("error: ")
    assert body["checks"]["database"] == "ok"
    assert time.monotonic() - started < 10  # a health check must answer quickly, even when things are down
    # Never the broker's address (or anything else from the settings) in the answer.
    assert "127.0.0.1" not in response.content.decode()


def test_an_unreachable_database_is_named(client, in_process, monkeypatch) -> None:
    def broken_cursor(*args, **kwargs):
        raise ConnectionError("database is down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error: ConnectionError"


def test_the_heartbeat_task_records_its_queue(with_broker) -> None:
    from django.core.cache import cache

    from reports.tasks.maintenance import heartbeat

    heartbeat.apply(args=("match",))

    assert time.time() - cache.get("heartbeat:match") < 5


def test_beat_sends_a_heartbeat_to_every_queue_and_they_expire(settings) -> None:
    beats = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"].endswith(".heartbeat")]
    assert sorted(entry["options"]["queue"] for entry in beats) == ["default", "fetch", "match"]
    assert all(entry["options"]["expires"] <= entry["schedule"] for entry in beats)
