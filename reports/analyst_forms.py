"""Forms of the analyst workspace: queue filters, the ICCAM assessment, audit filters."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reports.models import Assessment, Partner
from reports.models.choices import AgeGroup, Category, Gender, SiteType, Verdict, Virtual
from reports.selectors.triage import AuditFilters, CaseFilters, assignable_users
from reports.services.triage import AssessmentFields

COMMERCIAL_CHOICES = [("", _("Not recorded")), ("yes", _("Yes")), ("no", _("No"))]


class QueueFilterForm(forms.Form):
    """Narrows the queues. Every field is optional; invalid input is ignored field by field."""

    source = forms.ChoiceField(label=_("Source"), required=False)
    category = forms.ChoiceField(
        label=_("Category reported"), required=False, choices=[("", _("Any")), *Category.choices]
    )
    country = forms.RegexField(
        label=_("Hosting country"),
        regex=r"^[A-Za-z]{2}$",
        required=False,
        max_length=2,
        help_text=_("Two letters, e.g. NL."),
    )
    older_than_hours = forms.IntegerField(
        label=_("Older than (hours)"), required=False, min_value=1, max_value=24 * 365
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partners = [(f"partner-{pk}", name) for pk, name in Partner.objects.order_by("name").values_list("pk", "name")]
        self.fields["source"].choices = [
            ("", _("Any")),
            ("public", _("Public form")),
            ("partner", _("Any partner")),
            *partners,
        ]

    def filters(self) -> CaseFilters:
        if not self.is_bound:
            return CaseFilters()
        self.is_valid()
        data = {name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        source = data.get("source") or ""
        partner_id = int(source.removeprefix("partner-")) if source.startswith("partner-") else None
        return CaseFilters(
            source="" if partner_id is not None else source,
            partner_id=partner_id,
            category=data.get("category") or "",
            country=(data.get("country") or "").upper(),
            older_than_hours=data.get("older_than_hours"),
        )


class AssessmentForm(forms.Form):
    """The ICCAM fields of one content's assessment."""

    verdict = forms.ChoiceField(label=_("Verdict"), choices=Verdict.choices, widget=forms.RadioSelect)
    age_group = forms.ChoiceField(label=_("Age group"), choices=AgeGroup.choices, required=False)
    gender = forms.ChoiceField(label=_("Gender"), choices=Gender.choices, required=False)
    virtual = forms.ChoiceField(label=_("Real or virtual"), choices=Virtual.choices, initial=Virtual.UNKNOWN)
    site_type = forms.ChoiceField(label=_("Site type"), choices=SiteType.choices, required=False)
    commercial = forms.ChoiceField(label=_("Commercial"), choices=COMMERCIAL_CHOICES, required=False)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    @classmethod
    def initial_from(cls, assessment: Assessment | None) -> dict[str, Any]:
        """Initial values copied from an earlier assessment (the proposal), notes excepted."""
        if assessment is None:
            return {}
        commercial = {True: "yes", False: "no"}.get(assessment.commercial, "")  # type: ignore[arg-type]
        return {
            "verdict": assessment.verdict,
            "age_group": assessment.age_group,
            "gender": assessment.gender,
            "virtual": assessment.virtual,
            "site_type": assessment.site_type,
            "commercial": commercial,
        }

    def assessment_fields(self) -> AssessmentFields:
        data = self.cleaned_data
        return AssessmentFields(
            verdict=data["verdict"],
            age_group=data.get("age_group") or "",
            gender=data.get("gender") or "",
            virtual=data.get("virtual") or Virtual.UNKNOWN,
            site_type=data.get("site_type") or "",
            commercial={"yes": True, "no": False}.get(data.get("commercial") or ""),
            notes=data.get("notes") or "",
        )


class ReassignForm(forms.Form):
    to = forms.ModelChoiceField(label=_("Give to"), queryset=assignable_users(), to_field_name="pk")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = assignable_users()  # type: ignore[attr-defined]


class AuditFilterForm(forms.Form):
    action = forms.CharField(label=_("Action"), required=False, max_length=64)
    actor = forms.CharField(label=_("User"), required=False, max_length=150)
    since = forms.DateField(label=_("From (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(
        label=_("Up to and including (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def filters(self) -> AuditFilters:
        if not self.is_bound:
            return AuditFilters()
        self.is_valid()
        data = {name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        tz = timezone.get_current_timezone()
        since = data.get("since")
        until = data.get("until")
        return AuditFilters(
            action=(data.get("action") or "").strip(),
            actor=(data.get("actor") or "").strip(),
            since=datetime.combine(since, time.min, tzinfo=tz) if since else None,
            until=datetime.combine(until + timedelta(days=1), time.min, tzinfo=tz) if until else None,
        )
