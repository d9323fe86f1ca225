"""Django admin: the minimal staff side until the analyst workspace lands.

Reports are read-mostly here: the receipt PIN digest and the encrypted e-mail are never shown.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from reports import models


class ReportedUrlInline(admin.TabularInline):
    model = models.ReportedUrl
    fields = ("position", "submitted_url", "url", "was_known")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(models.Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "receipt_code",
        "source",
        "partner",
        "category",
        "ai_suspected",
        "status",
        "url_count",
        "created_at",
    )
    list_filter = ("source", "category", "ai_suspected", "status", "where_found", "partner")
    search_fields = ("receipt_code", "external_id")
    date_hierarchy = "created_at"
    exclude = ("pin_digest", "email", "idempotency_key")
    readonly_fields = ("source", "partner", "external_id", "receipt_code", "created_at", "found_at", "email_purged_at")
    inlines = [ReportedUrlInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.Report]:
        from django.db.models import Count

        return super().get_queryset(request).select_related("partner").annotate(_url_count=Count("reported_urls"))

    @admin.display(description="URLs", ordering="_url_count")
    def url_count(self, obj: models.Report) -> int:
        return obj._url_count  # type: ignore[attr-defined]


@admin.register(models.Url)
class UrlAdmin(admin.ModelAdmin):
    list_display = (
        "canonical_url",
        "host",
        "sightings",
        "fetch_status",
        "hosting_country",
        "first_seen_at",
        "last_seen_at",
    )
    list_filter = ("fetch_status", "scheme", "hosting_country")
    search_fields = ("canonical_url", "host")
    readonly_fields = ("canonical_url", "url_hash", "scheme", "host", "first_seen_at", "last_seen_at", "sightings")
    date_hierarchy = "first_seen_at"


@admin.register(models.ReportedUrl)
class ReportedUrlAdmin(admin.ModelAdmin):
    list_display = ("submitted_url", "url", "report", "was_known", "created_at")
    list_filter = ("was_known",)
    search_fields = ("submitted_url", "url__canonical_url")
    raw_id_fields = ("report", "url")


@admin.register(models.Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "country", "active", "created_at")
    list_filter = ("kind", "active", "country")
    search_fields = ("name",)


@admin.register(models.HashList)
class HashListAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "default_category", "active", "created_at")
    list_filter = ("active",)


@admin.register(models.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Append-only: visible, never editable."""

    list_display = ("at", "action", "actor", "actor_label", "object_type", "object_id")
    list_filter = ("action",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
