"""Model fields that keep personal data encrypted at rest."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def field_fernet() -> MultiFernet:
    """The MultiFernet for HOTLINE_FIELD_KEYS: encrypts with the first key, decrypts with any."""
    return _fernet_for(tuple(settings.HOTLINE_FIELD_KEYS))


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token. Not searchable, by design: we never look people up by e-mail.

    An empty string is stored as an empty string (nothing to hide, and it keeps "no e-mail given"
    cheap to query). A token that no configured key can open reads as "" rather than crashing a page;
    `manage.py check` style tooling should catch a lost key long before that.
    """

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return field_fernet().encrypt(str(value).encode("utf-8")).decode("ascii")

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value in (None, ""):
            return value
        try:
            return field_fernet().decrypt(value.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            return ""
