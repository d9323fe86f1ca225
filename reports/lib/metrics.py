"""Prometheus metrics. Django-free: the counters, and a collector that reads queue lengths at scrape time.

Counting is an in-memory increment (an mmap'd file write in multiprocess mode), cheap enough for
the hot path. With PROMETHEUS_MULTIPROC_DIR set before this module is imported (gunicorn and
Celery's prefork children), every process writes its own file there and /metrics adds them up
(reports/views/ops.py); without it, the process's own registry is served.

Labels take values from small, fixed sets (fetch states and error kinds, match kinds, task names),
never from data: no URL, host, hash or user appears in a metric.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

# In multiprocess mode each process writes its values to files in this directory, from the first
# metric created on: make sure it exists (a management command started before gunicorn made it).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

FETCH_OUTCOMES = Counter(
    "hotline_fetch_outcomes_total",
    "Fetch attempts of reported URLs, by outcome (fetched, error, retry, skipped) and error kind.",
    ["state", "error"],
)
MATCHES = Counter(
    "hotline_matches_total",
    "Matches recorded, by kind (sha256, md5, sha1, pdq, phash).",
    ["kind"],
)
REVEALS = Counter("hotline_reveals_total", "Unblurred previews revealed to analysts (each one audited).")
RETENTION_PURGED = Counter(
    "hotline_retention_purged_total",
    "Rows purged by the retention job, by what was purged (preview, email).",
    ["what"],
)
TASK_DURATION = Histogram(
    "hotline_task_duration_seconds",
    "Run time of Celery tasks (wall clock, in the worker), by task name and final state.",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180),
)
TASK_FAILURES = Counter("hotline_task_failures_total", "Celery tasks that raised, by task name.", ["task"])
TASK_RETRIES = Counter("hotline_task_retries_total", "Celery task retries, by task name.", ["task"])

# kombu's Redis transport keeps a queue's messages of priority 0 in a list named after the queue,
# and those of the other priority steps (3, 6, 9) in lists suffixed with "\x06\x16" and the step.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class QueueLengthCollector(Collector):
    """`hotline_queue_length{queue}`: messages waiting in each Redis queue, read when scraped (one
    pipelined LLEN per queue and priority step), so nothing on the hot path keeps it up to date."""

    def __init__(self, redis_client: Any, queues: Iterable[str], key_prefix: str = "") -> None:
        self.redis = redis_client
        self.queues = list(queues)
        self.key_prefix = key_prefix

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("hotline_queue_length", "Messages waiting in a Celery queue.", labels=["queue"])
        up = GaugeMetricFamily("hotline_broker_up", "1 if the broker answered the queue-length scrape.")
        try:
            pipe = self.redis.pipeline(transaction=False)
            for queue in self.queues:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(f"{self.key_prefix}{queue}{suffix}")
            lengths = pipe.execute()
        except Exception:  # a scrape must still answer when the broker does not
            up.add_metric([], 0)
            yield up
            return
        steps = len(_PRIORITY_SUFFIXES)
        for position, queue in enumerate(self.queues):
            family.add_metric([queue], sum(lengths[position * steps : (position + 1) * steps]))
        up.add_metric([], 1)
        yield family
        yield up


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def render_latest(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every process's metrics (multiprocess mode) or this process's, plus `extra`."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        base = generate_latest(registry)
    else:
        base = generate_latest(REGISTRY)
    extra_registry = CollectorRegistry()
    for collector in extra:
        extra_registry.register(collector)
    return base + generate_latest(extra_registry)
