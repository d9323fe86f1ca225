"""The Celery application. Without REDIS_URL every task runs in-process (see settings)."""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.signals import (
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    worker_process_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hotline.settings")

app = Celery("hotline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["reports"])

# The message header that carries the id of the request (or task) that queued a task, so that the
# task's log lines can be found next to the request's.
REQUEST_ID_HEADER = "hotline_request_id"


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(task: Any = None, **_kwargs: Any) -> None:
    """Before and after each task, what Django does around each request: close connections that are
    broken or older than CONN_MAX_AGE, keep the rest. Celery's own Django fix-up closes every
    connection around every task (a new PostgreSQL connection per task); CELERY_DB_REUSE_MAX in
    settings leaves the choice to this handler instead."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@before_task_publish.connect
def carry_request_id(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    from reports.lib.logcontext import request_id_var

    current = request_id_var.get()
    if headers is not None and current:
        headers.setdefault(REQUEST_ID_HEADER, current)


# Start times of the tasks running in this process, by task id (a prefork child runs one at a time;
# a threaded pool several).
_started: dict[str, float] = {}


@task_prerun.connect
def task_started(task_id: str = "", task: Any = None, **_kwargs: Any) -> None:
    from reports.lib.logcontext import request_id_var, sane_request_id

    _started[task_id] = time.perf_counter()
    if task is not None and not getattr(task.request, "is_eager", False):
        # A task queued from a request logs under that request's id; one queued by beat gets its own.
        incoming = getattr(task.request, REQUEST_ID_HEADER, None) or (task.request.headers or {}).get(REQUEST_ID_HEADER)
        request_id_var.set(sane_request_id(incoming or task_id.replace("-", "")))


@task_postrun.connect
def task_finished(task_id: str = "", task: Any = None, state: str | None = None, **_kwargs: Any) -> None:
    from reports.lib.metrics import TASK_DURATION

    started = _started.pop(task_id, None)
    if started is not None and task is not None:
        TASK_DURATION.labels(task=task.name, state=state or "UNKNOWN").observe(time.perf_counter() - started)


@task_failure.connect
def task_failed(sender: Any = None, **_kwargs: Any) -> None:
    from reports.lib.metrics import TASK_FAILURES

    TASK_FAILURES.labels(task=getattr(sender, "name", "unknown")).inc()


@task_retry.connect
def task_retried(sender: Any = None, **_kwargs: Any) -> None:
    from reports.lib.metrics import TASK_RETRIES

    TASK_RETRIES.labels(task=getattr(sender, "name", "unknown")).inc()


@worker_process_shutdown.connect
def forget_process_gauges(pid: int | None = None, **_kwargs: Any) -> None:
    """As gunicorn's child_exit: a prefork child that exits stops contributing live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
