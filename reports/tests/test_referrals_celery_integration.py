"""Referrals with a real Celery worker on real Redis and PostgreSQL: the worker fetches and looks up
the hosting in a generated MaxMind-format database, proposes the referrals after an analyst's
verdict, and its re-check on the `fetch` queue sees the content removed.

Uses the worker, broker and waiting helpers of test_celery_integration (same isolation, same skip
rules); pictures are drawn in code and served by a SyntheticSite on 127.0.0.1.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from reports.lib.synthetic import Response, SyntheticSite
from reports.models import AbuseContact, Case, Referral
from reports.models.choices import CaseQueue, CaseStatus, ReferralKind, ReferralStatus, Verdict
from reports.services.staff import staff_create
from reports.services.triage import AssessmentFields, assessment_create, case_claim_next
from reports.tasks.referrals import recheck_referral
from reports.tests.factories import make_public_report
from reports.tests.geoip_helpers import HOME_ASN, HOME_PROVIDER, write_test_databases
from reports.tests.pipeline_helpers import original_bytes
from reports.tests.test_celery_integration import (  # noqa: F401 - fixtures used by name
    PIPELINE_TIMEOUT,
    SKIP_REASON,
    Workers,
    broker,
    pipeline_done,
    site_settings,
    wait_until,
    workers,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
    pytest.mark.django_db(transaction=True),
]


def test_a_worker_proposes_referrals_and_its_recheck_sees_removal(
    workers: Workers,  # noqa: F811 - the imported fixture
    site_settings,  # noqa: F811
    settings,
    tmp_path: Path,
) -> None:
    country_db, asn_db = write_test_databases(tmp_path)
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    settings.HOTLINE_COUNTRY = "NL"
    AbuseContact.objects.create(provider=HOME_PROVIDER, asn=HOME_ASN, email="abuse@hosting.example")
    analyst, _password, _uri = staff_create(username="it-analyst", role="analyst")
    routes = {"/photos/1.jpg": lambda: Response(body=original_bytes(1))}
    with SyntheticSite(routes=routes) as site:
        site_settings(site)
        workers.start(
            site,
            HOTLINE_GEOIP_COUNTRY_DB=str(country_db),
            HOTLINE_GEOIP_ASN_DB=str(asn_db),
            HOTLINE_COUNTRY="NL",
        )
        make_public_report(urls=[site.url("/photos/1.jpg")])
        wait_until(
            lambda: pipeline_done() and Case.objects.exists(),
            timeout=PIPELINE_TIMEOUT,
            what="fetch and match",
            workers=workers,
        )
        case = Case.objects.get()
        assert (case.url.hosting_country, case.url.hosting_provider) == ("NL", HOME_PROVIDER)

        wait_until(
            lambda: case_claim_next(user=analyst, queue=CaseQueue.NEW_UNKNOWN) is not None,
            timeout=PIPELINE_TIMEOUT,
            what="the case in the queue",
            workers=workers,
        )
        case.refresh_from_db()
        assessment_create(
            user=analyst, case=case, content=case.contents.get(), fields=AssessmentFields(verdict=Verdict.BASELINE)
        )
        assert Case.objects.get().status == CaseStatus.CLOSED
        wait_until(lambda: Referral.objects.count() == 2, timeout=PIPELINE_TIMEOUT, what="proposal", workers=workers)
        ntd = Referral.objects.get(kind=ReferralKind.HOSTING_NTD)
        assert ntd.email == "abuse@hosting.example"

        # As if the notice went out an hour ago; then the host removes the picture.
        sent_at = timezone.now() - timedelta(hours=1)
        Referral.objects.filter(pk=ntd.pk).update(status=ReferralStatus.SENT, sent_at=sent_at)
        routes.pop("/photos/1.jpg")
        recheck_referral.delay(ntd.pk)
        wait_until(
            lambda: Referral.objects.get(pk=ntd.pk).status == ReferralStatus.REMOVED,
            timeout=PIPELINE_TIMEOUT,
            what="the re-check",
            workers=workers,
        )
    ntd.refresh_from_db()
    assert ntd.time_to_removal is not None
    assert ntd.time_to_removal >= timedelta(hours=1)
