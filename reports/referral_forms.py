"""Forms of the referral pages (case page actions, the coordinators' list)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from reports.models.choices import ReferralKind, ReferralStatus

LANGUAGES = [("en", _("English")), ("nl", _("Dutch"))]


class ReferralAddForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=ReferralKind.choices)
    recipient = forms.CharField(label=_("Recipient"), max_length=300, required=False)
    email = forms.EmailField(label=_("E-mail address"), required=False)
    language = forms.ChoiceField(label=_("Language of the notice"), choices=LANGUAGES, initial="en")
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class ReferralStatusForm(forms.Form):
    status = forms.ChoiceField(
        label=_("New status"),
        choices=[("", _("(unchanged)"))]
        + [(value, label) for value, label in ReferralStatus.choices if value != ReferralStatus.DRAFT],
        required=False,
    )
    reference = forms.CharField(label=_("Their reference number"), max_length=200, required=False)
    note = forms.CharField(label=_("Note or reason"), max_length=2000, required=False)

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("status") and not data.get("reference"):
            raise forms.ValidationError(_("Choose a status or give a reference number."))
        if data.get("status") == ReferralStatus.CANCELLED and not data.get("note"):
            self.add_error("note", _("Say why this referral is cancelled."))
        return data


class ReferralRecipientForm(forms.Form):
    recipient = forms.CharField(label=_("Recipient"), max_length=300, required=False)
    email = forms.EmailField(label=_("E-mail address"))
    language = forms.ChoiceField(label=_("Language of the notice"), choices=LANGUAGES)


class HostingForm(forms.Form):
    ip = forms.GenericIPAddressField(label=_("IP address"), required=False)
    country = forms.RegexField(label=_("Country (ISO code)"), regex=r"^[A-Za-z]{2}$", required=False, max_length=2)
    asn = forms.IntegerField(label=_("AS number"), required=False, min_value=1, max_value=4_294_967_295)
    provider = forms.CharField(label=_("Provider"), max_length=200, required=False)
    reason = forms.CharField(label=_("Reason"), max_length=2000)


class ReferralFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("open", _("Open (draft, sent, acknowledged)")), ("", _("All")), *list(ReferralStatus.choices)],
    )
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("All")), *list(ReferralKind.choices)])
    attention = forms.BooleanField(label=_("Needs attention"), required=False)
