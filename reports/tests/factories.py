"""Small factory functions for tests. They go through the services, so the rows they make are
the rows real use makes (canonical URLs, receipt digests, sightings)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpResponse
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from reports.lib.urls import canonicalize_url
from reports.models import Partner, Report
from reports.models.choices import AiSuspected, Category, PartnerKind, WhereFound
from reports.services.intake import PublicReceipt, UrlItem, report_create_public

_sequence = count(1)


def unique_url() -> str:
    """A fresh public URL on a reserved example domain."""
    return f"https://example.com/page/{next(_sequence)}"


def make_url_items(urls: Iterable[str]) -> list[UrlItem]:
    """URLs as a reporter typed them, validated and canonicalised as the public form does."""
    return [
        UrlItem(
            submitted=url,
            canonical=canonicalize_url(
                url, allow_hosts=settings.HOTLINE_FETCH_ALLOW_HOSTS, max_length=settings.HOTLINE_MAX_URL_LENGTH
            ),
        )
        for url in urls
    ]


def make_public_receipt(
    *,
    urls: Iterable[str] | None = None,
    category: str = Category.CSAM,
    ai_suspected: str = AiSuspected.UNKNOWN,
    where_found: str = WhereFound.WEBSITE,
    description: str = "",
    email: str = "",
) -> PublicReceipt:
    """A public report stored by the intake service; the receipt holds the code and the one-time PIN."""
    return report_create_public(
        url_items=make_url_items(urls if urls is not None else [unique_url()]),
        category=category,
        ai_suspected=ai_suspected,
        where_found=where_found,
        description=description,
        email=email,
    )


def make_public_report(**kwargs: Any) -> Report:
    """Like `make_public_receipt` for tests that need only the stored report."""
    return make_public_receipt(**kwargs).report


def make_partner(*, name: str | None = None, kind: str = PartnerKind.HOTLINE, country: str = "NL") -> Partner:
    return Partner.objects.create(name=name or f"Partner {next(_sequence)}", kind=kind, country=country)


def report_form_data(urls: str | Iterable[str] = "", **overrides: str) -> dict[str, str]:
    """A valid POST body for /report/; `urls` may be the textarea's text or a list of lines."""
    text = urls if isinstance(urls, str) else "\n".join(urls)
    data = {
        "urls": text or unique_url(),
        "category": Category.CSAM.value,
        "ai_suspected": AiSuspected.UNKNOWN.value,
        "where_found": WhereFound.WEBSITE.value,
        "description": "",
        "email": "",
        "website": "",
    }
    data.update(overrides)
    return data


def submit_report(
    client: Client, urls: str | Iterable[str] = "", *, remote_addr: str = "192.0.2.10", **overrides: str
) -> HttpResponse:
    """POST the public form as a visitor from `remote_addr` and return the response."""
    return client.post("/report/", report_form_data(urls, **overrides), REMOTE_ADDR=remote_addr)


# --- Staff logins -------------------------------------------------------------------------------------
# two_factor's login is a form wizard; its field prefix is the view class's name, normalised.
LOGIN_WIZARD = "staff_login_view"


def login_verified(client: Client, user: AbstractBaseUser, device: TOTPDevice | None = None) -> Client:
    """Log `client` in as `user`, verified by `device` (default: the user's TOTP device), as
    django_otp's login(request, device) does: the device's persistent id in the session."""
    device = device or TOTPDevice.objects.get(user=user, confirmed=True, name="default")
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def totp_now(device: TOTPDevice) -> str:
    """The code the user's authenticator app shows now."""
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    return f"{code:0{device.digits}d}"


def login_password_step(client: Client, username: str, password: str, **extra: Any) -> HttpResponse:
    return client.post(
        "/account/login/",
        {f"{LOGIN_WIZARD}-current_step": "auth", "auth-username": username, "auth-password": password},
        **extra,
    )


def login_token_step(client: Client, token: str, *, step: str = "token", **extra: Any) -> HttpResponse:
    """The second step: a TOTP code (step "token") or a recovery code (step "backup")."""
    return client.post("/account/login/", {f"{LOGIN_WIZARD}-current_step": step, f"{step}-otp_token": token}, **extra)


def two_factor_login(client: Client, username: str, password: str, device: TOTPDevice) -> HttpResponse:
    """The whole staff login, as a person does it: password, then the authenticator's current code."""
    response = login_password_step(client, username, password)
    assert response.status_code == 200, response
    return login_token_step(client, totp_now(device))
