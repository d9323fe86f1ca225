"""Retention: previews go some days after their cases close, reporters' e-mail addresses some days after
the report; hashes and capture metadata stay; every purge batch is in the audit trail."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from reports.models import AuditEvent, Capture, Case, Content, Report
from reports.models.choices import CaseStatus
from reports.services.audit import audit_verify
from reports.services.retention import EMAILS_PURGED, PREVIEWS_PURGED, retention_purge
from reports.tests.analyst_helpers import make_case, make_content
from reports.tests.factories import make_public_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def now() -> datetime:
    return datetime(2030, 6, 1, 12, 0, tzinfo=timezone.get_current_timezone())


@pytest.fixture(autouse=True)
def _retention(settings):
    settings.HOTLINE_RETENTION_PREVIEW_DAYS = 30
    settings.HOTLINE_RETENTION_EMAIL_DAYS = 90
    settings.HOTLINE_RETENTION_BATCH = 1000


def close(case: Case, at: datetime) -> None:
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.CLOSED, closed_at=at)


def has_preview(content: Content) -> bool:
    return bytes(Content.objects.get(pk=content.pk).preview) != b""


def test_a_preview_goes_once_its_case_has_been_closed_for_the_retention_period(now) -> None:
    case = make_case(1)
    content = case.contents.get()
    close(case, now - timedelta(days=31))

    result = retention_purge(now=now)

    assert result.previews == 1
    content.refresh_from_db()
    assert bytes(content.preview) == b""
    assert content.preview_purged_at == now
    # What the hotline keeps: hashes and the content row itself.
    assert content.sha256
    assert content.pdq
    assert content.md5


def test_a_preview_stays_while_its_case_is_open_or_closed_recently(now) -> None:
    open_case = make_case(2)
    recent = make_case(3)
    close(recent, now - timedelta(days=29))

    assert retention_purge(now=now).previews == 0
    assert has_preview(open_case.contents.get())
    assert has_preview(recent.contents.get())


def test_content_in_two_cases_keeps_its_preview_until_both_are_closed_long_enough(now) -> None:
    shared = make_content(4)
    first = make_case(contents=[shared])
    close(first, now - timedelta(days=100))
    second = make_case(contents=[shared])  # the same picture at another address, still open

    assert retention_purge(now=now).previews == 0
    assert has_preview(shared)

    close(second, now - timedelta(days=10))
    assert retention_purge(now=now).previews == 0
    assert has_preview(shared)

    assert retention_purge(now=now + timedelta(days=21)).previews == 1
    assert not has_preview(shared)


def test_content_in_no_case_keeps_its_preview(now) -> None:
    orphan = make_content(5)
    assert retention_purge(now=now).previews == 0
    assert has_preview(orphan)


def test_each_batch_is_audited_and_a_second_run_purges_nothing(settings, now) -> None:
    settings.HOTLINE_RETENTION_BATCH = 2
    cases = [make_case(seed) for seed in (11, 12, 13, 14, 15)]
    for case in cases:
        close(case, now - timedelta(days=40))
    ids = sorted(case.contents.get().pk for case in cases)

    assert retention_purge(now=now).previews == 5

    events = list(AuditEvent.objects.filter(action=PREVIEWS_PURGED).order_by("pk"))
    assert [event.details["count"] for event in events] == [2, 2, 1]
    assert events[0].details["first_id"] == ids[0]
    assert events[-1].details["last_id"] == ids[-1]
    assert all(event.actor_label == "system" and event.details["after_days"] == 30 for event in events)
    assert audit_verify() is None  # the purge events are part of the hash chain

    assert retention_purge(now=now + timedelta(days=1)).previews == 0
    assert AuditEvent.objects.filter(action=PREVIEWS_PURGED).count() == 3


def test_captures_metadata_is_kept(now) -> None:
    case = make_case(6)
    content = case.contents.get()
    capture = Capture.objects.create(
        url=case.url, requested_url=case.url.canonical_url, http_status=200, content=content, byte_count=1234
    )
    close(case, now - timedelta(days=60))

    retention_purge(now=now)

    capture.refresh_from_db()
    assert (capture.http_status, capture.byte_count, capture.content_id) == (200, 1234, content.pk)


def test_reporter_email_goes_after_the_retention_period_and_only_then(now) -> None:
    old = make_public_report(email="old@example.org")
    new = make_public_report(email="new@example.org")
    without = make_public_report()
    Report.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=91))
    Report.objects.filter(pk=new.pk).update(created_at=now - timedelta(days=89))
    Report.objects.filter(pk=without.pk).update(created_at=now - timedelta(days=400))

    result = retention_purge(now=now)

    assert result.emails == 1
    old.refresh_from_db()
    new.refresh_from_db()
    without.refresh_from_db()
    assert old.email == ""
    assert old.email_purged_at == now
    assert new.email == "new@example.org"
    assert new.email_purged_at is None
    assert without.email_purged_at is None  # nothing was held, nothing purged
    event = AuditEvent.objects.get(action=EMAILS_PURGED)
    assert event.details["count"] == 1
    assert event.details["first_id"] == old.pk
    # The audit trail says how many and which range, never the addresses.
    assert "example.org" not in json.dumps(event.details)

    assert retention_purge(now=now).emails == 0


def test_retention_runs_from_the_command_and_from_beat(now) -> None:
    case = make_case(7)
    close(case, timezone.now() - timedelta(days=45))
    out = StringIO()

    call_command("run_periodic", "retention", stdout=out)

    answer = json.loads(out.getvalue())
    assert answer["job"] == "retention"
    assert answer["result"]["previews"] == 1
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "reports.tasks.maintenance.retention" in schedule


def test_the_beat_task_purges_too(now) -> None:
    from reports.tasks.maintenance import retention

    make_public_report(email="someone@example.org")
    Report.objects.update(created_at=timezone.now() - timedelta(days=120))
    assert retention.apply().get()["emails"] == 1
