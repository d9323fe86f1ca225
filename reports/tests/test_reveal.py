"""Previews: blurred on the server by default; the unblurred preview only once, with a fresh
single-use token from an audited reveal, for the analyst who holds the case.

Every picture is drawn in code (reports.lib.synthetic).
"""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from PIL import Image

from reports.models import AuditEvent, RevealGrant
from reports.models.choices import CaseQueue
from reports.services.triage import case_claim_next
from reports.tests.analyst_helpers import make_case, response_bytes, sharp_preview, sharpness

JPEG_MAGIC = b"\xff\xd8\xff"


@pytest.fixture
def held(staff_client):
    """An analyst's client and the case (one content) they hold."""
    analyst = staff_client("analyst")
    case = make_case(21)
    assert case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN) == case
    return analyst, case, case.contents.get()


def reveal(client, content, case) -> dict:
    response = client.post(f"/staff/contents/{content.pk}/reveal", {"case": case.pk})
    assert response.status_code == 200, response.content
    assert response["Cache-Control"].startswith("no-store")
    return response.json()


def token_of(answer: dict) -> str:
    return parse_qs(urlparse(answer["src"]).query)["token"][0]


def sharp_url(content, token: str) -> str:
    return f"/staff/contents/{content.pk}/preview?view=sharp&token={token}"


def assert_refused(response) -> None:
    assert response.status_code == 403
    body = response_bytes(response)
    assert not body.startswith(JPEG_MAGIC)
    assert "image" not in response["Content-Type"]


# --- Blurred by default ---------------------------------------------------------------------------


@pytest.mark.parametrize("grey", [False, True], ids=["colour", "greyscale"])
@pytest.mark.django_db
def test_the_blurred_preview_has_none_of_the_sharp_detail(held, grey: bool) -> None:
    analyst, _case, content = held
    sharp = sharp_preview(content)

    response = analyst.get(f"/staff/contents/{content.pk}/preview", {"view": "blur", "grey": "1" if grey else "0"})

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"].startswith("no-store")
    blurred = response_bytes(response)
    assert blurred.startswith(JPEG_MAGIC)
    assert blurred != sharp
    # High-frequency energy: the blur keeps a colour impression of the layout and nothing more.
    assert sharpness(blurred) < 0.02 * sharpness(sharp)


@pytest.mark.django_db
def test_blur_is_the_default_view(held) -> None:
    analyst, _case, content = held

    blurred = response_bytes(analyst.get(f"/staff/contents/{content.pk}/preview"))

    assert sharpness(blurred) < 0.02 * sharpness(sharp_preview(content))


@pytest.mark.django_db
def test_an_unknown_view_is_refused(held) -> None:
    analyst, _case, content = held

    response = analyst.get(f"/staff/contents/{content.pk}/preview", {"view": "original"})

    assert response.status_code == 400
    assert not response.content.startswith(JPEG_MAGIC)


# --- The audited reveal -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reveal_writes_exactly_one_audit_event_and_serves_the_sharp_preview_once(held, settings) -> None:
    settings.HOTLINE_REVEAL_SECONDS = 7
    analyst, case, content = held
    before = AuditEvent.objects.count()

    answer = reveal(analyst, content, case)

    events = list(AuditEvent.objects.filter(pk__gt=AuditEvent.objects.order_by("pk")[before - 1].pk))
    assert [event.action for event in events] == ["content.revealed"]
    event = events[0]
    assert event.actor == analyst.user
    assert (event.object_type, event.object_id) == ("reports.content", str(content.pk))
    assert event.details == {"case": case.pk, "sha256": content.sha256}
    assert answer["seconds"] == 7
    assert answer["reveals_today"] == 1

    response = analyst.get(answer["src"])

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("no-store")
    assert response_bytes(response) == sharp_preview(content)
    assert AuditEvent.objects.count() == before + 1  # fetching the image is no second event
    assert_refused(analyst.get(answer["src"]))  # single use


