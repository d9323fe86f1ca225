"""Statistics upkeep (queue `default`, Celery beat): the rollup tables follow the data."""

from __future__ import annotations

from celery import shared_task


# Usually well under a second; the first run builds every day of the history, minutes at millions of
# reports (docs/statistics.md), hence a limit above the default task's and below the visibility timeout.
@shared_task(acks_late=True, soft_time_limit=1700, time_limit=1800)
def refresh_statistics() -> dict[str, int]:
    from reports.services.stats import stats_refresh

    return stats_refresh()
