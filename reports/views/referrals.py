"""Referral pages: the coordinators' list, the actions on a case's referrals, the hosting override,
and the police package download. Views validate, call one service or selector, and render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from reports.models import Case, Referral
from reports.models.choices import ReferralKind
from reports.referral_forms import (
    HostingForm,
    ReferralAddForm,
    ReferralFilterForm,
    ReferralRecipientForm,
    ReferralStatusForm,
)
from reports.selectors.referrals import (
    ReferralFilters,
    case_referrals,
    get_referral_for_user,
    referral_list,
)
from reports.selectors.triage import get_case_for_user
from reports.services.hosting import url_hosting_override
from reports.services.referrals import (
    in_notice_window,
    notices_send_due,
    police_package_export,
    referral_create,
    referral_record_status,
    referral_set_recipient,
    referrals_propose_for_case,
)
from reports.views.decorators import staff_view


def _invalid(request: HttpRequest, errors: Any, *, back: str) -> HttpResponse:
    """Bad input: the errors on a page of their own (400), with the way back; nothing was written."""
    if isinstance(errors, ValidationError):
        errors = errors.messages
    elif hasattr(errors, "values"):
        errors = [str(message) for messages_ in errors.values() for message in messages_]
    return render(request, "reports/referrals/invalid.html", {"errors": errors, "back": back}, status=400)


def case_referral_context(case: Case, user: Any) -> dict[str, Any]:
    """What the case page shows of referrals and hosting, for those who manage referrals."""
    if not user.has_perm("reports.manage_referrals"):
        return {}
    found = case_referrals(case)
    return {
        "referrals": found,
        "police_referral_ids": [r.pk for r in found if r.kind == ReferralKind.POLICE and r.status != "cancelled"],
        # Own id prefixes: both forms have a "reason" field, on one page.
        "referral_add_form": ReferralAddForm(auto_id="referral_%s"),
        "referral_status_form": ReferralStatusForm(),
        "hosting_form": HostingForm(
            auto_id="hosting_%s",
            initial={
                "ip": case.url.hosting_ip,
                "country": case.url.hosting_country,
                "asn": case.url.hosting_asn,
                "provider": case.url.hosting_provider,
            },
        )
        if case.url is not None
        else None,
        "may_refer": True,
    }


def _case_back(case_id: int, anchor: str = "referrals") -> str:
    return reverse("staff-case", args=[case_id]) + f"#{anchor}"


def _back_to(referral: Referral) -> str:
    return _case_back(referral.case_id) if referral.case_id else reverse("staff-referrals")


@never_cache
@require_GET
@staff_view("manage_referrals")
def referrals(request: HttpRequest) -> HttpResponse:
    form = ReferralFilterForm(request.GET or {"status": "open"})
    data = form.cleaned_data if form.is_valid() else {"status": "open"}
    filters = ReferralFilters(
        status=data.get("status", ""), kind=data.get("kind", ""), attention=bool(data.get("attention"))
    )
    page = Paginator(referral_list(request.user, filters), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "reports/referrals/list.html",
        {"form": form, "page": page, "in_window": in_notice_window(timezone.now()), "police": ReferralKind.POLICE},
    )


@never_cache
@require_POST
@staff_view("manage_referrals")
def send_notices(request: HttpRequest) -> HttpResponse:
    if not in_notice_window(timezone.now()):
        messages.warning(request, _("Outside the working-hours window: notices wait until it opens."))
        return redirect("staff-referrals")
    count = notices_send_due()
    messages.success(request, _("%(count)d notice e-mail(s) sent.") % {"count": count})
    return redirect("staff-referrals")


@never_cache
@require_POST
@staff_view("manage_referrals")
def police_package(request: HttpRequest) -> HttpResponse:
    try:
        ids = sorted({int(value) for value in request.POST.getlist("referral")})
    except ValueError:
        return _invalid(request, [_("Choose police referrals to export.")], back=reverse("staff-referrals"))
    if not ids:
        return _invalid(request, [_("Choose police referrals to export.")], back=reverse("staff-referrals"))
    # Only referrals of cases this user may open.
    allowed = [pk for pk in ids if _may_open(request.user, pk)]
    if len(allowed) != len(ids):
        return _invalid(request, [_("Some of these referrals do not exist.")], back=reverse("staff-referrals"))
    try:
        package = police_package_export(user=request.user, referral_ids=ids)
    except ValidationError as exc:
        return _invalid(request, exc, back=reverse("staff-referrals"))
    response = HttpResponse(package.data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{package.filename}"'
    response["X-Package-SHA256"] = package.digest
    return response


def _may_open(user: Any, pk: int) -> bool:
    try:
        get_referral_for_user(user, pk)
    except Http404:
        return False
    return True


@never_cache
@require_POST
@staff_view("manage_referrals")
def case_referral_add(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_case_for_user(request.user, pk)
    back = _case_back(case.pk)
    form = ReferralAddForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form.errors, back=back)
    try:
        referral_create(user=request.user, case=case, **form.cleaned_data)
    except ValidationError as exc:
        return _invalid(request, exc, back=back)
    messages.success(request, _("Referral added."))
    return redirect(back)


@never_cache
@require_POST
@staff_view("manage_referrals")
def case_referrals_propose(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_case_for_user(request.user, pk)
    created = referrals_propose_for_case(case_id=case.pk)
    if created:
        messages.success(request, _("%(count)d referral(s) proposed by the rules.") % {"count": len(created)})
    else:
        messages.info(request, _("The rules propose nothing (more) for this case."))
    return redirect(_case_back(case.pk))


@never_cache
@require_POST
@staff_view("manage_referrals")
def case_hosting(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_case_for_user(request.user, pk)
    back = _case_back(case.pk, "hosting")
    form = HostingForm(request.POST)
    if case.url is None:
        return _invalid(request, [_("This case has no URL.")], back=back)
    if not form.is_valid():
        return _invalid(request, form.errors, back=back)
    data = form.cleaned_data
    try:
        url_hosting_override(
            user=request.user,
            url=case.url,
            ip=data["ip"] or "",
            country=data["country"] or "",
            asn=data["asn"],
            provider=data["provider"],
            reason=data["reason"],
        )
    except ValidationError as exc:
        return _invalid(request, exc, back=back)
    messages.success(request, _("Hosting saved."))
    return redirect(back)


@never_cache
@require_POST
@staff_view("manage_referrals")
def referral_status(request: HttpRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk)
    form = ReferralStatusForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form.errors, back=_back_to(referral))
    try:
        referral_record_status(user=request.user, referral=referral, **form.cleaned_data)
    except ValidationError as exc:
        return _invalid(request, exc, back=_back_to(referral))
    messages.success(request, _("Referral updated."))
    return redirect(_back_to(referral))


@never_cache
@require_POST
@staff_view("manage_referrals")
def referral_recipient(request: HttpRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk)
    form = ReferralRecipientForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form.errors, back=_back_to(referral))
    try:
        referral_set_recipient(user=request.user, referral=referral, **form.cleaned_data)
    except ValidationError as exc:
        return _invalid(request, exc, back=_back_to(referral))
    messages.success(request, _("Recipient saved."))
    return redirect(_back_to(referral))