@pytest.mark.django_db
def test_the_sharp_view_without_a_token_is_refused(held) -> None:
    analyst, _case, content = held
    reveal(analyst, content, held[1])

    assert_refused(analyst.get(f"/staff/contents/{content.pk}/preview", {"view": "sharp"}))
    assert_refused(analyst.get(sharp_url(content, "not-a-token")))


@pytest.mark.django_db
def test_another_users_token_is_refused(held, staff_client) -> None:
    analyst, case, content = held
    token = token_of(reveal(analyst, content, case))
    senior = staff_client("senior_analyst")  # sees every case, may reveal: but not with this token

    assert_refused(senior.get(sharp_url(content, token)))
    # The token was not spent by the refused attempt: its owner can still use it.
    assert analyst.get(sharp_url(content, token)).status_code == 200


@pytest.mark.django_db
def test_a_token_for_another_content_is_refused(staff_client) -> None:
    analyst = staff_client("analyst")
    case = make_case(22, 23)
    case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)
    first, second = case.contents.order_by("pk")
    token = token_of(reveal(analyst, first, case))

    assert_refused(analyst.get(sharp_url(second, token)))


@pytest.mark.django_db
def test_an_expired_token_is_refused(held) -> None:
    analyst, case, content = held
    token = token_of(reveal(analyst, content, case))
    RevealGrant.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert_refused(analyst.get(sharp_url(content, token)))


@pytest.mark.django_db
def test_only_the_token_digest_is_stored(held) -> None:
    analyst, case, content = held
    token = token_of(reveal(analyst, content, case))

    grant = RevealGrant.objects.get()
    assert grant.token_digest != token
    assert token not in str(AuditEvent.objects.filter(action="content.revealed").values_list("details", flat=True))


@pytest.mark.django_db
def test_a_greyscale_reveal_is_grey(held) -> None:
    analyst, case, content = held
    answer = analyst.post(f"/staff/contents/{content.pk}/reveal", {"case": case.pk, "grey": "1"}).json()

    image = Image.open(BytesIO(response_bytes(analyst.get(answer["src"]))))

    assert image.mode == "L"
    assert image.size == Image.open(BytesIO(sharp_preview(content))).size


@pytest.mark.django_db
def test_no_reveal_without_holding_the_case(staff_client) -> None:
    analyst = staff_client("analyst")
    case = make_case(24)  # open: the analyst may see it, blurred, but holds no claim
    content = case.contents.get()

    response = analyst.post(f"/staff/contents/{content.pk}/reveal", {"case": case.pk})

    assert response.status_code == 403
    assert "token" not in response.json()
    assert not AuditEvent.objects.filter(action="content.revealed").exists()
    assert not RevealGrant.objects.exists()


@pytest.mark.django_db
def test_no_reveal_of_content_from_another_case(staff_client) -> None:
    analyst = staff_client("analyst")
    first, second = make_case(25), make_case(26)
    mine = case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)
    assert mine is not None
    theirs = second if mine.pk == first.pk else first

    response = analyst.post(f"/staff/contents/{theirs.contents.get().pk}/reveal", {"case": mine.pk})

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="content.revealed").exists()


@pytest.mark.django_db
def test_a_coordinator_can_neither_reveal_nor_see_previews(staff_client) -> None:
    coordinator = staff_client("coordinator")
    case = make_case(27)
    content = case.contents.get()

    assert coordinator.post(f"/staff/contents/{content.pk}/reveal", {"case": case.pk}).status_code == 403
    assert_refused(coordinator.get(f"/staff/contents/{content.pk}/preview", {"view": "blur"}))
    assert not AuditEvent.objects.filter(action="content.revealed").exists()


@pytest.mark.django_db
def test_a_purged_preview_cannot_be_revealed(held) -> None:
    analyst, case, content = held
    type(content).objects.filter(pk=content.pk).update(preview=b"", preview_purged_at=timezone.now())

    response = analyst.post(f"/staff/contents/{content.pk}/reveal", {"case": case.pk})

    assert response.status_code == 409
    assert analyst.get(f"/staff/contents/{content.pk}/preview").status_code == 404
    assert not AuditEvent.objects.filter(action="content.revealed").exists()
