from __future__ import annotations

from django.urls import include, path

from reports.views import ops, public, staff
from reports.views.api import api

urlpatterns = [
    path("", public.home, name="home"),
    path("report/", public.report_form, name="report"),
    path("report/status/", public.report_status, name="report-status"),
    path("staff/", staff.home, name="staff-home"),
    path("staff/", include("reports.urls_analyst")),
    path("api/v1/", api.urls),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics, name="metrics"),
]
