"""Coordinators edit the referral tables (abuse contacts, rules, partner hotlines) in the Django
admin; every change is in the audit trail. Analysts have no admin access; referrals are read-only there."""

from __future__ import annotations

import pytest

from reports.models import AbuseContact, AuditEvent, ReferralRule


@pytest.mark.django_db
def test_a_coordinator_adds_an_abuse_contact_and_it_is_audited(staff_client) -> None:
    coordinator = staff_client("coordinator")

    response = coordinator.post(
        "/admin/reports/abusecontact/add/",
        {
            "provider": "Example Hosting BV",
            "asn": "64500",
            "email": "abuse@hosting.example",
            "country": "NL",
            "language": "nl",
        },
    )

    assert response.status_code == 302, response.content[:500]
    contact = AbuseContact.objects.get()
    assert (contact.asn, contact.email) == (64500, "abuse@hosting.example")
    event = AuditEvent.objects.get(action="abusecontact.created")
    assert event.actor == coordinator.user
    assert event.details["fields"]["email"] == "abuse@hosting.example"


@pytest.mark.django_db
def test_a_coordinator_switches_a_rule_off(staff_client) -> None:
    coordinator = staff_client("coordinator")
    rule = ReferralRule.objects.get(situation="domestic", kind="police")

    response = coordinator.post(
        f"/admin/reports/referralrule/{rule.pk}/change/", {"situation": "domestic", "kind": "police"}
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.active is False
    assert AuditEvent.objects.filter(action="referralrule.changed", object_id=str(rule.pk)).exists()


@pytest.mark.django_db
def test_the_default_rules_exist_after_migrate() -> None:
    assert set(ReferralRule.objects.filter(active=True).values_list("situation", "kind")) == {
        ("domestic", "police"),
        ("domestic", "hosting_ntd"),
        ("foreign_partner", "foreign_hotline"),
        ("foreign_no_partner", "hosting_ntd"),
    }


@pytest.mark.django_db
def test_an_analyst_cannot_edit_the_tables(staff_client) -> None:
    analyst = staff_client("analyst")

    response = analyst.post(
        "/admin/reports/abusecontact/add/", {"provider": "X", "email": "x@example.org", "language": "en"}
    )

    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "/login" in response["Location"]
    assert not AbuseContact.objects.exists()


@pytest.mark.django_db
def test_referrals_are_read_only_in_the_admin(staff_client) -> None:
    coordinator = staff_client("coordinator")

    assert coordinator.get("/admin/reports/referral/add/").status_code == 403
