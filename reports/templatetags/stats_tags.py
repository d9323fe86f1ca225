"""Column headings of the statistics tables, in the reader's language (the CSV keeps the keys)."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

COLUMN_LABELS = {
    "period": _("Period"),
    "reports": _("Reports"),
    "urls": _("URLs"),
    "urls_new": _("New URLs"),
    "urls_duplicate": _("Duplicate URLs"),
    "contents": _("Contents"),
    "contents_known": _("Known contents"),
    "known_share": _("Known %"),
    "contents_ai": _("AI-indicated"),
    "ai_share": _("AI-indicated %"),
    "assessments": _("Assessments"),
    "virtual_real": _("Real"),
    "virtual_ai": _("AI-generated"),
    "virtual_drawn": _("Drawn/CGI"),
    "virtual_unknown": _("Virtual unknown"),
    "source": _("Source"),
    "cases_assessed": _("Cases assessed"),
    "cases_illegal": _("Found illegal"),
    "illegal_share": _("Illegal %"),
    "category": _("Category"),
    "verdict": _("Verdict"),
    "country": _("Country"),
    "assessment_median_h": _("Assessment median (h)"),
    "assessment_p90_h": _("Assessment p90 (h)"),
    "notices": _("Notices"),
    "removed": _("Removed"),
    "removal_median_h": _("Removal median (h)"),
    "removal_p90_h": _("Removal p90 (h)"),
    "removed_within_24h_pct": _("Within 24 h %"),
    "removed_within_72h_pct": _("Within 72 h %"),
    "removed_within_168h_pct": _("Within 7 days %"),
    "provider": _("Hosting provider"),
    "hash_list": _("Hash list"),
    "contents_matched": _("Contents matched"),
    "kind": _("Kind"),
    "status": _("Status"),
    "referrals": _("Referrals"),
    "analyst": _("Analyst"),
    "reveals": _("Images revealed"),
    "active_days": _("Active days"),
    "reveals_per_active_day": _("Reveals per active day"),
    "max_reveals_in_a_day": _("Most reveals in a day"),
}


@register.filter
def column_label(key: str) -> str:
    return str(COLUMN_LABELS.get(key, key))
