from __future__ import annotations

from django.urls import path

from reports.views import public
from reports.views.api import api

urlpatterns = [
    path("", public.home, name="home"),
    path("report/", public.report_form, name="report"),
    path("report/status/", public.report_status, name="report-status"),
    path("api/v1/", api.urls),
]
