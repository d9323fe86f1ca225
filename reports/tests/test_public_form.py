"""The public report form (/report/): what a visitor sees, what is stored, what is refused."""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test import Client

from reports.models import Report, ReportedUrl, Url
from reports.tests.factories import report_form_data, submit_report

pytestmark = pytest.mark.django_db

REPORT_URL = "/report/"


def page_text(response) -> str:
    return html.unescape(response.content.decode("utf-8"))


def textarea_value(response, name: str) -> str:
    match = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', response.content.decode("utf-8"), re.S)
    assert match, f"no textarea {name!r} on the page"
    # Django's own Textarea widget starts its content with a newline, which browsers drop.
    return html.unescape(match.group(1)).removeprefix("\n")


def field_errors(response, field: str) -> list[str]:
    match = re.search(rf'<ul class="errorlist" id="id_{field}-errors">(.*?)</ul>', response.content.decode(), re.S)
    if not match:
        return []
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def counts() -> tuple[int, int, int]:
    return (Report.objects.count(), ReportedUrl.objects.count(), Url.objects.count())


def receipt_values(response) -> dict[str, str]:
    return dict(re.findall(r'data-receipt="(code|pin)">([^<]+)<', response.content.decode()))


# --- the empty form -------------------------------------------------------------------------


def test_form_renders_its_fields_and_no_upload(client: Client) -> None:
    response = client.get(REPORT_URL)

    assert response.status_code == 200
    content = response.content.decode()
    for name in ("urls", "category", "ai_suspected", "where_found", "description", "email", "website"):
        assert f'name="{name}"' in content, name
    assert 'type="file"' not in content
    assert "multipart" not in content
    assert "Never send images or videos" in page_text(response)


def test_honeypot_is_hidden_from_people(client: Client) -> None:
    content = client.get(REPORT_URL).content.decode()

    honeypot = re.search(r'<div class="hp" aria-hidden="true">.*?</div>', content, re.S)
    assert honeypot
    assert 'name="website"' in honeypot.group(0)
    assert 'tabindex="-1"' in honeypot.group(0)


def test_security_headers(client: Client) -> None:
    response = client.get(REPORT_URL)

    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    # The policy would block inline code, so the page must not rely on any.
    content = response.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", content)
    assert " style=" not in content
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


# --- happy path -----------------------------------------------------------------------------


def test_report_is_stored_and_receipt_shown(client: Client) -> None:
    before = counts()
    response = submit_report(
        client,
        ["https://example.com/one", "http://Example.org:80/two#x"],
        category="ai_csam",
        ai_suspected="yes",
        where_found="forum",
        description="Found in a thread",
        email="reporter@example.org",
    )

    assert response.status_code == 200
    receipt = receipt_values(response)
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", receipt["code"])
    assert re.fullmatch(r"[0-9]{6}", receipt["pin"])
    assert "We received 2 web addresses." in page_text(response)
    assert counts() == (before[0] + 1, before[1] + 2, before[2] + 2)

    report = Report.objects.get(receipt_code=receipt["code"].replace("-", ""))
    assert (report.source, report.category, report.ai_suspected, report.where_found) == (
        "public",
        "ai_csam",
        "yes",
        "forum",
    )
    assert report.description == "Found in a thread"
    assert report.status == "received"
    sightings = list(report.reported_urls.select_related("url").order_by("position"))
    assert [(s.submitted_url, s.url.canonical_url, s.was_known) for s in sightings] == [
        ("https://example.com/one", "https://example.com/one", False),
        ("http://Example.org:80/two#x", "http://example.org/two", False),
    ]
    assert [s.url.host for s in sightings] == ["example.com", "example.org"]


def test_email_is_encrypted_at_rest(client: Client) -> None:
    response = submit_report(client, email="reporter@example.org")
    assert response.status_code == 200
    report = Report.objects.get()

    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM reports_report WHERE id = %s", [report.pk])
        (raw,) = cursor.fetchone()
    assert raw
    assert "reporter" not in raw
    assert "example.org" not in raw
    assert Report.objects.get(pk=report.pk).email == "reporter@example.org"


