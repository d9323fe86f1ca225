"""The status page (/report/status/): a reporter checks a report with its case code and PIN."""

from __future__ import annotations

import html
import re

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from reports.lib import receipts
from reports.models import Report
from reports.models.choices import ReportStatus
from reports.tests.factories import make_public_receipt, submit_report

pytestmark = pytest.mark.django_db

STATUS_URL = "/report/status/"
NOT_FOUND = "We could not find a report with this code and PIN. Check both and try again."
TOO_MANY = "Too many attempts. Please try again in an hour."


def submit_and_get_receipt(client: Client) -> tuple[str, str]:
    response = submit_report(client, remote_addr="192.0.2.200")
    assert response.status_code == 200
    found = dict(re.findall(r'data-receipt="(code|pin)">([^<]+)<', response.content.decode()))
    return found["code"], found["pin"]


def check_status(client: Client, code: str, pin: str, *, remote_addr: str = "198.51.100.20"):
    return client.post(STATUS_URL, {"code": code, "pin": pin}, REMOTE_ADDR=remote_addr)


def shown_status(response) -> str | None:
    match = re.search(r'data-status="([a-z_]+)">([^<]+)<', response.content.decode())
    return f"{match.group(1)}:{html.unescape(match.group(2))}" if match else None


def wrong(pin: str) -> str:
    return f"{(int(pin) + 1) % 10**6:06d}"


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def test_status_form_renders(client: Client) -> None:
    response = client.get(STATUS_URL)

    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="code"' in content
    assert 'name="pin"' in content
    assert 'type="password"' in content  # the PIN is not shown on screen while typed


def test_receipt_from_the_form_shows_received(client: Client) -> None:
    code, pin = submit_and_get_receipt(client)

    response = check_status(client, code, pin)

    assert response.status_code == 200
    assert shown_status(response) == "received:Received"


def test_status_follows_the_report(client: Client) -> None:
    code, pin = submit_and_get_receipt(client)
    Report.objects.update(status=ReportStatus.ASSESSED_ACTION)

    response = check_status(client, code, pin)

    assert shown_status(response) == "assessed_action:Assessed — action taken"


@pytest.mark.parametrize("typed", ["lower", "spaced", "unformatted", "padded"])
def test_code_as_people_type_it(client: Client, typed: str) -> None:
    code, pin = submit_and_get_receipt(client)
    variants = {
        "lower": code.lower(),
        "spaced": code.replace("-", " "),
        "unformatted": code.replace("-", "").lower(),
        "padded": f"  {code[:3]} {code[3:].lower()} ",
    }

    response = check_status(client, variants[typed], pin)

    assert response.status_code == 200
    assert shown_status(response) == "received:Received"


def test_confusable_letters_read_as_digits(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receipts, "new_code", lambda: "01ABCDEFGH")
    monkeypatch.setattr(receipts, "new_pin", lambda: "246810")
    receipt = make_public_receipt()
    assert receipt.code == "01ABC-DEFGH"

    response = check_status(client, "ol abc-defgh", "246810")

    assert shown_status(response) == "received:Received"


def test_wrong_pin_is_refused(client: Client) -> None:
    code, pin = submit_and_get_receipt(client)

    response = check_status(client, code, wrong(pin))

    assert response.status_code == 400
    assert NOT_FOUND in page_text(response)
    assert shown_status(response) is None


def test_unknown_code_gets_the_same_answer(client: Client) -> None:
    code, pin = submit_and_get_receipt(client)
    known_wrong_pin = check_status(client, code, wrong(pin))

    unknown = check_status(client, "ZZZZZ-ZZZZZ", pin)

    assert unknown.status_code == known_wrong_pin.status_code == 400
    assert NOT_FOUND in page_text(unknown)
    assert shown_status(unknown) is None

    def strip_values(response) -> str:  # the CSRF token and the code as typed
        return re.sub(r'value="[^"]*"', "", response.content.decode())

    # The whole page is the same, so it does not tell whether the code exists.
    assert strip_values(unknown) == strip_values(known_wrong_pin)


def test_pin_of_another_report_does_not_open_this_one(client: Client) -> None:
    code_a, _pin_a = submit_and_get_receipt(client)
    _code_b, pin_b = submit_and_get_receipt(client)

    response = check_status(client, code_a, pin_b)

    assert shown_status(response) is None


def test_empty_fields_are_refused(client: Client) -> None:
    response = client.post(STATUS_URL, {"code": "", "pin": ""}, REMOTE_ADDR="198.51.100.20")

    assert response.status_code == 400
    assert page_text(response).count("This field is required.") == 2
    assert shown_status(response) is None


def test_code_locks_after_failures_from_any_client(client: Client, settings) -> None:
    settings.HOTLINE_STATUS_CODE_FAILURES = 3
    code, pin = submit_and_get_receipt(client)
    other_code, other_pin = submit_and_get_receipt(client)

    # Three guesses from three addresses, spelt three ways: all count against the one code.
    for n, spelling in enumerate([code, code.lower(), code.replace("-", " ")]):
        assert check_status(client, spelling, wrong(pin), remote_addr=f"203.0.113.{n + 1}").status_code == 400

    locked = check_status(client, code, pin, remote_addr="203.0.113.99")
    assert locked.status_code == 429
    assert TOO_MANY in page_text(locked)
    assert shown_status(locked) is None
    # Other codes are not affected.
    assert shown_status(check_status(client, other_code, other_pin, remote_addr="203.0.113.100")) == "received:Received"


def test_fewer_failures_than_the_limit_do_not_lock(client: Client, settings) -> None:
    settings.HOTLINE_STATUS_CODE_FAILURES = 3
    code, pin = submit_and_get_receipt(client)
    for n in range(2):
        check_status(client, code, wrong(pin), remote_addr=f"203.0.113.{n + 1}")

    assert shown_status(check_status(client, code, pin, remote_addr="203.0.113.99")) == "received:Received"


def test_client_is_limited_per_hour(client: Client, settings) -> None:
    settings.HOTLINE_STATUS_RATE_LIMIT = 3
    code, pin = submit_and_get_receipt(client)
    for _ in range(3):
        assert check_status(client, code, pin, remote_addr="198.51.100.5").status_code == 200

    limited = check_status(client, code, pin, remote_addr="198.51.100.5")

    assert limited.status_code == 429
    assert TOO_MANY in page_text(limited)
    assert shown_status(limited) is None
    assert check_status(client, code, pin, remote_addr="198.51.100.6").status_code == 200


def test_pin_is_not_stored_in_clear(client: Client) -> None:
    code, pin = submit_and_get_receipt(client)
    report = Report.objects.get()

    assert report.receipt_code == code.replace("-", "")
    assert re.fullmatch(r"[0-9a-f]{64}", report.pin_digest)
    assert receipts.pin_matches(
        pepper=django_settings.HOTLINE_PEPPER, code=report.receipt_code, pin=pin, digest=report.pin_digest
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM reports_report WHERE id = %s", [report.pk])
        names = [column[0] for column in cursor.description]
        row = cursor.fetchone()
    for name, value in zip(names, row, strict=True):
        if name.endswith("_at") or name == "pin_digest":  # microseconds and hex may hold any six digits
            continue
        assert pin not in str(value), name
