"""Database constraints that keep intake data consistent even when code paths race or err."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from reports.models import Report, ReportedUrl, Url
from reports.services.intake import url_hash
from reports.tests.factories import make_partner, make_public_report

pytestmark = pytest.mark.django_db


def make_url(canonical: str = "https://example.com/x") -> Url:
    return Url.objects.create(canonical_url=canonical, url_hash=url_hash(canonical), scheme="https", host="example.com")


def partner_report(partner, **fields) -> Report:
    return Report.objects.create(source="partner", partner=partner, category="csam", **fields)


def test_url_hash_is_unique() -> None:
    make_url("https://example.com/x")

    with pytest.raises(IntegrityError), transaction.atomic():
        make_url("https://example.com/x")
    assert Url.objects.count() == 1


def test_report_names_a_url_once() -> None:
    report = make_public_report(urls=["https://example.com/a"])
    url = Url.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        ReportedUrl.objects.create(
            report=report, url=url, submitted_url="https://example.com/a#x", position=1, was_known=True
        )
    assert report.reported_urls.count() == 1
    # Another report may name the same URL.
    other = make_public_report(urls=["https://example.com/a"])
    assert other.reported_urls.get().url == url


def test_external_id_unique_per_partner_when_set() -> None:
    partner, other = make_partner(), make_partner()
    partner_report(partner, external_id="case-1")

    with pytest.raises(IntegrityError), transaction.atomic():
        partner_report(partner, external_id="case-1")
    # The same id from another partner, and reports without any id, are fine.
    partner_report(other, external_id="case-1")
    partner_report(partner)
    partner_report(partner)
    assert Report.objects.filter(partner=partner).count() == 3


def test_idempotency_key_unique_per_partner_when_set() -> None:
    partner, other = make_partner(), make_partner()
    partner_report(partner, idempotency_key="key-1")

    with pytest.raises(IntegrityError), transaction.atomic():
        partner_report(partner, idempotency_key="key-1")
    partner_report(other, idempotency_key="key-1")
    partner_report(partner, idempotency_key=None)
    partner_report(partner, idempotency_key=None)
    assert Report.objects.filter(idempotency_key="key-1").count() == 2


def test_public_report_has_no_partner() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(source="public", partner=make_partner(), category="csam")
    assert Report.objects.count() == 0


def test_partner_report_needs_a_partner() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(source="partner", partner=None, category="csam")
    assert Report.objects.count() == 0


def test_source_and_partner_that_match_are_accepted() -> None:
    make_public_report()
    partner_report(make_partner())

    assert sorted(Report.objects.values_list("source", flat=True)) == ["partner", "public"]


def test_receipt_code_is_unique_but_optional() -> None:
    public = make_public_report()

    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(source="public", category="csam", receipt_code=public.receipt_code)
    partner = make_partner()
    partner_report(partner)
    partner_report(partner)
    assert Report.objects.filter(receipt_code__isnull=True).count() == 2


def test_url_in_use_cannot_be_deleted() -> None:
    make_public_report(urls=["https://example.com/kept"])

    with pytest.raises(ProtectedError):
        Url.objects.get().delete()
    assert Url.objects.count() == 1
    # Deleting the report removes its sightings; the URL stays for the next report.
    Report.objects.all().delete()
    assert (Url.objects.count(), ReportedUrl.objects.count()) == (1, 0)
