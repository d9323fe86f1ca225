"""Django admin: the minimal staff side until the analyst workspace lands.

Reports are read-mostly here: the receipt PIN digest and the encrypted e-mail are never shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from reports import models
from reports.services.audit import audit_record


class ReportedUrlInline(admin.TabularInline):
    model = models.ReportedUrl
    fields = ("position", "submitted_url", "url", "was_known")
    readonly_fields = fields
    extra = 0
    can_delete = False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Visible to staff with view permission (and superusers); never added, changed or deleted here."""

    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AuditedAdmin(admin.ModelAdmin):
    """Tables coordinators edit here: every change and deletion also goes to the audit trail (the
    admin saves in a transaction, so the audit row commits or rolls back with the change)."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            action=f"{obj._meta.model_name}.{'changed' if change else 'created'}",
            actor=request.user,
            obj=obj,
            details={"fields": {name: form.cleaned_data.get(name) for name in form.changed_data}},
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit_record(action=f"{obj._meta.model_name}.deleted", actor=request.user, obj=obj, details={"was": str(obj)})
        super().delete_model(request, obj)


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
class PartnerAdmin(AuditedAdmin):
    list_display = ("name", "kind", "country", "active", "created_at")
    list_filter = ("kind", "active", "country")
    search_fields = ("name",)


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued by `manage.py create_partner` (shown once); here they are only listed and
    revoked. The digest is never shown and a token cannot be edited back to life."""

    list_display = ("partner", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("partner", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("partner__name", "prefix", "name")
    fields = ("partner", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[models.ApiToken]) -> None:
        from reports.services.partners import token_revoke

        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token)
            revoked += 1
        self.message_user(request, f"{revoked} token(s) revoked.")


@admin.register(models.HashList)
class HashListAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "default_category", "active", "created_at")
    list_filter = ("active",)


