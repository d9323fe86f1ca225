"""The public side: home, report form, receipt, status check. No file upload anywhere."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from reports.forms import ReportForm, StatusForm
from reports.selectors.intake import report_get_by_receipt
from reports.selectors.referrals import report_referral_outcome
from reports.services.intake import report_create_public
from reports.services.throttle import client_key, throttle_exceeded, throttle_hit

logger = logging.getLogger(__name__)

# What a reporter is told of the referrals: the outcome only, never who was told or how.
OUTCOME_LABELS = {
    "removed": gettext_lazy("The material you reported has been removed."),
    "sent": gettext_lazy("We have passed your report on to those who can act on it."),
    "acknowledged": gettext_lazy("We have passed your report on to those who can act on it."),
    "not_removed": gettext_lazy("The material is still online. We keep following it up."),
    "refused": gettext_lazy("The material is still online. We keep following it up."),
}


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "reports/public/home.html")


@never_cache
@require_http_methods(["GET", "POST"])
def report_form(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "reports/public/report_form.html", {"form": ReportForm()})

    form = ReportForm(request.POST)
    client = client_key(request)
    if throttle_exceeded(scope="report", key=client, limit=settings.HOTLINE_REPORT_RATE_LIMIT):
        form.is_valid()  # keep the reporter's input on the page
        form.add_error(None, _("You have sent many reports in a short time. Please try again in an hour."))
        return render(request, "reports/public/report_form.html", {"form": form}, status=429)
    throttle_hit(scope="report", key=client)

    if form.is_bot():
        # Silently dropped: a bot learns nothing, a person never sees this field.
        logger.info("public report dropped by honeypot")
        return render(request, "reports/public/thanks.html")
    if not form.is_valid():
        return render(request, "reports/public/report_form.html", {"form": form}, status=400)

    data = form.cleaned_data
    receipt = report_create_public(
        url_items=data["urls"],
        category=data["category"],
        ai_suspected=data["ai_suspected"],
        where_found=data["where_found"],
        description=data["description"],
        email=data["email"],
    )
    # Rendered, not redirected: the PIN is shown once and never stored in clear anywhere.
    return render(
        request,
        "reports/public/receipt.html",
        {
            "code": receipt.code,
            "pin": receipt.pin,
            "url_count": len(data["urls"]),
            "merged_duplicates": form.merged_duplicates,
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
def report_status(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "reports/public/status.html", {"form": StatusForm()})
    form = StatusForm(request.POST)
    if not form.is_valid():
        return render(request, "reports/public/status.html", {"form": form}, status=400)
    lookup = report_get_by_receipt(
        code=form.cleaned_data["code"], pin=form.cleaned_data["pin"], client=client_key(request)
    )
    if lookup.throttled:
        form.add_error(None, _("Too many attempts. Please try again in an hour."))
        return render(request, "reports/public/status.html", {"form": form}, status=429)
    if lookup.report is None:
        form.add_error(None, _("We could not find a report with this code and PIN. Check both and try again."))
        return render(request, "reports/public/status.html", {"form": form}, status=400)
    outcome = report_referral_outcome(lookup.report)
    return render(
        request,
        "reports/public/status.html",
        {
            "form": StatusForm(),
            "report": lookup.report,
            "outcome": outcome,
            "outcome_label": OUTCOME_LABELS.get(outcome),
        },
    )
