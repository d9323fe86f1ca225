"""The staff side's landing page: who you are and the pages your role may open."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, resolve, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from two_factor.views import LoginView

from reports.models.choices import StaffRole
from reports.services.staff import audit_second_factor_failed
from reports.views.decorators import staff_view, user_roles


class StaffLoginView(LoginView):
    """two_factor's login (password, then TOTP or a recovery code), also auditing wrong codes: a wrong
    code after the right password may mean that someone else knows the password."""

    def render(self, form=None, **kwargs):  # type: ignore[no-untyped-def]
        if (
            form is not None
            and form.is_bound
            and self.steps.current in (self.TOKEN_STEP, self.BACKUP_STEP)
            and form.errors
            and self.get_user()
        ):
            audit_second_factor_failed(request=self.request, user=self.get_user(), step=self.steps.current)
        return super().render(form, **kwargs)


@dataclass(frozen=True)
class StaffLink:
    url: str
    label: str
    description: str


# Staff pages the landing page may link to, by URL name; each is listed only if it exists (some
# are added by later work) and its view's permission (staff_view) is one the user holds.
STAFF_PAGES = (
    ("staff-queues", _("Case queues"), _("Claim and work on cases.")),
    ("staff-exposure", _("Exposure"), _("How much material each analyst has had to look at.")),
    ("staff-audit", _("Audit trail"), _("Who did what, and when.")),
    ("staff-stats", _("Statistics"), _("Volumes, known content, AI share, verdicts, takedown times; exports.")),
)


def _staff_page_links(request: HttpRequest) -> list[StaffLink]:
    links = []
    for name, label, description in STAFF_PAGES:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        permission = getattr(resolve(url).func, "staff_permission", None)
        if permission is None or request.user.has_perm(f"reports.{permission}"):
            links.append(StaffLink(url, label, description))
    return links


@never_cache
@staff_view()
def home(request: HttpRequest) -> HttpResponse:
    links = _staff_page_links(request)
    if admin.site.has_permission(request) and admin.site.get_app_list(request):
        links.append(
            StaffLink(reverse("admin:index"), _("Administration"), _("Accounts, partners, API tokens, hash lists."))
        )
    links.append(
        StaffLink(
            reverse("two_factor:backup_tokens"),
            _("Recovery codes"),
            _("See how many one-time recovery codes you have left, or replace them."),
        )
    )
    labels = dict(StaffRole.choices)
    roles = [labels[role] for role in user_roles(request.user)]
    if request.user.is_superuser and not roles:
        roles = [labels[StaffRole.ADMIN]]
    return render(request, "reports/staff/home.html", {"links": links, "roles": roles})
