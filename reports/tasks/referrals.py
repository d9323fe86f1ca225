"""Referral tasks (queue `default`): proposing after a case closes, and the beat jobs that send
notices, re-check referred URLs and escalate overdue notices. Thin: they take ids, call services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, reject_on_worker_lost=True)
def propose_for_case(case_id: int) -> int:
    from reports.services.referrals import referrals_propose_for_case  # services enqueue tasks: import late

    return len(referrals_propose_for_case(case_id=case_id))


def enqueue_referrals_propose(case_id: int) -> None:
    if settings.HOTLINE_ENQUEUE_TASKS:
        propose_for_case.delay(case_id)


@shared_task(acks_late=True)
def send_notices() -> int:
    from reports.services.referrals import notices_send_due

    return notices_send_due()


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def recheck_referral(referral_id: int) -> str:
    from reports.services.referrals import referral_recheck

    return referral_recheck(referral_id=referral_id)


@shared_task(acks_late=True)
def recheck_due() -> int:
    from reports.selectors.referrals import referrals_due_for_recheck

    ids = referrals_due_for_recheck()
    for referral_id in ids:
        recheck_referral.delay(referral_id)
    return len(ids)


@shared_task(acks_late=True)
def escalate_due() -> dict[str, int]:
    from reports.services.referrals import referrals_escalate_due

    return referrals_escalate_due()