def test_report_without_email_stores_none(client: Client) -> None:
    assert submit_report(client).status_code == 200
    assert Report.objects.get().email == ""


def test_scheme_less_line_is_accepted_as_http(client: Client) -> None:
    assert submit_report(client, "www.example.com/page").status_code == 200
    assert Url.objects.get().canonical_url == "http://www.example.com/page"


# --- validation -----------------------------------------------------------------------------

GOOD = "https://example.com/fine\nhttps://example.org/also-fine\n"

URL_LINE_ERRORS = [
    ("ftp://example.com/file", "only web addresses starting with http:// or https://"),
    ("javascript:alert('x')", "only web addresses starting with http:// or https://"),
    ("http://192.168.1.20/x", "private, local or reserved network"),
    ("http://10.0.0.1/", "private, local or reserved network"),
    ("http://localhost:8000/admin", "private, local or reserved network"),
    ("http://" + "a" * 2050 + ".example/", "the address is too long (at most 2048 characters)"),
    ("http://example.com:99999/", "the port number is not valid"),
    ("http://example.com:²/", "the port number is not valid"),
    ("http://nodot/", "not a valid public host name"),
]


@pytest.mark.parametrize(("bad_line", "problem"), URL_LINE_ERRORS)
def test_bad_url_line_is_refused_by_line_number(client: Client, bad_line: str, problem: str) -> None:
    before = counts()
    text = GOOD + bad_line
    response = submit_report(client, text)

    assert response.status_code == 400
    errors = field_errors(response, "urls")
    assert len(errors) == 1
    assert errors[0].startswith("Line 3 (")
    assert problem in errors[0]
    assert textarea_value(response, "urls") == text
    assert counts() == before


def test_every_bad_line_is_named(client: Client) -> None:
    text = "http://127.0.0.1/\nhttps://example.com/ok\nfile:///etc/passwd\n\nhttp://[::1]/"
    response = submit_report(client, text)

    assert response.status_code == 400
    errors = field_errors(response, "urls")
    assert [error.split(" (")[0] for error in errors] == ["Line 1", "Line 3", "Line 5"]
    assert counts() == (0, 0, 0)


