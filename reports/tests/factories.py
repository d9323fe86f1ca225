"""Small factory functions for tests. They go through the services, so the rows they make are
the rows real use makes (canonical URLs, receipt digests, sightings)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.test import Client

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
