from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Hotline"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from reports.roles import ensure_role_permissions

        # After django.contrib.auth's own handler has created the permissions of every model.
        post_migrate.connect(ensure_role_permissions, dispatch_uid="reports.ensure_role_permissions")
