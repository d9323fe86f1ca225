"""Access control for staff pages: a password alone never opens one.

Every staff view is wrapped in `staff_view(...)`. It requires, in this order:
1. an authenticated user (else: the two-factor login, with ?next=),
2. verified by a second factor in this session (else: the two-factor login again, which asks for the
   token, or the TOTP set-up if the account has no device yet),
3. a staff role (membership of one of the role groups, or superuser) and, if given, the
   permission `reports.<permission>` (else: 403).

`reports.middleware.StaffOTPRequiredMiddleware` repeats steps 1 and 2 for every path under /staff/,
so a view that forgets the decorator is still not reachable with a password alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django_otp import user_has_device

from reports.models.choices import StaffRole

ViewFunc = Callable[..., HttpResponse]


def user_roles(user: Any) -> list[str]:
    """The user's staff roles (role group names), in StaffRole order."""
    names = set(user.groups.filter(name__in=StaffRole.values).values_list("name", flat=True))
    return [role for role in StaffRole.values if role in names]


def is_staff_member(user: Any) -> bool:
    """Whether the user holds a staff role (a role group) or is a superuser; active users only."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=StaffRole.values).exists()


def unverified_staff_redirect(request: HttpRequest) -> HttpResponse | None:
    """The redirect for a request that lacks a login or a second factor, or None if it has both."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), resolve_url("two_factor:login"))
    if not user.is_verified():
        if not user_has_device(user):
            # Password checked, no authenticator yet: enrolment is the only way forward.
            return redirect("two_factor:setup")
        # Logged in by password only (e.g. a session from before two-factor was required): the
        # two-factor login asks for the password and the token again.
        return redirect_to_login(request.get_full_path(), resolve_url("two_factor:login"))
    return None


def staff_view(permission: str | None = None) -> Callable[[ViewFunc], ViewFunc]:
    """Decorate a staff view: verified (two-factor) staff only, with `reports.<permission>` if given."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = unverified_staff_redirect(request)
            if response is not None:
                return response
            if not is_staff_member(request.user):
                raise PermissionDenied
            if permission is not None and not request.user.has_perm(f"reports.{permission}"):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        # Read by the staff landing page, which links only to pages the user may open.
        wrapped.staff_permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator
