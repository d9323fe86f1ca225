from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Hotline"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django.db.models.signals import post_migrate

        from reports.roles import ensure_role_permissions
        from reports.services.referrals import referral_rules_ensure_defaults
        from reports.services.staff import audit_locked_out, audit_login_failed, audit_login_succeeded

        # After django.contrib.auth's own handler has created the permissions of every model.
        post_migrate.connect(ensure_role_permissions, dispatch_uid="reports.ensure_role_permissions")
        post_migrate.connect(referral_rules_ensure_defaults, sender=self, dispatch_uid="reports.referral_rules")
        # Every login, failed login and lockout goes to the audit trail.
        user_logged_in.connect(audit_login_succeeded, dispatch_uid="reports.audit_login_succeeded")
        user_login_failed.connect(audit_login_failed, dispatch_uid="reports.audit_login_failed")
        user_locked_out.connect(audit_locked_out, dispatch_uid="reports.audit_locked_out")
