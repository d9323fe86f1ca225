"""Staff security: two-factor logins, roles, lockout, audit, sessions, headers, set-up commands."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from hotline.urls import urlpatterns as hotline_urlpatterns
from reports.models import AuditEvent
from reports.services.staff import staff_create, staff_recovery_codes
from reports.tests.factories import (
    login_password_step,
    login_token_step,
    login_verified,
    totp_now,
    two_factor_login,
)
from reports.views import staff as staff_views
from reports.views.decorators import staff_view

pytestmark = pytest.mark.django_db
LOGIN = "/account/login/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def analyst():
    """A new analyst: (user, password, TOTP device)."""
    user, password, _uri = staff_create(username="ana", role="analyst")
    return user, password, TOTPDevice.objects.get(user=user)


def redirect_path(response: HttpResponse) -> str:
    assert response.status_code == 302, response.status_code
    return urlsplit(response["Location"]).path


# --- Who may open /staff/ -----------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_two_factor_login(client):
    response = client.get("/staff/")

    assert redirect_path(response) == LOGIN
    assert parse_qs(urlsplit(response["Location"]).query)["next"] == ["/staff/"]


def test_a_password_only_session_is_sent_back_to_the_token_step(client, analyst):
    user, _password, _device = analyst
    client.force_login(user)  # logged in, but no second factor in this session

    assert redirect_path(client.get("/staff/")) == LOGIN


def test_an_account_without_an_authenticator_is_sent_to_set_one_up(client):
    user = get_user_model().objects.create_user("nodevice", password="a long enough password")
    client.force_login(user)

    assert redirect_path(client.get("/staff/")) == reverse("two_factor:setup")


def test_a_verified_staff_user_sees_the_staff_page(staff_client):
    client = staff_client("analyst")

    response = client.get("/staff/")

    assert response.status_code == 200
    page = response.content.decode()
    assert client.user.username in page
    assert "Analyst" in page
    assert reverse("two_factor:backup_tokens") in page
    assert "/admin/" not in page  # analysts have no admin access


def test_the_staff_page_links_the_admin_for_admins(staff_client):
    page = staff_client("admin").get("/staff/").content.decode()

    assert 'href="/admin/"' in page


def test_a_verified_user_without_a_staff_role_is_refused(client):
    user = get_user_model().objects.create_user("outsider", password="a long enough password")
    device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    login_verified(client, user, device)

    assert client.get("/staff/").status_code == 403


def test_staff_view_refuses_a_missing_permission_with_403(staff_client):
    @staff_view("view_audit")
    def audit_page(request):
        return HttpResponse("audit")

    def call(role: str):
        request = RequestFactory().get("/staff/audit/")
        request.user = staff_client(role).user
        request.user.is_verified = lambda: True
        return audit_page(request)

    assert call("coordinator").content == b"audit"
    with pytest.raises(PermissionDenied):
        call("analyst")


def test_the_middleware_guards_every_staff_path_even_without_the_decorator(client, staff_client, analyst):
    user, _password, _device = analyst
    client.force_login(user)

    # Unverified: redirected before URL resolution, so even an unknown staff path never runs a view.
    assert redirect_path(client.get("/staff/no-such-page/")) == LOGIN
    # Verified: the request goes through (and this path does not exist).
    assert staff_client("analyst").get("/staff/no-such-page/").status_code == 404


def test_the_partner_api_is_not_affected_by_staff_sessions(client, analyst):
    user, _password, _device = analyst
    client.force_login(user)

    response = client.get("/api/v1/reports")

    assert response.status_code == 401  # the API's own token check, not a login redirect


def staff_page_view(request):
    return HttpResponse("a staff page")


# The project's URLs and one staff page that needs work_queue, to show the landing page's linking.
urlpatterns = [
    *hotline_urlpatterns,
    path("staff/test-page/", staff_view("work_queue")(staff_page_view), name="staff-test-page"),
]


def test_the_staff_page_links_pages_that_exist_and_the_role_may_open(settings, monkeypatch, staff_client):
    settings.ROOT_URLCONF = __name__
    monkeypatch.setattr(
        staff_views,
        "STAFF_PAGES",
        (("staff-test-page", "Test page", "For tests."), ("staff-not-built-yet", "Later", "Not there.")),
    )

    analyst_page = staff_client("analyst").get("/staff/").content.decode()
    coordinator_page = staff_client("coordinator").get("/staff/").content.decode()

    assert 'href="/staff/test-page/"' in analyst_page
    # Coordinators do not work the queues (no work_queue permission); a page that does not exist is
    # never linked.
    assert "/staff/test-page/" not in coordinator_page
    assert "Later" not in analyst_page
    assert "Later" not in coordinator_page


# --- The Django admin -----------------------------------------------------------------------------------


def test_the_admin_refuses_a_password_only_session(client):
    admin = get_user_model().objects.create_superuser("root", password="a long enough password")
    client.force_login(admin)

    response = client.get("/admin/", follow=True)

    # Via the admin's login URL, which now only redirects, to the two-factor login.
    assert [urlsplit(url).path for url, _status in response.redirect_chain] == ["/admin/login/", LOGIN]
    assert "Staff login" in response.content.decode()


@pytest.mark.parametrize("debug", [True, False])
def test_the_admin_login_form_is_gone_whatever_debug(settings, client, debug):
    settings.DEBUG = debug
    get_user_model().objects.create_superuser("root", password="a long enough password")

    assert redirect_path(client.get("/admin/login/")) == LOGIN
    # Posting a password to the admin's login logs nobody in.
    client.post("/admin/login/", {"username": "root", "password": "a long enough password"})
    assert redirect_path(client.get("/admin/")) in {"/admin/login/", LOGIN}
    assert "_auth_user_id" not in client.session


def test_with_debug_off_the_admin_still_requires_the_second_factor(settings, staff_client):
    settings.DEBUG = False
    verified = staff_client("admin")
    unverified = Client()
    unverified.force_login(verified.user)

    assert verified.get("/admin/").status_code == 200
    assert unverified.get("/admin/").status_code == 302


def test_two_factor_cannot_be_switched_off_by_the_user(staff_client):
    # two_factor's "disable" and profile pages are not routed.
    for name in ("two_factor:disable", "two_factor:profile"):
        with pytest.raises(NoReverseMatch):
            reverse(name)
    client = staff_client("admin")
    assert client.get("/account/two_factor/disable/").status_code == 404
    assert TOTPDevice.objects.filter(user=client.user).exists()


# --- The two-factor login --------------------------------------------------------------------------------


def test_the_whole_two_factor_login(client, analyst):
    user, password, device = analyst

    first = login_password_step(client, user.username, password)
    assert first.status_code == 200
    assert 'name="token-otp_token"' in first.content.decode()
    assert "_auth_user_id" not in client.session  # the password alone has not logged in

    second = login_token_step(client, totp_now(device))
    assert redirect_path(second) == "/staff/"
    assert client.get("/staff/").status_code == 200


def test_a_wrong_token_does_not_log_in_and_is_audited(client, analyst):
    user, password, device = analyst
    wrong = f"{(int(totp_now(device)) + 1) % 1_000_000:06d}"

    login_password_step(client, user.username, password)
    response = login_token_step(client, wrong)

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert redirect_path(client.get("/staff/")) == LOGIN
    event = AuditEvent.objects.get(action="auth.second_factor_failed")
    assert event.actor == user


def test_a_code_cannot_be_used_twice(analyst):
    user, password, device = analyst
    code = totp_now(device)
    first, second = Client(), Client()

    login_password_step(first, user.username, password)
    assert redirect_path(login_token_step(first, code)) == "/staff/"
    login_password_step(second, user.username, password)
    assert login_token_step(second, code).status_code == 200  # refused: the form again
    assert "_auth_user_id" not in second.session


def test_a_recovery_code_works_once(analyst):
    user, password, _device = analyst
    code = staff_recovery_codes(user=user)[0]

    client = Client()
    login_password_step(client, user.username, password)
    assert redirect_path(login_token_step(client, code, step="backup")) == "/staff/"
    assert client.get("/staff/").status_code == 200
    assert code not in staff_recovery_codes(user=user)

    again = Client()
    login_password_step(again, user.username, password)
    assert login_token_step(again, code, step="backup").status_code == 200
    assert "_auth_user_id" not in again.session


def test_the_login_page_has_a_strict_content_security_policy(client):
    response = client.get(LOGIN)

    assert response.status_code == 200
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";") if " " in part.strip()
    )
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    page = response.content.decode()
    assert "<script" not in page
    assert "style=" not in page
    assert "cdnjs" not in page  # two_factor's own base template is not used
    assert "hotline.css" in page


def test_the_set_up_and_recovery_code_pages_render_in_our_layout(client, staff_client):
    user = get_user_model().objects.create_user("nodevice", password="a long enough password")
    client.force_login(user)
    welcome = client.get(reverse("two_factor:setup"))
    qr_step = client.post(reverse("two_factor:setup"), {"setup_view-current_step": "welcome"})
    codes = staff_client("analyst").get(reverse("two_factor:backup_tokens"))

    for response in (welcome, qr_step, codes):
        assert response.status_code == 200
        page = response.content.decode()
        assert "hotline.css" in page
        assert "<script" not in page
        assert "cdnjs" not in page
    assert f'src="{reverse("two_factor:qr")}"' in qr_step.content.decode()
    assert client.get(reverse("two_factor:qr")).status_code == 200
    assert len(re.findall(r"<li><code>", codes.content.decode())) == 10


# --- Lockout and the audit trail -------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_account_even_for_the_right_password(client, analyst):
    user, password, _device = analyst

    statuses = [login_password_step(client, user.username, "wrong password").status_code for _ in range(5)]

    assert statuses[:4] == [200] * 4
    assert statuses[4] == 429
    response = login_password_step(client, user.username, password)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.locked_out", details__username=user.username).exists()
    # Another address does not help: the username itself is locked.
    other = Client(REMOTE_ADDR="192.0.2.10")
    assert login_password_step(other, user.username, password).status_code == 429


def test_one_address_is_locked_out_whatever_username_it_tries(client, analyst):
    user, password, _device = analyst
    for n in range(5):
        login_password_step(client, f"guess{n}", "wrong password")

    assert login_password_step(client, user.username, password).status_code == 429


def test_logins_and_failures_are_audited_without_the_password(client, analyst):
    user, password, device = analyst

    login_password_step(client, user.username, "not-the-password-xyzzy")
    login_password_step(client, "nobody", "another-secret-plugh")
    two_factor_login(client, user.username, password, device)

    failed = list(AuditEvent.objects.filter(action="auth.login_failed").order_by("pk"))
    assert [event.details["username"] for event in failed] == [user.username, "nobody"]
    assert all(event.actor is None for event in failed)
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor == user
    assert login.details["second_factor"] == "TOTPDevice"
    assert login.details["client"]
    assert "127.0.0.1" not in str(login.details)
    everything = str(list(AuditEvent.objects.values("details", "actor_label")))
    everything += str(list(AccessAttempt.objects.values()))  # axes' own log of failed attempts
    for secret in ("not-the-password-xyzzy", "another-secret-plugh", password):
        assert secret not in everything


# --- Sessions -------------------------------------------------------------------------------------------


def test_the_session_expires_after_inactivity(settings, staff_client):
    settings.SESSION_COOKIE_AGE = 600
    client = staff_client("analyst")
    assert client.get("/staff/").status_code == 200

    # Every request restarts the clock: the session now ends SESSION_COOKIE_AGE from now.
    session = Session.objects.get(session_key=client.session.session_key)
    remaining = session.expire_date - timezone.now()
    assert timedelta(seconds=590) < remaining <= timedelta(seconds=600)

    # Ten minutes without a request later, the session is gone.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    assert redirect_path(client.get("/staff/")) == LOGIN


# --- create_staff and demo_totp -------------------------------------------------------------------------


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def code_from_uri(uri: str) -> str:
    query = parse_qs(urlsplit(uri).query)
    secret = query["secret"][0]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, digits=int(query.get('digits', ['6'])[0])):06d}"


@pytest.mark.parametrize(
    ("role", "is_staff", "is_superuser"),
    [("analyst", False, False), ("senior_analyst", False, False), ("coordinator", True, False), ("admin", True, True)],
)
def test_create_staff_prints_what_the_user_needs_to_log_in(client, role, is_staff, is_superuser):
    output = run("create_staff", "newbie", "--role", role, "--email", "newbie@example.org")

    password = re.search(r"^Password: (\S+)$", output, re.M).group(1)
    uri = re.search(r"^(otpauth://totp/\S+)$", output, re.M).group(1)
    assert "issuer=Hotline" in uri
    user = get_user_model().objects.get(username="newbie")
    assert (user.is_staff, user.is_superuser) == (is_staff, is_superuser)
    assert list(user.groups.values_list("name", flat=True)) == [role]
    codes = staff_recovery_codes(user=user)
    assert len(codes) == 10
    assert all(code in output for code in codes)
    assert AuditEvent.objects.filter(action="staff.created", object_id=str(user.pk)).exists()
    assert password not in str(list(AuditEvent.objects.values("details")))

    login_password_step(client, "newbie", password)
    assert redirect_path(login_token_step(client, code_from_uri(uri))) == "/staff/"
    assert client.get("/staff/").status_code == 200


def test_create_staff_refuses_an_existing_user_and_resets_on_request(client):
    first = run("create_staff", "dup", "--role", "analyst", "--no-qr")
    old_password = re.search(r"^Password: (\S+)$", first, re.M).group(1)
    with pytest.raises(CommandError, match="exists"):
        run("create_staff", "dup", "--role", "admin")

    output = run("create_staff", "dup", "--reset", "--no-qr")

    new_password = re.search(r"^Password: (\S+)$", output, re.M).group(1)
    uri = re.search(r"^(otpauth://totp/\S+)$", output, re.M).group(1)
    assert new_password != old_password
    assert AuditEvent.objects.filter(action="staff.credentials_reset").count() == 1
    assert TOTPDevice.objects.filter(user__username="dup").count() == 1
    assert StaticToken.objects.filter(device__user__username="dup").count() == 10
    assert login_password_step(client, "dup", old_password).status_code == 200
    assert "_auth_user_id" not in client.session
    login_password_step(client, "dup", new_password)
    assert redirect_path(login_token_step(client, code_from_uri(uri))) == "/staff/"


def test_create_staff_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        run("create_staff", "x", "--role", "superhero")
    assert not get_user_model().objects.filter(username="x").exists()


def test_demo_totp_refuses_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        run("demo_totp", "analyst")


def test_demo_totp_prints_codes_of_demo_users_only(settings):
    settings.DEBUG = True
    staff_create(username="real", role="analyst")

    with pytest.raises(CommandError, match="Not a demo user"):
        run("demo_totp", "real")
    # A real account that happens to be named like a demo user has a random key: no code for it.
    staff_create(username="analyst", role="analyst")
    with pytest.raises(CommandError, match="no demo authenticator"):
        run("demo_totp", "analyst")
