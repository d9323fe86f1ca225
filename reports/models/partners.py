"""Partners (hotlines, platforms, police, NGOs) and their API tokens."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from .choices import PartnerKind


class Partner(models.Model):
    """An organisation that reports by API, receives forwarded reports, or both."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=PartnerKind.choices)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2, upper case.")
    active = models.BooleanField(default=True)
    # Where forwarded reports go (foreign hotlines): an API base URL or an e-mail address.
    api_url = models.URLField(blank=True)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A partner's bearer token. Only a SHA-256 digest is stored; the token is shown once."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token in lists.")
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.partner} {self.prefix}…"
