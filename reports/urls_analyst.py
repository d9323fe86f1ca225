"""The analyst workspace's routes, all under /staff/ (two-factor staff only: see views/decorators.py)."""

from __future__ import annotations

from django.urls import path

from reports.views import analyst, referrals, stats

urlpatterns = [
    path("queues/", analyst.queues, name="staff-queues"),
    path("queues/known_new_location/confirm", analyst.queue_confirm_known, name="staff-confirm-known"),
    path("queues/<str:queue>/", analyst.queue_list, name="staff-queue"),
    path("queues/<str:queue>/next", analyst.queue_next, name="staff-queue-next"),
    path("cases/<int:pk>/", analyst.case_page, name="staff-case"),
    path("cases/<int:pk>/claim", analyst.case_claim_view, name="staff-case-claim"),
    path("cases/<int:pk>/release", analyst.case_release_view, name="staff-case-release"),
    path("cases/<int:pk>/reassign", analyst.case_reassign_view, name="staff-case-reassign"),
    path("cases/<int:pk>/assess", analyst.case_assess, name="staff-case-assess"),
    path("cases/<int:pk>/second-opinion", analyst.case_second_opinion, name="staff-case-second-opinion"),
    path("cases/<int:pk>/referrals/add", referrals.case_referral_add, name="staff-case-referral-add"),
    path("cases/<int:pk>/referrals/propose", referrals.case_referrals_propose, name="staff-case-referrals-propose"),
    path("cases/<int:pk>/hosting", referrals.case_hosting, name="staff-case-hosting"),
    path("referrals/", referrals.referrals, name="staff-referrals"),
    path("referrals/send", referrals.send_notices, name="staff-referrals-send"),
    path("referrals/police-package", referrals.police_package, name="staff-police-package"),
    path("referrals/<int:pk>/status", referrals.referral_status, name="staff-referral-status"),
    path("referrals/<int:pk>/recipient", referrals.referral_recipient, name="staff-referral-recipient"),
    path("contents/<int:pk>/preview", analyst.content_preview, name="staff-content-preview"),
    path("contents/<int:pk>/reveal", analyst.content_reveal_view, name="staff-content-reveal"),
    path("preferences/", analyst.preferences, name="staff-preferences"),
    path("exposure/", analyst.exposure, name="staff-exposure"),
    path("audit/", analyst.audit, name="staff-audit"),
    path("audit/export.csv", analyst.audit_export, name="staff-audit-export"),
    path("statistics/", stats.dashboard, name="staff-stats"),
    path("statistics/export/<str:table>.csv", stats.export_table, name="staff-stats-export"),
    path("statistics/year/<int:year>.<str:fmt>", stats.year_summary, name="staff-stats-year"),
]
