"""Hosting: where a fetched URL is served from (IP, country, ASN, provider), and whom to tell.

Filled from MaxMind-format databases after each fetch (reports/lib/geoip.py), unless an analyst has
set the hosting by hand: an override is never overwritten by a later lookup.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from reports.lib.geoip import HostingInfo, reader_for
from reports.models import AbuseContact, Url
from reports.services.audit import audit_record
from reports.services.staff import require_permission

HOSTING_FIELDS = ["hosting_ip", "hosting_country", "hosting_asn", "hosting_provider"]


def hosting_lookup(ip: str | None) -> HostingInfo:
    return reader_for(settings.HOTLINE_GEOIP_COUNTRY_DB, settings.HOTLINE_GEOIP_ASN_DB).lookup(ip)


def url_hosting_fill(*, url: Url) -> list[str]:
    """Set the URL's hosting fields from its connected IP, unsaved; returns the fields changed, for the
    caller's own save (fetching saves them with the rest of the URL: one UPDATE, not two). Only what
    the databases know is set: without them the fields stay as they are."""
    if url.hosting_overridden or not url.hosting_ip:
        return []
    info = hosting_lookup(url.hosting_ip)
    changed = []
    for field, value in (
        ("hosting_country", info.country),
        ("hosting_asn", info.asn),
        ("hosting_provider", info.provider),
    ):
        if value and getattr(url, field) != value:
            setattr(url, field, value)
            changed.append(field)
    return changed


@transaction.atomic
def url_hosting_override(
    *, user: AbstractBaseUser, url: Url, ip: str, country: str, asn: int | None, provider: str, reason: str
) -> Url:
    """An analyst sets where the URL is hosted (the lookup had nothing, or was wrong)."""
    require_permission(user, "manage_referrals")
    country = country.strip().upper()
    if country and (len(country) != 2 or not country.isalpha()):
        raise ValidationError("Country must be a two-letter ISO code.")
    if ip:
        try:
            ip = str(ipaddress.ip_address(ip.strip()))
        except ValueError as exc:
            raise ValidationError("Not an IP address.") from exc
    url = Url.objects.select_for_update().get(pk=url.pk)
    before = {field: getattr(url, field) for field in HOSTING_FIELDS}
    url.hosting_ip = ip or url.hosting_ip
    url.hosting_country = country
    url.hosting_asn = asn
    url.hosting_provider = provider.strip()[:200]
    url.hosting_overridden = True
    url.save(update_fields=[*HOSTING_FIELDS, "hosting_overridden"])
    audit_record(
        action="url.hosting_overridden",
        actor=user,
        obj=url,
        details={
            "before": before,
            "after": {field: getattr(url, field) for field in HOSTING_FIELDS},
            "reason": reason,
        },
    )
    return url


def abuse_contact_for(url: Url) -> AbuseContact | None:
    """Where a notice about `url` goes: the contact for its ASN, else for its provider's name."""
    if url.hosting_asn:
        contact = AbuseContact.objects.filter(asn=url.hosting_asn).first()
        if contact is not None:
            return contact
    if url.hosting_provider:
        return AbuseContact.objects.filter(provider__iexact=url.hosting_provider).order_by("pk").first()
    return None