def test_long_line_is_shortened_in_the_message(client: Client) -> None:
    response = submit_report(client, "ftp://example.com/" + "x" * 300)

    (error,) = field_errors(response, "urls")
    assert len(error) < 250
    assert "…" in error


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"urls": ""}, "urls", "Enter at least one web address."),
        ({"urls": " \n\n  \n"}, "urls", "Enter at least one web address."),
        (
            {"urls": "\n".join(f"https://example.com/{n}" for n in range(51))},
            "urls",
            "Enter at most 50 addresses; you entered 51.",
        ),
        ({"category": "weather"}, "category", "Select a valid choice. weather is not one of the available choices."),
        ({"category": ""}, "category", "This field is required."),
        ({"where_found": "moon"}, "where_found", "Select a valid choice."),
        ({"ai_suspected": "maybe"}, "ai_suspected", "Select a valid choice."),
        ({"description": "d" * 2001}, "description", "Ensure this value has at most 2000 characters (it has 2001)."),
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"email": "someone@"}, "email", "Enter a valid email address."),
    ],
)
def test_invalid_field_is_refused_and_nothing_stored(
    client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    before = counts()
    data = {**report_form_data(GOOD), **overrides}
    response = client.post(REPORT_URL, data, REMOTE_ADDR="192.0.2.10")

    assert response.status_code == 400
    assert any(error.startswith(message) for error in field_errors(response, field)), field_errors(response, field)
    # The visitor's text is still there to correct.
    assert textarea_value(response, "urls") == data["urls"]
    if field == "description":
        assert textarea_value(response, "description") == data["description"]
    assert counts() == before
    assert "data-receipt" not in response.content.decode()


def test_fifty_lines_are_accepted(client: Client) -> None:
    response = submit_report(client, [f"https://example.com/{n}" for n in range(50)])

    assert response.status_code == 200
    assert ReportedUrl.objects.count() == 50


# --- duplicates -----------------------------------------------------------------------------


def test_duplicate_lines_in_one_report_are_merged(client: Client) -> None:
    lines = [
        "https://example.com/page?b=2&a=1",
        "HTTPS://EXAMPLE.COM:443/page?a=1&b=2#top",
        "https://example.com/page?a=1&b=2&utm_source=mail",
        "https://example.com/other",
    ]
    response = submit_report(client, lines)

    assert response.status_code == 200
    text = page_text(response)
    assert "We received 2 web addresses." in text
    assert "2 lines were the same address as others and were merged." in text
    report = Report.objects.get()
    assert [(r.position, r.submitted_url) for r in report.reported_urls.order_by("position")] == [
        (0, "https://example.com/page?b=2&a=1"),
        (1, "https://example.com/other"),
    ]
    assert Url.objects.get(canonical_url="https://example.com/page?a=1&b=2").sightings == 1


def test_no_merge_note_without_duplicates(client: Client) -> None:
    response = submit_report(client, ["https://example.com/a", "https://example.com/b"])

    assert "merged" not in page_text(response)


def test_same_url_in_two_reports_is_one_url_seen_twice(client: Client) -> None:
    first = submit_report(client, "https://example.com/dup/./x?b=2&a=1")
    second = submit_report(client, "HTTPS://Example.COM:443/dup/x?a=1&b=2&fbclid=abc#frag", remote_addr="192.0.2.77")

    assert first.status_code == second.status_code == 200
    url = Url.objects.get()
    assert url.canonical_url == "https://example.com/dup/x?a=1&b=2"
    assert url.sightings == 2
    sightings = list(ReportedUrl.objects.order_by("report__created_at", "pk"))
    assert len(sightings) == 2
    assert {s.report_id for s in sightings} == set(Report.objects.values_list("pk", flat=True))
    assert [s.was_known for s in sightings] == [False, True]


# --- abuse ----------------------------------------------------------------------------------


def test_honeypot_drops_the_report_silently(client: Client) -> None:
    response = submit_report(client, website="https://spam.example/buy")

    assert response.status_code == 200
    assert "data-receipt" not in response.content.decode()
    assert "Thank you" in page_text(response)
    assert counts() == (0, 0, 0)


def test_rate_limit_per_client(client: Client, settings) -> None:
    settings.HOTLINE_REPORT_RATE_LIMIT = 3
    for _ in range(3):
        assert submit_report(client, remote_addr="198.51.100.1").status_code == 200
    before = counts()

    refused = submit_report(client, ["https://example.com/late"], remote_addr="198.51.100.1")

    assert refused.status_code == 429
    assert "You have sent many reports in a short time." in page_text(refused)
    assert textarea_value(refused, "urls") == "https://example.com/late"
    assert "data-receipt" not in refused.content.decode()
    assert counts() == before
    assert submit_report(client, remote_addr="198.51.100.2").status_code == 200
    assert Report.objects.count() == before[0] + 1


def test_refused_attempts_count_towards_the_rate_limit(client: Client, settings) -> None:
    settings.HOTLINE_REPORT_RATE_LIMIT = 2
    assert submit_report(client, "ftp://example.com/", remote_addr="198.51.100.3").status_code == 400
    assert submit_report(client, website="bot", remote_addr="198.51.100.3").status_code == 200

    assert submit_report(client, remote_addr="198.51.100.3").status_code == 429
    assert Report.objects.count() == 0


def test_post_without_csrf_token_is_refused() -> None:
    strict = Client(enforce_csrf_checks=True)

    response = strict.post(REPORT_URL, report_form_data(), REMOTE_ADDR="192.0.2.10")

    assert response.status_code == 403
    assert counts() == (0, 0, 0)


def test_post_with_csrf_token_is_accepted() -> None:
    strict = Client(enforce_csrf_checks=True)
    page = strict.get(REPORT_URL)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)

    response = strict.post(REPORT_URL, {**report_form_data(), "csrfmiddlewaretoken": token}, REMOTE_ADDR="192.0.2.10")

    assert response.status_code == 200
    assert Report.objects.count() == 1


def test_only_get_and_post(client: Client) -> None:
    assert client.put(REPORT_URL, "urls=https://example.com/").status_code == 405
    assert Report.objects.count() == 0
