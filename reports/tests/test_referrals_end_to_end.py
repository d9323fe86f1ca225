"""Referrals end to end, against a SyntheticSite on 127.0.0.1 and a MaxMind-format database written
in the test: report → fetch → illegal → one notice for three URLs of one provider + the police
package → the host removes the pictures → the re-check marks removal → the reporter sees it."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reports.lib.geoip import reset_readers
from reports.lib.synthetic import Response, SyntheticSite
from reports.models import AbuseContact, AuditEvent, Case, Referral, ReferralEvent
from reports.models.choices import CaseQueue, ReferralKind, ReferralStatus, Verdict
from reports.selectors.stats import StatsFilters, stats_dashboard
from reports.services.audit import audit_verify
from reports.services.referrals import notices_send_due, referral_recheck
from reports.services.triage import AssessmentFields, assessment_create, case_claim_next
from reports.tasks.referrals import recheck_due
from reports.tests.factories import make_public_receipt
from reports.tests.geoip_helpers import HOME_ASN, HOME_PROVIDER, write_test_databases
from reports.tests.pipeline_helpers import original_bytes

# A Tuesday, 10:00 in Amsterdam: inside the default working-hours window.
TUESDAY_MORNING = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def geoip(settings, tmp_path: Path) -> Iterator[None]:
    country, asn = write_test_databases(tmp_path)
    settings.HOTLINE_GEOIP_COUNTRY_DB, settings.HOTLINE_GEOIP_ASN_DB = str(country), str(asn)
    settings.HOTLINE_COUNTRY = "NL"
    reset_readers()
    yield
    reset_readers()


@pytest.fixture
def host() -> Iterator[SyntheticSite]:
    routes = {f"/photos/{seed}.jpg": (lambda seed=seed: Response(body=original_bytes(seed))) for seed in (1, 2, 3)}
    with SyntheticSite(routes=routes) as site:
        yield site


def illegal(**overrides: str) -> AssessmentFields:
    return AssessmentFields(
        verdict=overrides.get("verdict", Verdict.BASELINE),
        age_group="pre_pubescent",
        gender="",
        virtual="real",
        site_type="image_host",
        commercial=None,
        notes="",
    )


@pytest.mark.django_db
def test_from_report_to_removal(
    pipeline, geoip, host: SyntheticSite, staff_client, django_capture_on_commit_callbacks
) -> None:
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [host.authority]
    pipeline.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    AbuseContact.objects.create(provider=HOME_PROVIDER, asn=HOME_ASN, email="abuse@hosting.example", language="nl")
    analyst = staff_client("analyst")
    coordinator = staff_client("coordinator")
    urls = [host.url(f"/photos/{seed}.jpg") for seed in (1, 2, 3)]

    with time_machine.travel(TUESDAY_MORNING, tick=False):
        # Report → fetch (eager tasks) → a case per URL, hosting looked up from the test database.
        with django_capture_on_commit_callbacks(execute=True):
            receipt = make_public_receipt(urls=urls)
        cases = list(Case.objects.order_by("pk"))
        assert len(cases) == 3
        assert {(c.url.hosting_country, c.url.hosting_asn, c.url.hosting_provider) for c in cases} == {
            ("NL", HOME_ASN, HOME_PROVIDER)
        }

        # Assess illegal → the rules propose police + notice to the host for each case.
        for _ in cases:
            with django_capture_on_commit_callbacks(execute=True):
                case = case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)
                assert case is not None
                assessment_create(user=analyst.user, case=case, content=case.contents.get(), fields=illegal())
        ntd = Referral.objects.filter(kind=ReferralKind.HOSTING_NTD)
        assert ntd.count() == 3
        assert set(ntd.values_list("status", "email")) == {(ReferralStatus.DRAFT, "abuse@hosting.example")}
        assert Referral.objects.filter(kind=ReferralKind.POLICE, status=ReferralStatus.DRAFT).count() == 3

        # One notice, in Dutch, for the three URLs of the one provider.
        assert notices_send_due() == 1
        assert len(mail.outbox) == 1
        notice = mail.outbox[0]
        assert notice.to == ["abuse@hosting.example"]
        assert all(url in notice.body for url in urls)
        assert "verwijder" in notice.body.lower()
        assert set(ntd.values_list("status", flat=True)) == {ReferralStatus.SENT}

        # The police package for all three cases: a ZIP whose SHA-256 is the one in the audit trail.
        police_ids = list(Referral.objects.filter(kind=ReferralKind.POLICE).values_list("pk", flat=True))
        response = coordinator.post(reverse("staff-police-package"), {"referral": police_ids})
        assert response.status_code == 200
        digest = hashlib.sha256(response.content).hexdigest()
        event = AuditEvent.objects.get(action="referral.police_package_exported")
        assert event.details["digest"] == digest == response["X-Package-SHA256"]
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        package = json.loads(archive.read("package.json"))
        assert {entry["urls"][0]["url"] for entry in package["referrals"]} == set(urls)
        first_capture = package["referrals"][0]["urls"][0]["captures"][0]
        assert first_capture["ip"] == "127.0.0.1"
        assert first_capture["sha256"]
        assert package["referrals"][0]["contents"][0]["assessment"]["verdict"] == Verdict.BASELINE
        assert archive.read("package.csv").decode().count("\n") == 4  # header + one capture per URL
        assert set(Referral.objects.filter(kind=ReferralKind.POLICE).values_list("status", flat=True)) == {"sent"}

    # Two hours later the host has removed the pictures; the next re-check run sees it.
    for seed in (1, 2, 3):
        host.handler.routes.pop(f"/photos/{seed}.jpg")
    with time_machine.travel(TUESDAY_MORNING + timedelta(hours=2), tick=False):
        assert recheck_due() == 3
    for referral in ntd:
        assert referral.status == ReferralStatus.REMOVED
        assert referral.time_to_removal == timedelta(hours=2)
        assert referral.events.filter(status=ReferralStatus.REMOVED).exists()
    assert audit_verify() is None

    # The coordinator's statistics count these very notices (not rows made up for a test).
    day = timezone.localdate(TUESDAY_MORNING)
    dashboard = stats_dashboard(StatsFilters(first=day, last=day, grain="day"), today=day)
    assert (dashboard.totals["ntd_sent"], dashboard.totals["ntd_removed"]) == (3, 3)
    assert dashboard.figures["ntd"].within[0][0::2] == (24, 100.0)  # (hours, count, per cent)

    # The reporter's status page shows the outcome, and nothing about who was told.
    page = Client().post(reverse("report-status"), {"code": receipt.code, "pin": receipt.pin})
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-outcome="removed"' in text
    assert "hosting.example" not in text
    assert "Example Hosting" not in text


@pytest.mark.django_db
def test_still_online_and_changed_content(
    pipeline, geoip, host: SyntheticSite, staff_client, django_capture_on_commit_callbacks
) -> None:
    """Same picture → still online (checked again later); another picture → flagged for review."""
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [host.authority]
    pipeline.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    AbuseContact.objects.create(provider=HOME_PROVIDER, asn=HOME_ASN, email="abuse@hosting.example")
    analyst = staff_client("analyst")
    now = TUESDAY_MORNING
    with time_machine.travel(now, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            make_public_receipt(urls=[host.url("/photos/1.jpg")])
        case = case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)
        assert case is not None
        with django_capture_on_commit_callbacks(execute=True):
            assessment_create(user=analyst.user, case=case, content=case.contents.get(), fields=illegal())
        assert notices_send_due() == 1
    referral = Referral.objects.get(kind=ReferralKind.HOSTING_NTD)

    assert referral_recheck(referral_id=referral.pk, now=now + timedelta(hours=1)) == "online"
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.SENT
    assert referral.next_check_at == now + timedelta(hours=2)  # hourly in the first day
    assert referral.urls.get().recheck_state == "online"

    host.handler.routes["/photos/1.jpg"] = lambda: Response(body=original_bytes(7))
    assert referral_recheck(referral_id=referral.pk, now=now + timedelta(hours=30)) == "changed"
    referral.refresh_from_db()
    assert referral.changed_at == now + timedelta(hours=30)
    assert referral.next_check_at == now + timedelta(hours=54)  # daily after the first day
    assert ReferralEvent.objects.filter(referral=referral, note__contains="review").exists()
