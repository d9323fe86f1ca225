"""The analyst workspace in the Django admin: reveal grants and staff preferences, read-only, and
never a reveal token's digest (nor a picture)."""

from __future__ import annotations

import re

import pytest

from reports.models import RevealGrant, StaffPreference
from reports.models.choices import CaseQueue
from reports.services.triage import case_claim_next, content_reveal, staff_preference_set
from reports.tests.analyst_helpers import make_case


@pytest.fixture
def grant(staff_client) -> RevealGrant:
    analyst = staff_client("analyst").user
    case = make_case(61)
    assert case_claim_next(user=analyst, queue=CaseQueue.NEW_UNKNOWN) == case
    content_reveal(user=analyst, content=case.contents.get(), case=case)
    return RevealGrant.objects.get()


@pytest.mark.django_db
def test_reveal_grants_are_listed_without_their_token_digest(staff_client, grant: RevealGrant) -> None:
    admin = staff_client("admin")

    listing = admin.get("/admin/reports/revealgrant/")
    page = admin.get(f"/admin/reports/revealgrant/{grant.pk}/change/")

    for response in (listing, page):
        assert response.status_code == 200
        text = response.content.decode()
        assert grant.token_digest not in text
        assert "token_digest" not in text
        assert "digest" not in text.lower()
        # No picture of any kind: only the admin's own icons.
        assert all(src.startswith("/static/admin/img/") for src in re.findall(r'<img[^>]*src="([^"]*)"', text))
    assert grant.user.username in listing.content.decode()
    assert grant.content.sha256 in page.content.decode()


@pytest.mark.django_db
def test_reveal_grants_cannot_be_added_changed_or_deleted(staff_client, grant: RevealGrant) -> None:
    admin = staff_client("admin")
    used_at = grant.used_at

    assert admin.get("/admin/reports/revealgrant/add/").status_code == 403
    assert admin.post(f"/admin/reports/revealgrant/{grant.pk}/change/", {"used_at": ""}).status_code == 403
    assert admin.get(f"/admin/reports/revealgrant/{grant.pk}/delete/").status_code == 403
    grant.refresh_from_db()
    assert grant.used_at == used_at
    assert "Save" not in admin.get(f"/admin/reports/revealgrant/{grant.pk}/change/").content.decode()


@pytest.mark.django_db
def test_staff_preferences_are_read_only(staff_client) -> None:
    admin = staff_client("admin")
    analyst = staff_client("analyst").user
    preference = staff_preference_set(user=analyst, greyscale=True)

    listing = admin.get("/admin/reports/staffpreference/")

    assert listing.status_code == 200
    assert analyst.username in listing.content.decode()
    assert admin.get(f"/admin/reports/staffpreference/{preference.pk}/change/").status_code == 200
    assert admin.get("/admin/reports/staffpreference/add/").status_code == 403
    assert admin.post(f"/admin/reports/staffpreference/{preference.pk}/change/", {}).status_code == 403
    assert admin.get(f"/admin/reports/staffpreference/{preference.pk}/delete/").status_code == 403
    assert StaffPreference.objects.get(pk=preference.pk).greyscale is True
