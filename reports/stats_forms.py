"""The statistics dashboard's filters: period, grain, source (public / each partner), category, country."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reports.models.choices import Category
from reports.selectors.stats import StatsFilters, source_choices

GRAIN_CHOICES = [("day", _("Day")), ("week", _("Week")), ("month", _("Month"))]
# A day-by-day chart of more than this many days is unreadable (and the page slow): coarser grains only.
MAX_DAYS_PER_DAY_GRAIN = 120
MAX_PERIOD_DAYS = 366 * 5


EARLIEST = date(2000, 1, 1)


def _not_before_floor(value: date) -> None:
    if value < EARLIEST:
        raise forms.ValidationError(_("Not before %(date)s."), params={"date": EARLIEST.isoformat()})


class StatsFilterForm(forms.Form):
    """Every field optional; an invalid value falls back to its default rather than failing the page."""

    # A floor, so that date arithmetic on the period can never fall off the calendar (a 500 otherwise).
    first = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=[_not_before_floor]
    )
    last = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=[_not_before_floor]
    )
    grain = forms.ChoiceField(label=_("Per"), required=False, choices=GRAIN_CHOICES)
    source = forms.ChoiceField(label=_("Source"), required=False)
    category = forms.ChoiceField(label=_("Category"), required=False, choices=[("", _("All")), *Category.choices])
    country = forms.RegexField(
        label=_("Hosting country"),
        regex=r"^([A-Za-z]{2}|--)$",
        required=False,
        max_length=2,
        help_text=_("Two letters, e.g. NL; -- for unknown."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = source_choices()

    def filters(self, *, today: date | None = None) -> StatsFilters:
        today = today or timezone.localdate()
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        last = min(data.get("last") or today, today)
        first = data.get("first") or last - timedelta(days=settings.HOTLINE_STATS_DEFAULT_DAYS - 1)
        first = max(min(first, last), last - timedelta(days=MAX_PERIOD_DAYS))
        grain = data.get("grain") or "week"
        if grain == "day" and (last - first).days >= MAX_DAYS_PER_DAY_GRAIN:
            grain = "week"
        return StatsFilters(
            first=first,
            last=last,
            grain=grain,
            source=data.get("source") or "",
            category=data.get("category") or "",
            country=(data.get("country") or "").upper(),
        )
