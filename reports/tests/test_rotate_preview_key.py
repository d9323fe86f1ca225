"""`manage.py rotate_preview_key`: after it, the newest preview key alone opens every preview."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command

from reports.lib.imaging import decrypt_preview
from reports.models import AuditEvent, Content
from reports.tests.analyst_helpers import make_content

pytestmark = pytest.mark.django_db


def stored(content: Content) -> bytes:
    return bytes(Content.objects.get(pk=content.pk).preview)


@pytest.fixture
def old_key(settings) -> str:
    key = Fernet.generate_key().decode()
    settings.HOTLINE_PREVIEW_KEYS = [key]
    return key


def test_every_preview_moves_to_the_new_key_and_a_second_run_changes_nothing(settings, old_key) -> None:
    contents = [make_content(seed) for seed in (21, 22, 23)]
    originals = {content.pk: decrypt_preview(stored(content), [old_key]) for content in contents}
    new_key = Fernet.generate_key().decode()
    settings.HOTLINE_PREVIEW_KEYS = [new_key, old_key]

    out = StringIO()
    call_command("rotate_preview_key", "--batch", "2", stdout=out)

    assert "3 previews re-encrypted" in out.getvalue()
    for content in contents:
        # Readable with the new key alone, and the same picture as before.
        assert decrypt_preview(stored(content), [new_key]) == originals[content.pk]
        with pytest.raises(InvalidToken):
            decrypt_preview(stored(content), [old_key])
    before = {content.pk: stored(content) for content in contents}

    again = StringIO()
    call_command("rotate_preview_key", stdout=again)

    assert "0 previews re-encrypted, 3 already under the newest key" in again.getvalue()
    assert {content.pk: stored(content) for content in contents} == before
    events = list(AuditEvent.objects.filter(action="preview_keys.rotated").order_by("pk"))
    assert [event.details["rotated"] for event in events] == [3, 0]


def test_a_resumed_run_starts_after_the_given_id(settings, old_key) -> None:
    first, second = make_content(24), make_content(25)
    new_key = Fernet.generate_key().decode()
    settings.HOTLINE_PREVIEW_KEYS = [new_key, old_key]

    call_command("rotate_preview_key", "--after-id", str(first.pk), stdout=StringIO())

    assert decrypt_preview(stored(second), [new_key])
    with pytest.raises(InvalidToken):
        decrypt_preview(stored(first), [new_key])


def test_purged_previews_are_left_alone_and_a_lost_key_is_reported(settings, old_key) -> None:
    purged = make_content(26)
    Content.objects.filter(pk=purged.pk).update(preview=b"")
    lost = make_content(27)
    settings.HOTLINE_PREVIEW_KEYS = [Fernet.generate_key().decode()]  # the old key is gone

    with pytest.raises(CommandError, match=f"1 previews could not be decrypted.*{lost.pk}"):
        call_command("rotate_preview_key", stdout=StringIO())

    assert stored(purged) == b""
    assert stored(lost) != b""  # kept as it was, for when the key is found


def test_field_keys_rotate_the_same_way(settings) -> None:
    from reports.models import Report
    from reports.tests.factories import make_public_report

    old = Fernet.generate_key().decode()
    settings.HOTLINE_FIELD_KEYS = [old]
    report = make_public_report(email="reporter@example.org")
    new = Fernet.generate_key().decode()
    settings.HOTLINE_FIELD_KEYS = [new, old]

    out = StringIO()
    call_command("rotate_field_keys", stdout=out)
    assert "1 fields re-encrypted" in out.getvalue()

    settings.HOTLINE_FIELD_KEYS = [new]  # the old key dropped: the address still reads
    assert Report.objects.get(pk=report.pk).email == "reporter@example.org"
    again = StringIO()
    call_command("rotate_field_keys", stdout=again)
    assert "0 fields re-encrypted, 1 already under the newest key" in again.getvalue()
