"""Staff accounts: created with a role, a random password and a second factor from the start.

An account never exists without a TOTP device, so there is no window in which a password alone
would let someone enrol their own authenticator.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AbstractUser, Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from reports.models.choices import StaffRole
from reports.services.audit import audit_record
from reports.services.throttle import client_address, client_key

RECOVERY_CODE_COUNT = 10
# Roles that may use the Django admin (is_staff); the admin role is also superuser.
ADMIN_SITE_ROLES = {StaffRole.COORDINATOR, StaffRole.ADMIN}


def _random_password() -> str:
    # 144 bits, URL-safe: strong, and copyable from a terminal without quoting trouble.
    return secrets.token_urlsafe(18)


def staff_issue_devices(*, user: AbstractUser, totp_key: str | None = None) -> TOTPDevice:
    """Replace the user's devices by one confirmed TOTP device and a fresh set of recovery codes."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    totp = TOTPDevice(user=user, name="default", confirmed=True)
    if totp_key is not None:
        totp.key = totp_key
    totp.save()
    # "backup" is the name two_factor's login and backup-token pages look for.
    backup = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    StaticToken.objects.bulk_create(
        [StaticToken(device=backup, token=StaticToken.random_token()) for _ in range(RECOVERY_CODE_COUNT)]
    )
    return totp


def staff_recovery_codes(*, user: AbstractUser) -> list[str]:
    """The user's unused recovery codes (static tokens of the "backup" device)."""
    tokens = StaticToken.objects.filter(device__user=user, device__name="backup").order_by("pk")
    return list(tokens.values_list("token", flat=True))


@transaction.atomic
def staff_create(
    *,
    username: str,
    role: str,
    email: str = "",
    password: str | None = None,
    totp_key: str | None = None,
    actor: AbstractUser | None = None,
    actor_label: str = "",
) -> tuple[AbstractUser, str, str]:
    """Create a staff user with `role`; return (user, password, otpauth URI of its TOTP device).

    `password` and `totp_key` are for the demo's fixed logins only; by default both are random.
    """
    if role not in StaffRole.values:
        raise ValueError(f"Unknown role {role!r}; choose one of {', '.join(StaffRole.values)}.")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValueError(f"A user named {username!r} already exists.")
    password = password or _random_password()
    user = User.objects.create_user(
        username=username,
        email=email,
        password=password,
        is_staff=role in ADMIN_SITE_ROLES,
        is_superuser=role == StaffRole.ADMIN,
    )
    user.groups.add(Group.objects.get(name=role))
    device = staff_issue_devices(user=user, totp_key=totp_key)
    audit_record(
        action="staff.created",
        actor=actor,
        actor_label=actor_label,
        obj=user,
        details={"username": username, "role": role, "is_staff": user.is_staff, "is_superuser": user.is_superuser},
    )
    return user, password, device.config_url


@transaction.atomic
def staff_reset_credentials(
    *, user: AbstractUser, actor: AbstractUser | None = None, actor_label: str = ""
) -> tuple[str, str]:
    """Give `user` a new random password, TOTP device and recovery codes; return (password, otpauth URI).

    The old password, authenticator and recovery codes stop working at once.
    """
    password = _random_password()
    user.set_password(password)
    user.save(update_fields=["password"])
    device = staff_issue_devices(user=user)
    audit_record(
        action="staff.credentials_reset",
        actor=actor,
        actor_label=actor_label,
        obj=user,
        details={"username": user.get_username()},
    )
    return password, device.config_url


# --- Logins in the audit trail ----------------------------------------------------------------------
# Receivers of Django's and django-axes' signals (connected in reports.apps). They record who, how
# and from which client (the salted hash the rate limits use, never the address itself), and never
# the password: the credentials Django passes to user_login_failed are already cleansed, and only the
# username is read from them.


def login_attempt_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str | None:
    """The username of a login attempt, for django-axes: from the credentials passed to authenticate(),
    else from two_factor's login form, whose fields carry the wizard step's prefix."""
    if credentials:
        return credentials.get(get_user_model().USERNAME_FIELD)
    if request is None:
        return None
    return request.POST.get("auth-username")


def login_client_ip(request: HttpRequest) -> str | None:
    """The client address for django-axes: the one the rate limits use (trusting only
    HOTLINE_TRUSTED_PROXY_COUNT proxies), or None if there is no valid one (axes stores it in an
    inet column)."""
    address = client_address(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _client(request: HttpRequest | None) -> str:
    return client_key(request) if request is not None else ""


def audit_login_succeeded(sender: Any, request: HttpRequest | None, user: AbstractUser, **kwargs: Any) -> None:
    device = getattr(user, "otp_device", None)
    with transaction.atomic():
        audit_record(
            action="auth.login",
            actor=user,
            obj=user,
            details={
                "username": user.get_username(),
                "second_factor": device.__class__.__name__ if device is not None else "",
                "client": _client(request),
            },
        )


def audit_login_failed(
    sender: str, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get(get_user_model().USERNAME_FIELD) or "")[:150]
    with transaction.atomic():
        audit_record(
            action="auth.login_failed",
            actor_label="anonymous",  # not the account's owner: whoever typed its name
            details={
                "username": username,
                "locked_out": bool(getattr(request, "axes_locked_out", False)),
                "client": _client(request),
            },
        )


def audit_second_factor_failed(*, request: HttpRequest, user: AbstractUser, step: str) -> None:
    """A wrong TOTP or recovery code after a correct password: someone may know the password."""
    with transaction.atomic():
        audit_record(
            action="auth.second_factor_failed",
            actor=user,
            obj=user,
            details={"username": user.get_username(), "step": step, "client": _client(request)},
        )


def audit_locked_out(
    sender: str, request: HttpRequest | None, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    username = str(username or "")[:150]
    with transaction.atomic():
        audit_record(
            action="auth.locked_out",
            actor_label="anonymous",  # not the account's owner: whoever typed its name
            details={"username": username, "client": _client(request)},
        )


def require_permission(user: AbstractBaseUser, permission: str) -> None:
    """What every service that acts for a staff member checks first (the views check too)."""
    if not user.has_perm(f"reports.{permission}"):  # type: ignore[attr-defined]
        raise PermissionDenied(f"needs reports.{permission}")
