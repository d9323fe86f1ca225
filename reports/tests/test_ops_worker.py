"""Operations with a real Celery worker on real Redis: heartbeats make /healthz healthy, and a task queued
by a request logs, in the worker, under that request's id (JSON logs)."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache

from reports.lib.logcontext import request_id_var
from reports.lib.synthetic import SyntheticSite, default_routes
from reports.tasks.maintenance import heartbeat
from reports.tests import test_celery_integration as integration
from reports.tests.test_celery_integration import SKIP_REASON, Workers, wait_until

# The real broker and worker fixtures of the pipeline's integration tests, used here as they are.
broker = integration.broker
workers = integration.workers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
    pytest.mark.django_db(transaction=True),
]


def test_worker_heartbeats_make_healthz_healthy_and_tasks_log_under_the_request_id(
    workers: Workers,
    broker,
    settings,
    client,
) -> None:
    settings.CELERY_BROKER_URL = broker.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": broker.prefix}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.HOTLINE_HEALTH_QUEUES = ["default", "fetch", "match"]

    before = client.get("/healthz")
    assert before.status_code == 503
    assert before.json()["checks"]["workers"]["fetch"] == "no heartbeat"

    with SyntheticSite(routes=default_routes()) as site:
        worker = workers.start(site, HOTLINE_LOG_FORMAT="json")
        token = request_id_var.set("ops-it-request-0001")
        try:
            for queue in ("default", "fetch", "match"):
                heartbeat.apply_async(args=(queue,), queue=queue)  # as beat sends them
        finally:
            request_id_var.reset(token)
        wait_until(
            lambda: all(cache.get(f"heartbeat:{queue}") for queue in ("default", "fetch", "match")),
            timeout=30,
            what="a heartbeat from every queue",
            workers=workers,
        )

    after = client.get("/healthz")
    assert after.status_code == 200, after.json()
    assert after.json()["checks"]["broker"] == "ok"

    time.sleep(0.5)
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    done = [line for line in lines if "succeeded" in line["message"] and "heartbeat" in line["message"]]
    assert len(done) == 3, worker.log()[-3000:]
    assert {line.get("request_id") for line in done} == {"ops-it-request-0001"}
