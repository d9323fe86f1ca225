"""The analyst workspace: queues, the case page, blurred previews and audited reveals,
assessments, second opinions, bulk confirmation of known content, exposure and the audit trail.

Views validate input, call one service or selector, and render. Unblurred pixels leave the server
only from `content_preview(view=sharp)`, with a single-use token that `content_reveal` issued (and
audited) moments before, for that user and that content.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from reports.analyst_forms import AssessmentForm, AuditFilterForm, QueueFilterForm, ReassignForm
from reports.lib.imaging import blur_preview, decrypt_preview, greyscale_preview
from reports.models import Case, Content, StaffPreference
from reports.models.choices import CaseQueue, CaseStatus
from reports.selectors.triage import (
    SECOND_OPINION,
    audit_actions,
    audit_events,
    audit_page,
    case_detail,
    exposure_by_analyst,
    get_case_for_user,
    get_content_for_user,
    held_cases,
    holds_claim,
    known_case_summaries,
    queue_cases,
    queue_counts,
    reveals_today,
    sees_all_cases,
    start_of_today,
)
from reports.services.audit import audit_record
from reports.services.triage import (
    assessment_create,
    case_claim,
    case_claim_next,
    case_confirm_second_opinion,
    case_reassign,
    case_release,
    cases_confirm_known,
    content_reveal,
    reveal_grant_consume,
    staff_preference_set,
)
from reports.views.decorators import staff_view
from reports.views.referrals import case_referral_context

QUEUE_KEYS = (*CaseQueue.values, SECOND_OPINION)
EXPOSURE_PERIODS = {"today": None, "7": 7, "30": 30}
# Cases an analyst skipped in this session are not handed back to them by "Next case".
SKIPPED_SESSION_KEY = "hotline_skipped_cases"
SKIPPED_REMEMBERED = 50
# Unblurred or blurred, a preview is never kept by a browser or a proxy.
NO_STORE = "no-store, private, max-age=0"


# Ids from form fields: ASCII digits that fit PostgreSQL's bigint. str.isdigit() alone also admits
# "²" (int() refuses it) and 30-digit numbers (the database refuses them): both were 500s.
_MAX_PK_DIGITS = 18


def _form_pk(value: str) -> int | None:
    if value.isascii() and value.isdigit() and len(value) <= _MAX_PK_DIGITS:
        return int(value)
    return None


def _queue_label(queue: str) -> str:
    return _("Second opinion") if queue == SECOND_OPINION else str(CaseQueue(queue).label)


def _greyscale(user: Any) -> bool:
    preference = StaffPreference.objects.filter(user=user).first()
    return bool(preference and preference.greyscale)


def _wellbeing(user: Any) -> dict[str, Any]:
    count = reveals_today(user)
    limit = settings.HOTLINE_REVEAL_SOFT_LIMIT
    return {"reveals_today": count, "reveal_soft_limit": limit, "break_due": count >= limit}


def _filters_query(form: QueueFilterForm) -> str:
    if not form.is_bound:
        return ""
    form.is_valid()
    values = {name: form.data.get(name, "") for name in form.fields if name not in form.errors and form.data.get(name)}
    return urlencode(values)


def _require_casework_view(user: Any) -> None:
    """Case pages: those who work cases, and those who oversee them (senior analysts, coordinators)."""
    if not (user.has_perm("reports.work_queue") or sees_all_cases(user)):
        raise PermissionDenied


# --- Queues --------------------------------------------------------------------------------------


@never_cache
@require_GET
@staff_view("work_queue")
def queues(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None)
    filters = form.filters()
    return render(
        request,
        "reports/analyst/queues.html",
        {
            "form": form,
            "counts": queue_counts(request.user, filters),
            "held": held_cases(request.user),
            "filter_query": _filters_query(form),
            **_wellbeing(request.user),
        },
    )


def _queue_or_404(queue: str, user: Any) -> str:
    if queue not in QUEUE_KEYS:
        raise Http404("No such queue.")
    if queue == SECOND_OPINION and not user.has_perm("reports.give_second_opinion"):
        raise PermissionDenied
    return queue


@never_cache
@require_POST
@staff_view("work_queue")
def queue_next(request: HttpRequest, queue: str) -> HttpResponse:
    queue = _queue_or_404(queue, request.user)
    form = QueueFilterForm(request.POST)
    filters = form.filters()
    skipped = [pk for pk in request.session.get(SKIPPED_SESSION_KEY, []) if isinstance(pk, int)]
    release_id = _form_pk(request.POST.get("release", ""))
    if release_id is not None:
        # "Skip": give the current case back, and do not get it again straight away.
        current = get_case_for_user(request.user, release_id)
        if holds_claim(request.user, current):
            case_release(user=request.user, case=current)
        skipped = [*skipped, current.pk][-SKIPPED_REMEMBERED:]
        request.session[SKIPPED_SESSION_KEY] = skipped
    case = case_claim_next(user=request.user, queue=queue, filters=filters, exclude=skipped)
    if case is None:
        messages.info(request, _("No case is waiting in “%(queue)s”.") % {"queue": _queue_label(queue)})
        query = _filters_query(form)
        return redirect(reverse("staff-queues") + (f"?{query}" if query else ""))
    return redirect("staff-case", pk=case.pk)


@never_cache
@require_GET
@staff_view("work_queue")
def queue_list(request: HttpRequest, queue: str) -> HttpResponse:
    """The cases waiting in one queue, without any picture. The known-content queue can be
    confirmed in bulk from here."""
    queue = _queue_or_404(queue, request.user)
    form = QueueFilterForm(request.GET or None)
    page = queue_cases(queue, form.filters(), request.GET.get("page", 1), user=request.user)
    known = queue == CaseQueue.KNOWN_NEW_LOCATION
    return render(
        request,
        "reports/analyst/queue_list.html",
        {
            "queue": queue,
            "queue_label": _queue_label(queue),
            "form": form,
            "page": page,
            "summaries": known_case_summaries(page.object_list) if known else None,
            "can_confirm": known and request.user.has_perm("reports.assess_content"),
            "filter_query": _filters_query(form),
        },
    )


@never_cache
@require_POST
@staff_view("assess_content")
def queue_confirm_known(request: HttpRequest) -> HttpResponse:
    ids = [pk for pk in map(_form_pk, request.POST.getlist("case")) if pk is not None][:500]
    if not ids:
        messages.error(request, _("Select the cases to confirm."))
    else:
        result = cases_confirm_known(user=request.user, case_ids=ids)
        if result.confirmed:
            messages.success(
                request,
                _("%(count)d case(s) closed as known content, without viewing.") % {"count": len(result.confirmed)},
            )
        if result.skipped:
            messages.warning(
                request,
                _("%(count)d case(s) left in the queue: %(ids)s.")
                % {"count": len(result.skipped), "ids": ", ".join(f"#{pk}" for pk in result.skipped)},
            )
    return redirect("staff-queue", queue=CaseQueue.KNOWN_NEW_LOCATION)


# --- The case page ---------------------------------------------------------------------------------


def _case_queue(case: Case, user: Any, *, own_assessment: bool) -> str:
    """The queue "Next case" and "Skip" on the case page draw from. A case waiting for a second opinion
    is in the senior analysts' "Second opinion" queue, but not for the analyst who has just assessed
    it (or anyone who may not give one): they go on with the queue the case came from."""
    second_opinion = (
        case.status == CaseStatus.AWAITING_SECOND_OPINION
        and user.has_perm("reports.give_second_opinion")
        and not own_assessment
    )
    return SECOND_OPINION if second_opinion else case.queue


@never_cache
@require_GET
@staff_view()
def case_page(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    _require_casework_view(user)
    case = get_case_for_user(user, pk)
    detail = case_detail(case)
    held = holds_claim(user, case)
    second_look = case.status == CaseStatus.AWAITING_SECOND_OPINION
    can_assess = held and user.has_perm("reports.assess_content")
    if second_look:
        can_assess = can_assess and user.has_perm("reports.give_second_opinion")
    forms_by_content = {}
    if can_assess:
        for view in detail.contents:
            latest = view.latest_assessment
            source = latest if latest is not None else (view.proposal.assessment if view.proposal else None)
            forms_by_content[view.content.pk] = AssessmentForm(
                initial=AssessmentForm.initial_from(source), prefix=f"c{view.content.pk}"
            )
    own_assessment = any(a.analyst_id == user.pk for a in detail.assessments)
    now = timezone.now()
    claim_live = case.claimed_by_id is not None and case.claim_expires_at is not None and case.claim_expires_at >= now
    claimable = not claim_live and (
        (second_look and user.has_perm("reports.give_second_opinion") and not own_assessment)
        or (case.status in (CaseStatus.OPEN, CaseStatus.IN_PROGRESS) and user.has_perm("reports.work_queue"))
    )
    return render(
        request,
        "reports/analyst/case.html",
        {
            "case": case,
            "detail": detail,
            "held": held,
            "claim_live": claim_live,
            "claimable": claimable,
            "second_look": second_look,
            "can_confirm_second_opinion": held and second_look and not own_assessment,
            "can_reveal": held and user.has_perm("reports.reveal_content"),
            "can_assess": can_assess,
            "shows_previews": user.has_perm("reports.work_queue"),
            "content_forms": [(view, forms_by_content.get(view.content.pk)) for view in detail.contents],
            "url_form": AssessmentForm(prefix="url") if can_assess and not detail.contents else None,
            "reassign_form": ReassignForm() if user.has_perm("reports.reassign_case") else None,
            "queue_key": _case_queue(case, user, own_assessment=own_assessment),
            "greyscale": _greyscale(user),
            "reveal_seconds": settings.HOTLINE_REVEAL_SECONDS,
            "finished": case.status in (CaseStatus.ASSESSED, CaseStatus.CLOSED),
            **_wellbeing(user),
            **case_referral_context(case, user),
        },
    )


@never_cache
@require_POST
@staff_view()
def case_claim_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_casework_view(request.user)
    case = get_case_for_user(request.user, pk)
    case_claim(user=request.user, case=case)
    return redirect("staff-case", pk=case.pk)


@never_cache
@require_POST
@staff_view()
def case_release_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_casework_view(request.user)
    case = get_case_for_user(request.user, pk)
    case_release(user=request.user, case=case)
    messages.info(request, _("Case #%(pk)d went back to its queue.") % {"pk": case.pk})
    return redirect("staff-queues")


@never_cache
@require_POST
@staff_view("reassign_case")
def case_reassign_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_case_for_user(request.user, pk)
    form = ReassignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose an analyst to give the case to."))
        return redirect("staff-case", pk=case.pk)
    try:
        case_reassign(by=request.user, case=case, to=form.cleaned_data["to"])
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("Case #%(pk)d given to %(user)s.") % {"pk": case.pk, "user": form.cleaned_data["to"]}
        )
    return redirect("staff-case", pk=case.pk)


@never_cache
@require_POST
@staff_view("assess_content")
def case_assess(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_case_for_user(request.user, pk)
    content_id = _form_pk(request.POST.get("content", ""))
    content: Content | None = None
    if content_id is not None:
        content = case.contents.defer("preview").filter(pk=content_id).first()
        if content is None:
            raise Http404("No such content in this case.")
    form = AssessmentForm(request.POST, prefix=f"c{content.pk}" if content is not None else "url")
    if not form.is_valid():
        messages.error(request, _("The assessment was not saved: choose a verdict and valid values."))
        return redirect(reverse("staff-case", kwargs={"pk": case.pk}) + (f"#content-{content.pk}" if content else ""))
    try:
        assessment_create(user=request.user, case=case, content=content, fields=form.assessment_fields())
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("staff-case", pk=case.pk)
    case.refresh_from_db()
    if case.status == CaseStatus.AWAITING_SECOND_OPINION and not holds_claim(request.user, case):
        messages.success(request, _("Assessed. First-seen content: the case now waits for a second opinion."))
    elif case.status in (CaseStatus.ASSESSED, CaseStatus.CLOSED):
        messages.success(request, _("Assessed. The case is closed."))
    else:
        messages.success(request, _("Assessment saved."))
    return redirect("staff-case", pk=case.pk)


@never_cache
@require_POST
@staff_view("give_second_opinion")
def case_second_opinion(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_case_for_user(request.user, pk)
    try:
        case_confirm_second_opinion(user=request.user, case=case, notes=request.POST.get("notes", "")[:2000])
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Second opinion given. The case is closed."))
    return redirect("staff-case", pk=case.pk)


# --- Previews and reveals ------------------------------------------------------------------------


def _preview_bytes(content: Content) -> bytes:
    token = Content.objects.filter(pk=content.pk).values_list("preview", flat=True).first()
    if not token:
        raise Http404("The preview of this content has been deleted.")
    return decrypt_preview(bytes(token), settings.HOTLINE_PREVIEW_KEYS)


def _image(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = NO_STORE
    response["Content-Disposition"] = "inline"
    return response


def _forbidden(message: str) -> HttpResponse:
    response = HttpResponse(message, status=403, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = NO_STORE
    return response


@never_cache
@require_GET
@staff_view("work_queue")
def content_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """A preview as an <img> loads it: blurred on the server (the default), or, with a token from an
    audited reveal, the unblurred preview, once."""
    content = get_content_for_user(request.user, pk)
    view = request.GET.get("view", "blur")
    grey = request.GET.get("grey") == "1"
    if view == "blur":
        return _image(blur_preview(_preview_bytes(content), greyscale=grey))
    if view != "sharp":
        return HttpResponseBadRequest("Unknown view.")
    if not request.user.has_perm("reports.reveal_content"):
        return _forbidden("Not allowed to reveal content.")
    if not reveal_grant_consume(user=request.user, content_id=content.pk, token=request.GET.get("token", "")):
        return _forbidden("This reveal link is not valid: it is used, expired, or not yours.")
    jpeg = _preview_bytes(content)
    return _image(greyscale_preview(jpeg) if grey else jpeg)


@never_cache
@require_POST
@staff_view("reveal_content")
def content_reveal_view(request: HttpRequest, pk: int) -> HttpResponse:
    case_id = _form_pk(request.POST.get("case", ""))
    if case_id is None:
        return JsonResponse({"error": _("Which case?")}, status=400)
    case = get_case_for_user(request.user, case_id)
    content = get_content_for_user(request.user, pk)
    try:
        token = content_reveal(user=request.user, content=content, case=case)
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    query = {"view": "sharp", "token": token}
    if request.POST.get("grey") == "1":
        query["grey"] = "1"
    wellbeing = _wellbeing(request.user)
    response = JsonResponse(
        {
            "src": reverse("staff-content-preview", kwargs={"pk": content.pk}) + "?" + urlencode(query),
            "seconds": settings.HOTLINE_REVEAL_SECONDS,
            "reveals_today": wellbeing["reveals_today"],
            "soft_limit": wellbeing["reveal_soft_limit"],
            "break_due": wellbeing["break_due"],
        }
    )
    response["Cache-Control"] = NO_STORE
    return response


@never_cache
@require_POST
@staff_view("work_queue")
def preferences(request: HttpRequest) -> HttpResponse:
    staff_preference_set(user=request.user, greyscale=request.POST.get("greyscale") == "1")
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"greyscale": request.POST.get("greyscale") == "1"})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = reverse("staff-queues")
    return HttpResponseRedirect(target)


# --- Oversight: exposure and the audit trail -------------------------------------------------------


@never_cache
@require_GET
@staff_view("view_exposure")
def exposure(request: HttpRequest) -> HttpResponse:
    """Per analyst: how much they have had to look at. Counts only, never content."""
    period = request.GET.get("period", "7")
    if period not in EXPOSURE_PERIODS:
        period = "7"
    days = EXPOSURE_PERIODS[period]
    since = start_of_today() - timedelta(days=days - 1) if days else start_of_today()
    return render(
        request,
        "reports/analyst/exposure.html",
        {
            "rows": exposure_by_analyst(since=since),
            "period": period,
            "since": since,
            "soft_limit": settings.HOTLINE_REVEAL_SOFT_LIMIT,
            "held": held_cases() if request.user.has_perm("reports.reassign_case") else None,
            "periods": [("today", _("Today")), ("7", _("Last 7 days")), ("30", _("Last 30 days"))],
        },
    )


@never_cache
@require_GET
@staff_view("view_audit")
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    page = audit_page(form.filters(), request.GET.get("page", 1))
    query = {name: request.GET[name] for name in form.fields if request.GET.get(name)}
    return render(
        request,
        "reports/analyst/audit.html",
        {
            "form": form,
            "page": page,
            "events": [(event, _json(event.details)) for event in page.object_list],
            "actions": audit_actions(),
            "filter_query": urlencode(query),
        },
    )


AUDIT_CSV_HEADER = ("id", "at", "actor", "actor_label", "action", "object_type", "object_id", "details", "digest")


@never_cache
@require_POST
@staff_view("view_audit")
def audit_export(request: HttpRequest) -> HttpResponse:
    """The filtered trail as CSV. The export is itself an audit event, recorded before any row goes out."""
    filters = AuditFilterForm(request.POST).filters()
    events = audit_events(filters)
    audit_record(
        action="audit.exported", actor=request.user, details={"filters": filters.as_details(), "rows": events.count()}
    )
    user_model = get_user_model()
    usernames = dict(user_model.objects.values_list("pk", "username"))

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(AUDIT_CSV_HEADER)
        for event in events.select_related(None).iterator(chunk_size=2000):
            writer.writerow(
                [
                    event.pk,
                    event.at.isoformat(),
                    usernames.get(event.actor_id, "") if event.actor_id else "",
                    event.actor_label,
                    event.action,
                    event.object_type,
                    event.object_id,
                    _json(event.details),
                    event.digest,
                ]
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="hotline-audit-{stamp}.csv"'
    response["Cache-Control"] = NO_STORE
    return response


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
