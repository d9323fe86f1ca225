from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from two_factor.admin import AdminSiteOTPRequired
from two_factor.urls import urlpatterns as two_factor_urls

from reports.views.staff import StaffLoginView

# The Django admin only for staff verified by a second factor; its password-only login page
# redirects to the two-factor login.
admin.site.__class__ = AdminSiteOTPRequired

# two_factor's core pages only: login, TOTP set-up (for an account that has no device yet) and
# recovery codes. Not its profile pages: "disable two-factor" would leave the account with a password
# alone, and whoever knows it could then enrol an authenticator of their own.
_two_factor_core, _two_factor_namespace = two_factor_urls
_TWO_FACTOR_PAGES = {"setup", "qr", "setup_complete", "backup_tokens"}

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "",
        include(
            (
                # The login is two_factor's, with wrong codes audited as well.
                [path("account/login/", StaffLoginView.as_view(), name="login")]
                + [p for p in _two_factor_core if getattr(p, "name", None) in _TWO_FACTOR_PAGES],
                _two_factor_namespace,
            )
        ),
    ),
    path("account/logout/", LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("reports.urls")),
]
