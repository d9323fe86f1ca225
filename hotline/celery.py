"""The Celery application. Without REDIS_URL every task runs in-process (see settings)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hotline.settings")

app = Celery("hotline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["reports"])


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
