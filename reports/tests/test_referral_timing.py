"""Timing of referrals with a frozen clock: the working-hours window for notices, the re-check
schedule, and escalation of a notice still online (reminder 1x, site owner 3x, registrar 6x the
interval, SCART's defaults), all configurable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from reports.models import AbuseContact, AuditEvent, Referral, Url
from reports.models.choices import Escalation, ReferralKind, ReferralStatus
from reports.services.referrals import (
    in_notice_window,
    notices_send_due,
    referrals_escalate_due,
)
from reports.tests.factories import make_public_report, unique_url

# Amsterdam is UTC+1 in March: 08:00 UTC on Tuesday 3 March 2026 is 09:00 local, the window's start.
TUESDAY_0900_LOCAL = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)


def draft_notice(email: str = "abuse@host.example", *, language: str = "en") -> Referral:
    make_public_report(urls=[unique_url()])
    url = Url.objects.order_by("-pk").first()
    assert url is not None
    contact, _created = AbuseContact.objects.get_or_create(
        email=email, defaults={"provider": "Example Host", "language": language}
    )
    referral = Referral.objects.create(
        kind=ReferralKind.HOSTING_NTD, recipient=contact.provider, abuse_contact=contact, email=email, language=language
    )
    referral.urls.add(url)
    return referral


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (TUESDAY_0900_LOCAL, True),
        (TUESDAY_0900_LOCAL - timedelta(minutes=1), False),  # 08:59 local
        (TUESDAY_0900_LOCAL + timedelta(hours=7, minutes=59), True),  # 16:59 local
        (TUESDAY_0900_LOCAL + timedelta(hours=8), False),  # 17:00 local
        (TUESDAY_0900_LOCAL + timedelta(days=4, hours=2), False),  # Saturday 11:00 local
    ],
)
def test_the_working_hours_window(moment: datetime, open_: bool) -> None:
    assert in_notice_window(moment) is open_


@pytest.mark.django_db
def test_notices_wait_outside_working_hours_and_go_out_grouped_when_the_window_opens() -> None:
    first, second = draft_notice(), draft_notice()
    other = draft_notice("abuse@other.example")

    with time_machine.travel(TUESDAY_0900_LOCAL - timedelta(hours=2), tick=False):  # 07:00 local
        assert notices_send_due() == 0
    assert mail.outbox == []
    assert set(Referral.objects.values_list("status", flat=True)) == {ReferralStatus.DRAFT}

    with time_machine.travel(TUESDAY_0900_LOCAL, tick=False):
        assert notices_send_due() == 2  # one per abuse address

    by_address = {message.to[0]: message for message in mail.outbox}
    assert set(by_address) == {"abuse@host.example", "abuse@other.example"}
    for referral in (first, second):
        assert referral.urls.get().canonical_url in by_address["abuse@host.example"].body
    assert other.urls.get().canonical_url in by_address["abuse@other.example"].body
    first.refresh_from_db()
    assert first.sent_at == TUESDAY_0900_LOCAL
    assert first.next_check_at == TUESDAY_0900_LOCAL + timedelta(hours=1)
    assert AuditEvent.objects.filter(action="referral.sent").count() == 3

    with time_machine.travel(TUESDAY_0900_LOCAL + timedelta(minutes=10), tick=False):
        assert notices_send_due() == 0  # nothing is sent twice
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_the_window_is_configurable(settings) -> None:
    settings.HOTLINE_NOTICE_HOURS = (0, 24)
    settings.HOTLINE_NOTICE_WEEKDAYS = [5, 6]
    draft_notice()

    with time_machine.travel(TUESDAY_0900_LOCAL, tick=False):
        assert notices_send_due() == 0
    with time_machine.travel(TUESDAY_0900_LOCAL + timedelta(days=4, hours=14), tick=False):  # Saturday 23:00
        assert notices_send_due() == 1


def sent_notice() -> Referral:
    referral = draft_notice()
    with time_machine.travel(TUESDAY_0900_LOCAL, tick=False):
        notices_send_due()
    mail.outbox.clear()
    referral.refresh_from_db()
    return referral


def escalate_at(hours: float) -> dict[str, int]:
    with time_machine.travel(TUESDAY_0900_LOCAL + timedelta(hours=hours), tick=False):
        return referrals_escalate_due()


@pytest.mark.django_db
def test_an_overdue_notice_escalates_reminder_then_site_owner_then_registrar() -> None:
    referral = sent_notice()

    assert escalate_at(23.9) == {"reminder": 0, "site_owner": 0, "registrar": 0}
    assert mail.outbox == []

    assert escalate_at(24)["reminder"] == 1  # Wednesday 09:00 local, inside the window
    referral.refresh_from_db()
    assert referral.escalation == Escalation.REMINDER
    assert mail.outbox[0].to == ["abuse@host.example"]
    assert "still online" in mail.outbox[0].body
    assert escalate_at(48) == {"reminder": 0, "site_owner": 0, "registrar": 0}  # one reminder only

    assert escalate_at(71.9)["site_owner"] == 0
    assert escalate_at(72)["site_owner"] == 1
    referral.refresh_from_db()
    assert referral.escalation == Escalation.SITE_OWNER
    assert referral.events.filter(note__contains="site owner").exists()

    assert escalate_at(143.9)["registrar"] == 0
    assert escalate_at(144)["registrar"] == 1
    referral.refresh_from_db()
    assert referral.escalation == Escalation.REGISTRAR
    registrar = Referral.objects.get(kind=ReferralKind.REGISTRAR)
    assert registrar.status == ReferralStatus.DRAFT
    assert list(registrar.urls.all()) == list(referral.urls.all())
    assert escalate_at(500) == {"reminder": 0, "site_owner": 0, "registrar": 0}
    assert AuditEvent.objects.filter(action="referral.escalated").count() == 3
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_reminder_due_at_night_waits_for_working_hours() -> None:
    referral = sent_notice()

    assert escalate_at(24 + 10)["reminder"] == 0  # Wednesday 19:00 local
    referral.refresh_from_db()
    assert referral.escalation == Escalation.NONE
    assert escalate_at(48)["reminder"] == 1  # Thursday 09:00 local


@pytest.mark.django_db
def test_a_removed_or_cancelled_notice_never_escalates() -> None:
    removed, cancelled = sent_notice(), sent_notice()
    Referral.objects.filter(pk=removed.pk).update(status=ReferralStatus.REMOVED, removed_at=TUESDAY_0900_LOCAL)
    Referral.objects.filter(pk=cancelled.pk).update(status=ReferralStatus.CANCELLED)

    assert escalate_at(200) == {"reminder": 0, "site_owner": 0, "registrar": 0}
    assert mail.outbox == []


@pytest.mark.django_db
def test_escalation_steps_are_configurable(settings) -> None:
    settings.HOTLINE_ESCALATION_INTERVAL_HOURS = 2
    settings.HOTLINE_ESCALATION_REMINDER_AFTER = 1
    settings.HOTLINE_ESCALATION_SITE_OWNER_AFTER = 2
    settings.HOTLINE_ESCALATION_REGISTRAR_AFTER = 3
    referral = sent_notice()

    assert escalate_at(2)["reminder"] == 1
    assert escalate_at(4)["site_owner"] == 1
    assert escalate_at(6)["registrar"] == 1
    referral.refresh_from_db()
    assert referral.escalation == Escalation.REGISTRAR


def test_the_beat_schedule_runs_the_referral_jobs_and_a_worker_knows_them() -> None:
    """In a fresh process, as a worker starts: the tasks the beat schedule names are registered."""
    import os
    import subprocess
    import sys

    script = (
        "import django; django.setup(); from django.conf import settings; from hotline.celery import app; "
        "app.loader.import_default_modules(); "
        "names = [e['task'] for e in settings.CELERY_BEAT_SCHEDULE.values()]; "
        "print(','.join(sorted(n for n in names if n in app.tasks)))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hotline.settings", "HOTLINE_TESTING": "1"}
    env.pop("REDIS_URL", None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)  # noqa: S603
    registered = set(result.stdout.strip().split(","))
    for name in ("send_notices", "recheck_due", "escalate_due"):
        assert f"reports.tasks.referrals.{name}" in registered
