"""Staff roles: each is a Django group with a fixed set of permissions, kept in step on migrate."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission

from reports.models.choices import StaffRole

CASEWORK = ["work_queue", "reveal_content", "assess_content", "manage_referrals"]
OVERSIGHT = ["view_statistics", "view_exposure", "view_audit"]
# The referral tables coordinators edit in the Django admin: abuse contacts, referral rules, and the
# partner records through which foreign hotlines are found by country.
REFERRAL_TABLES = [
    *(
        f"{action}_{model}"
        for model in ("abusecontact", "referralrule")
        for action in ("add", "change", "delete", "view")
    ),
    "view_partner",
    "change_partner",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    StaffRole.ANALYST: CASEWORK,
    StaffRole.SENIOR_ANALYST: [*CASEWORK, "give_second_opinion", "reassign_case"],
    StaffRole.COORDINATOR: [*OVERSIGHT, "reassign_case", "manage_referrals", *REFERRAL_TABLES],
    StaffRole.ADMIN: [*CASEWORK, *OVERSIGHT, "give_second_opinion", "reassign_case"],
}


def ensure_role_permissions(**_kwargs: Any) -> None:
    """Create the role groups and give each exactly its permissions (post_migrate; idempotent)."""
    permissions = {
        p.codename: p
        for p in Permission.objects.filter(
            content_type__app_label="reports",
            codename__in={codename for codenames in ROLE_PERMISSIONS.values() for codename in codenames},
        )
    }
    if not permissions:  # the permissions themselves are created by an earlier post_migrate handler
        return
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.set([permissions[codename] for codename in codenames if codename in permissions])
