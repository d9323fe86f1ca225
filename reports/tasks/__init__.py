"""Thin Celery tasks: they take ids and call services. Importing this package registers them."""

from __future__ import annotations

from reports.tasks import fetching, maintenance, matching, referrals, stats, triage

__all__ = ["fetching", "maintenance", "matching", "referrals", "stats", "triage"]
