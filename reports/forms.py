"""Forms of the public side. Validation messages are translated; the URL rules live in lib/urls."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from reports.lib.urls import InvalidUrl, canonicalize_url
from reports.models.choices import AiSuspected, Category, WhereFound
from reports.services.intake import UrlItem, dedupe_url_items

URL_ERROR_MESSAGES = {
    "empty": _("the line is empty."),
    "too_long": _("the address is too long (at most %(max)s characters)."),
    "bad_characters": _("the address contains control characters."),
    "bad_scheme": _("only web addresses starting with http:// or https:// can be reported."),
    "no_host": _("the address has no host name."),
    "bad_host": _("this is not a valid public host name."),
    "bad_port": _("the port number is not valid."),
    "private_host": _("this address points to a private, local or reserved network, not the public internet."),
}


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ReportForm(forms.Form):
    urls = forms.CharField(
        label=_("Web addresses (URLs)"),
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "autocapitalize": "off", "autocomplete": "off"}),
        max_length=(settings.HOTLINE_MAX_URL_LENGTH + 2) * settings.HOTLINE_MAX_URLS_PER_REPORT,
        error_messages={"required": _("Enter at least one web address.")},
    )
    category = forms.ChoiceField(label=_("What does it show?"), choices=Category.choices, widget=forms.RadioSelect)
    ai_suspected = forms.ChoiceField(
        label=_("Do you think it may be made with AI?"),
        choices=AiSuspected.choices,
        initial=AiSuspected.UNKNOWN,
        widget=forms.RadioSelect,
    )
    where_found = forms.ChoiceField(label=_("Where did you find it?"), choices=WhereFound.choices)
    description = forms.CharField(
        label=_("Anything else we should know? (optional)"),
        help_text=_("Do not describe yourself or anyone else by name. At most 2,000 characters."),
        required=False,
        max_length=settings.HOTLINE_MAX_DESCRIPTION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    email = forms.EmailField(
        label=_("Your e-mail address (optional)"),
        help_text=_("Only if you want to hear from us. It is stored encrypted and deleted after a while."),
        required=False,
        max_length=254,
    )
    # Honeypot: hidden from people by CSS and from assistive technology by aria-hidden; bots fill it.
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    def clean_urls(self) -> list[UrlItem]:
        text: str = self.cleaned_data["urls"]
        lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if not lines:
            raise ValidationError(_("Enter at least one web address."), code="required")
        limit = settings.HOTLINE_MAX_URLS_PER_REPORT
        if len(lines) > limit:
            raise ValidationError(
                _("Enter at most %(max)s addresses; you entered %(count)s."),
                code="too_many",
                params={"max": limit, "count": len(lines)},
            )
        items: list[UrlItem] = []
        errors: list[ValidationError] = []
        for number, line in lines:
            try:
                canonical = canonicalize_url(
                    line,
                    allow_hosts=settings.HOTLINE_FETCH_ALLOW_HOSTS,
                    max_length=settings.HOTLINE_MAX_URL_LENGTH,
                )
            except InvalidUrl as exc:
                message = URL_ERROR_MESSAGES.get(exc.code, URL_ERROR_MESSAGES["bad_host"])
                errors.append(
                    ValidationError(
                        _("Line %(line)s (%(url)s): %(problem)s"),
                        code=exc.code,
                        params={
                            "line": number,
                            "url": _shorten(line),
                            "problem": message % {"max": settings.HOTLINE_MAX_URL_LENGTH},
                        },
                    )
                )
                continue
            items.append(UrlItem(submitted=line, canonical=canonical))
        if errors:
            raise ValidationError(errors)
        unique = dedupe_url_items(items)
        self.merged_duplicates = len(items) - len(unique)
        return unique

    merged_duplicates = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Formatted per request, in the request's language (not once at import, in English).
        self.fields["urls"].help_text = gettext(
            "One address per line, at most %(max)s. Copy them from your browser's address bar."
        ) % {"max": settings.HOTLINE_MAX_URLS_PER_REPORT}

    def is_bot(self) -> bool:
        return bool(self.data.get("website", "").strip())


class StatusForm(forms.Form):
    code = forms.CharField(label=_("Case code"), max_length=32, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    pin = forms.CharField(
        label=_("PIN"),
        max_length=16,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
