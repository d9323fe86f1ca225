"""Statistics upkeep (queue `default`, Celery beat): the rollup tables follow the data."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def refresh_statistics() -> dict[str, int]:
    from reports.services.stats import stats_refresh

    return stats_refresh()