@admin.register(models.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: visible, never editable (PostgreSQL refuses changes to these rows anyway)."""

    list_display = ("at", "action", "actor", "actor_label", "object_type", "object_id")
    list_filter = ("action",)


# --- The pipeline, read-only ----------------------------------------------------------------------
# Staff can follow fetch → hash → match → case here. Nothing is editable, and no picture is shown:
# a content's preview is only ever reported as stored or not, never decrypted or rendered.


class ChildCaptureInline(admin.TabularInline):
    model = models.Capture
    fk_name = "parent"
    fields = ("requested_url", "http_status", "detected_type", "error", "content")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "images linked from this page"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(models.Capture)
class CaptureAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "requested_url",
        "url",
        "parent",
        "http_status",
        "detected_type",
        "byte_count",
        "error",
        "content",
        "is_recheck",
        "started_at",
    )
    list_filter = ("error", "is_recheck", "detected_type")
    list_select_related = ("url", "content", "parent")
    search_fields = ("requested_url", "final_url", "url__canonical_url", "content__sha256")
    date_hierarchy = "started_at"
    fields = (
        "url",
        "parent",
        "requested_url",
        "final_url",
        "ip",
        "http_status",
        "declared_type",
        "detected_type",
        "byte_count",
        "error",
        "error_detail",
        "content",
        "is_recheck",
        "started_at",
        "finished_at",
    )
    inlines = [ChildCaptureInline]


@admin.register(models.Content)
class ContentAdmin(ReadOnlyAdmin):
    """Hashes, size and provenance of a distinct file. The encrypted preview is never shown (not
    even blurred): the admin says whether one is stored, and nothing more."""

    list_display = (
        "sha256",
        "media_type",
        "dimensions",
        "byte_count",
        "ai_indicated",
        "quarantined",
        "preview_stored",
        "pdq_quality",
        "matched_at",
        "first_seen_at",
    )
    list_filter = ("ai_indicated", "quarantined", "media_type")
    search_fields = ("sha256", "md5", "sha1", "pdq", "phash")
    date_hierarchy = "first_seen_at"
    # An explicit list without `preview`: its bytes never reach a page.
    fields = (
        "sha256",
        "md5",
        "sha1",
        "pdq",
        "pdq_quality",
        "pdq_dihedral",
        "phash",
        "media_type",
        "dimensions",
        "byte_count",
        "ai_indicated",
        "provenance",
        "preview_stored",
        "preview_purged_at",
        "quarantined",
        "first_seen_at",
        "matched_at",
        "match_seq",
    )
    readonly_fields = ("dimensions", "preview_stored")

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.Content]:
        from django.db.models import BooleanField, Case, Value, When
        from django.db.models.functions import Length

        # The flag is computed in the database, so the preview's bytes are never even loaded.
        return (
            super()
            .get_queryset(request)
            .defer("preview")
            .annotate(_preview_bytes=Length("preview"))
            .annotate(
                _preview_stored=Case(
                    When(preview_purged_at__isnull=True, _preview_bytes__gt=0, then=Value(True)),
                    default=Value(False),
                    output_field=BooleanField(),
                )
            )
        )

    @admin.display(description="preview stored (encrypted)", boolean=True)
    def preview_stored(self, obj: models.Content) -> bool:
        return bool(getattr(obj, "_preview_stored", False))

    @admin.display(description="size (px)")
    def dimensions(self, obj: models.Content) -> str:
        return f"{obj.width} × {obj.height}" if obj.width and obj.height else "—"


@admin.register(models.Match)
class MatchAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "distance",
        "content",
        "submitted_hash",
        "matched_content",
        "known_hash",
        "created_at",
    )
    list_filter = ("kind", ("known_hash__hash_list", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("content", "submitted_hash", "matched_content", "known_hash")
    search_fields = ("content__sha256", "matched_content__sha256", "known_hash__value", "submitted_hash__value")
    fields = ("kind", "distance", "content", "submitted_hash", "matched_content", "known_hash", "created_at")


class AssessmentInline(admin.TabularInline):
    model = models.Assessment
    fields = ("content", "verdict", "age_group", "virtual", "analyst", "inherited_from", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(models.Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "url",
        "report",
        "queue",
        "status",
        "priority",
        "content_count",
        "auto_closed",
        "claimed_by",
        "created_at",
        "closed_at",
    )
    list_filter = ("queue", "status", "auto_closed")
    list_select_related = ("url", "report", "claimed_by")
    search_fields = ("url__canonical_url", "report__receipt_code", "report__external_id")
    date_hierarchy = "created_at"
    ordering = ("status", "priority", "created_at")
    fields = (
        "url",
        "report",
        "queue",
        "priority",
        "status",
        "auto_closed",
        "contents",
        "claimed_by",
        "claim_expires_at",
        "created_at",
        "assessed_at",
        "closed_at",
    )
    inlines = [AssessmentInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.Case]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(_content_count=Count("contents", distinct=True))

    @admin.display(description="contents", ordering="_content_count")
    def content_count(self, obj: models.Case) -> int:
        return obj._content_count  # type: ignore[attr-defined]


@admin.register(models.SubmittedHash)
class SubmittedHashAdmin(ReadOnlyAdmin):
    list_display = ("id", "algorithm", "value", "report", "created_at", "matched_at")
    list_filter = ("algorithm", ("report__partner", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("report",)
    search_fields = ("value", "report__external_id")
    fields = ("report", "algorithm", "value", "created_at", "matched_at", "match_seq")


@admin.register(models.KnownHash)
class KnownHashAdmin(ReadOnlyAdmin):
    list_display = ("id", "hash_list", "algorithm", "value", "category", "quarantined", "added_at")
    list_filter = ("hash_list", "algorithm", "category", "quarantined")
    list_select_related = ("hash_list",)
    search_fields = ("value",)
    fields = ("hash_list", "algorithm", "value", "category", "quarantined", "added_at")


# --- The analyst workspace, read-only -------------------------------------------------------------


@admin.register(models.RevealGrant)
class RevealGrantAdmin(ReadOnlyAdmin):
    """Who was allowed to see which unblurred preview, and whether they did. Issued only by an audited
    reveal (`content_reveal`); the token's digest is never shown, and no picture is."""

    list_display = ("id", "user", "content", "case", "created_at", "expires_at", "used_at")
    list_filter = (("used_at", admin.EmptyFieldListFilter), ("user", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user", "content", "case")
    search_fields = ("user__username", "content__sha256")
    date_hierarchy = "created_at"
    # An explicit list without `token_digest`.
    fields = ("user", "content", "case", "created_at", "expires_at", "used_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.RevealGrant]:
        # Neither the digest nor the content's encrypted preview is read for these pages.
        return super().get_queryset(request).defer("token_digest", "content__preview")


@admin.register(models.StaffPreference)
class StaffPreferenceAdmin(ReadOnlyAdmin):
    """Staff members' display preferences; each changes their own on the staff pages (audited)."""

    list_display = ("user", "greyscale", "updated_at")
    list_filter = ("greyscale",)
    list_select_related = ("user",)
    search_fields = ("user__username",)
    fields = ("user", "greyscale", "updated_at")


@admin.register(models.AbuseContact)
class AbuseContactAdmin(AuditedAdmin):
    list_display = ("provider", "asn", "email", "country", "language")
    search_fields = ("provider", "email", "asn")
    list_filter = ("country", "language")


@admin.register(models.ReferralRule)
class ReferralRuleAdmin(AuditedAdmin):
    list_display = ("situation", "kind", "active")
    list_filter = ("situation", "kind", "active")
    list_editable = ("active",)


class ReferralEventInline(admin.TabularInline):
    model = models.ReferralEvent
    fields = ("at", "status", "actor", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(models.Referral)
class ReferralAdmin(ReadOnlyAdmin):
    """Read-only: referrals change through the case page and the referral list, which audit it."""

    list_display = ("id", "kind", "recipient", "status", "case", "sent_at", "removed_at", "escalation")
    list_filter = ("kind", "status", "escalation")
    search_fields = ("recipient", "email", "reference")
    inlines = [ReferralEventInline]
