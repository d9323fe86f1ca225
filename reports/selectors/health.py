"""What /healthz reports: can this process reach the database and the broker, and are workers taking
messages from every queue? Each check says "ok", "not used" or what failed, never a secret."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from reports.services.maintenance import HEARTBEAT_KEY

OK = "ok"
NOT_USED = "not used"


@dataclass
class Health:
    checks: dict[str, object] = field(default_factory=dict)
    healthy: bool = True

    def fail(self, name: str, reason: str) -> None:
        self.checks[name] = reason
        self.healthy = False


def broker_in_use() -> bool:
    """False in the in-process demo (no broker: tasks run eagerly)."""
    return settings.CELERY_BROKER_URL != "memory://" and not settings.CELERY_TASK_ALWAYS_EAGER


def _check_database(health: Health) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # whatever the driver raises, the answer is "down"
        health.fail("database", f"error: {type(exc).__name__}")
    else:
        health.checks["database"] = OK


def _check_broker(health: Health) -> None:
    if not broker_in_use():
        health.checks["broker"] = NOT_USED
        return
    from kombu import Connection

    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            connect_timeout=2,
            transport_options={**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "socket_timeout": 2},
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            # A Redis broker: one PING through the transport's client proves it answers commands.
            client = getattr(conn.default_channel, "client", None)
            if client is not None:
                client.ping()
    except Exception as exc:
        health.fail("broker", f"error: {type(exc).__name__}")
    else:
        health.checks["broker"] = OK


def _check_workers(health: Health, *, now: float) -> None:
    if not broker_in_use():
        health.checks["workers"] = NOT_USED
        return
    queues = settings.HOTLINE_HEALTH_QUEUES
    try:
        beats = cache.get_many([HEARTBEAT_KEY.format(queue=queue) for queue in queues])
    except Exception as exc:
        health.fail("workers", f"error: cache {type(exc).__name__}")
        return
    result: dict[str, object] = {}
    late = False
    for queue in queues:
        seen = beats.get(HEARTBEAT_KEY.format(queue=queue))
        if seen is None:
            result[queue] = "no heartbeat"
            late = True
            continue
        age = max(0, round(now - float(seen)))
        result[queue] = {"last_heartbeat_seconds_ago": age}
        if age > settings.HOTLINE_HEARTBEAT_MAX_AGE:
            late = True
    health.checks["workers"] = result
    if late:
        health.healthy = False


def health_status(*, now: float | None = None) -> Health:
    health = Health()
    _check_database(health)
    _check_broker(health)
    _check_workers(health, now=now if now is not None else time.time())
    return health
