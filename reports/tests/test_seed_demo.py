from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from reports.models import Report, ReportedUrl, Url
from reports.models.choices import ReportSource

DEMO_USERNAMES = {"admin", "analyst", "coordinator"}
RESERVED_SUFFIXES = ("example.com", "example.org", ".example")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The demo users' passwords are hashed on every run; the real hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_refuses_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        seed()

    assert not get_user_model().objects.filter(username__in=DEMO_USERNAMES).exists()
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_seeding_twice_does_not_duplicate_users_or_reports(settings):
    settings.DEBUG = True

    seed("--reports", "6")
    seed("--reports", "6")

    users = get_user_model().objects.filter(username__in=DEMO_USERNAMES)
    assert users.count() == 3
    assert Report.objects.count() == 6


@pytest.mark.django_db
def test_demo_users_can_sign_in_with_their_roles(settings, client):
    settings.DEBUG = True

    output = seed("--reports", "0")

    users = {user.username: user for user in get_user_model().objects.filter(username__in=DEMO_USERNAMES)}
    assert users["admin"].is_superuser
    assert not users["analyst"].is_superuser
    assert all(user.is_staff for user in users.values())
    assert list(users["analyst"].groups.values_list("name", flat=True)) == ["analyst"]
    assert list(users["coordinator"].groups.values_list("name", flat=True)) == ["coordinator"]
    for username in DEMO_USERNAMES:
        assert username in output
        assert client.login(username=username, password="hotline-demo")
    assert "hotline-demo" in output


@pytest.mark.django_db
def test_creates_n_varied_public_reports_on_reserved_domains(settings):
    settings.DEBUG = True

    seed("--reports", "30")

    reports = Report.objects.all()
    assert reports.count() == 30
    assert set(reports.values_list("source", flat=True)) == {ReportSource.PUBLIC}
    assert reports.values("category").distinct().count() >= 3
    assert reports.values("ai_suspected").distinct().count() == 3
    assert reports.values("where_found").distinct().count() >= 4
    # Every report got a receipt, like one from the form.
    assert not reports.filter(receipt_code__isnull=True).exists()
    hosts = set(Url.objects.values_list("host", flat=True))
    assert hosts
    assert all(host.endswith(RESERVED_SUFFIXES) for host in hosts)


@pytest.mark.django_db
def test_differently_spelled_urls_become_one_url_with_several_sightings(settings):
    settings.DEBUG = True

    seed("--reports", "5")

    gallery = Url.objects.get(canonical_url="https://www.example.com/gallery/1234")
    assert gallery.sightings == 4
    assert ReportedUrl.objects.filter(url=gallery).count() == 4
    assert ReportedUrl.objects.filter(was_known=True).exists()


@pytest.mark.django_db
def test_a_larger_number_tops_up_the_existing_demo_reports(settings):
    settings.DEBUG = True

    seed("--reports", "3")
    output = seed("--reports", "10")

    assert Report.objects.count() == 10
    assert "7 created, 10 in total" in output
