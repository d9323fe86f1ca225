"""Reads for intake: receipt look-up with brute-force throttling."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from reports.lib import receipts
from reports.models import Report
from reports.services.throttle import throttle_exceeded, throttle_hit


@dataclass(frozen=True)
class ReceiptLookup:
    report: Report | None
    throttled: bool


def report_get_by_receipt(*, code: str, pin: str, client: str) -> ReceiptLookup:
    """The report for a code + PIN pair, or None. Every attempt counts against the client; every
    failure also counts against the code, so guessing one code's PIN from many clients stops too.
    """
    normalised = receipts.normalise_code(code)
    if throttle_exceeded(scope="status", key=client, limit=settings.HOTLINE_STATUS_RATE_LIMIT) or throttle_exceeded(
        scope="status-code", key=normalised, limit=settings.HOTLINE_STATUS_CODE_FAILURES
    ):
        return ReceiptLookup(report=None, throttled=True)
    throttle_hit(scope="status", key=client)
    report = Report.objects.filter(receipt_code=normalised).only("pk", "status", "created_at", "pin_digest").first()
    pin_ok = report is not None and receipts.pin_matches(
        pepper=settings.HOTLINE_PEPPER, code=normalised, pin=pin, digest=report.pin_digest
    )
    if not pin_ok:
        throttle_hit(scope="status-code", key=normalised)
        return ReceiptLookup(report=None, throttled=False)
    return ReceiptLookup(report=report, throttled=False)
