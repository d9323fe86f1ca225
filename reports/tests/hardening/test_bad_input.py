"""Hostile input against the public form, the status check, the partner API and the staff pages.

A corpus of strings (over-long, control characters, invalid UTF-8, injection of SQL, HTML, JS and
templates, header tricks) is sent in every field of every input surface, plus wrong JSON types, huge
and deeply nested JSON bodies, raw byte bodies and missing CSRF tokens. Every request must end in a
4xx or a whole write: never a 5xx, never a half-written report, never a script reflected back.
The figures (inputs tried and what went wrong) are printed at the end of the run.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from reports.models import Report
from reports.services.partners import partner_create
from reports.tests.analyst_helpers import make_case
from reports.tests.factories import report_form_data
from reports.tests.hardening.probe import Probe

pytestmark = [pytest.mark.hardening, pytest.mark.django_db]

SCRIPTS = (
    "<script>alert('hl-xss-1')</script>",
    '"><script>alert(2)</script>',
    "'><img src=x onerror=alert(3)>",
    "<svg/onload=alert(4)>",
    "</textarea><script>alert(5)</script>",
    "<iframe src=javascript:alert(6)>",
    '<a href="javascript:alert(7)">x</a>',
    "<body onload=alert(8)>",
)
INJECTIONS = (
    "²",
    "9" * 30,
    "' OR '1'='1",
    "'; DROP TABLE reports_report; --",
    "1; SELECT pg_sleep(10) --",
    '" OR ""="',
    "%' UNION SELECT username, password FROM auth_user --",
    "{{ settings.SECRET_KEY }}",
    "{% debug %}",
    "${7*7}",
    "__proto__",
    "javascript:alert(9)",
)
ODD = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "\r\nSet-Cookie: hl=1",
    "%0d%0aLocation:%20http://evil.example",
    "\u202egnp.exe",
    "\ufeffbom",
    "𝕳𝖔𝖙𝖑𝖎𝖓𝖊 🙂",
    "\u0301" * 50,
    "../../../../etc/passwd",
    "x" * 5_000,
    "y" * 100_000,
    "-1",
    "99999999999999999999999999",
    "NaN",
    "1e309",
)
URLISH = (
    "http://127.0.0.1/",
    "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:25/_HELO",
    "http://exa mple.example/",
    "http://example.com/" + "a" * 3000,
    "http://xn--.example/",
)
CORPUS = SCRIPTS + INJECTIONS + ODD + URLISH


@pytest.fixture
def probe() -> Probe:
    running = Probe()
    yield running
    running.finish()
    assert not running.failures, "\n".join(running.failures[:50])


@pytest.fixture
def loose_limits(settings):
    """Rate limits out of the way: this suite tests what the input does, not the throttle."""
    settings.HOTLINE_REPORT_RATE_LIMIT = 100_000
    settings.HOTLINE_STATUS_RATE_LIMIT = 100_000
    settings.HOTLINE_STATUS_CODE_FAILURES = 100_000
    settings.HOTLINE_API_RATE_LIMIT = 100_000
    return settings


# --- Public form ------------------------------------------------------------------------------------


FORM_FIELDS = ("urls", "category", "ai_suspected", "where_found", "description", "email", "website")


def test_public_form_fields(probe: Probe, loose_limits, client: Client) -> None:
    for name in FORM_FIELDS:
        for payload in CORPUS:
            data = report_form_data(**{name: payload})
            probe.send(
                client, "post", "/report/", label=f"form {name}={payload[:40]!r}", payloads=(payload,), data=data
            )
    # A hostile description and e-mail next to a good URL are stored as text, whole, and never echoed.
    assert Report.objects.exists()


def test_public_form_wrong_types_and_raw_bodies(probe: Probe, loose_limits, client: Client) -> None:
    good = report_form_data()
    for name in FORM_FIELDS:
        # A list where one value is expected: Django keeps the last; nothing may break.
        data = {**good, name: [good[name] or "x", "<script>alert(10)</script>"]}
        probe.send(client, "post", "/report/", label=f"form list {name}", payloads=SCRIPTS, data=data)
        missing = {k: v for k, v in good.items() if k != name}
        probe.send(client, "post", "/report/", label=f"form without {name}", data=missing)
    raw_bodies = {
        "invalid utf-8": b"urls=http%3A%2F%2Fexample.com%2F%FF%FE&category=csam&where_found=website",
        "raw high bytes": b"urls=\xff\xfe\xfd&category=\xc3\x28&ai_suspected=unknown",
        "overlong utf-8": b"urls=%C0%AF%C0%AE&category=csam",
        "no equals": b"&&&===&&&",
        "semicolons": b"urls=a;category=b",
        "json to a form": json.dumps({"urls": "http://example.com/"}).encode(),
        "null bytes": b"\x00" * 1000,
        "10k fields": b"&".join(b"f%d=1" % i for i in range(10_000)),
    }
    for label, body in raw_bodies.items():
        for content_type in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain"):
            probe.send(
                client,
                "post",
                "/report/",
                label=f"form raw {label} as {content_type}",
                data=body,
                content_type=content_type,
            )
    probe.send(
        client,
        "post",
        "/report/",
        label="form multipart without boundary",
        data=b"--x\r\n\r\n",
        content_type="multipart/form-data",
    )
    probe.send(client, "post", "/report/", label="form body over 512 KiB", data={**good, "description": "z" * 600_000})
    probe.send(client, "put", "/report/", label="form PUT", data=b"urls=x")
    probe.send(client, "delete", "/report/", label="form DELETE")
    probe.send(client, "options", "/report/", label="form OPTIONS")
    probe.send(client, "get", "/report/?urls=<script>alert(11)</script>", label="form GET query", payloads=SCRIPTS)


def test_public_form_header_tricks(probe: Probe, loose_limits, client: Client) -> None:
    data = report_form_data()
    headers = {
        "HTTP_HOST": ["evil.example", "127.0.0.1:8000\r\nX-Injected: 1", "localhost:99999999", "", "[::1", "a" * 300],
        "HTTP_X_FORWARDED_FOR": ["<script>alert(12)</script>", ", , ,", "1.1.1.1, " * 2000, "\x00"],
        "HTTP_X_FORWARDED_HOST": ["evil.example"],
        "HTTP_X_FORWARDED_PROTO": ["gopher"],
        "HTTP_ACCEPT_LANGUAGE": ["<script>", "nl;q=abc,en;q=-1", "x" * 5000, "zz-ZZ"],
        "HTTP_COOKIE": ["csrftoken=<script>alert(13)</script>", "sessionid=" + "a" * 4000, "=;=;=", "\x00=\x00"],
        "HTTP_REFERER": ["javascript:alert(14)", "http://evil.example/"],
        "CONTENT_LENGTH": ["-1", "abc", "99999999999999999999"],
        "HTTP_USER_AGENT": ["<script>alert(15)</script>", "x" * 10_000],
    }
    for header, values in headers.items():
        for value in values:
            for method in ("get", "post"):
                kwargs = {"data": data} if method == "post" else {}
                probe.send(
                    client,
                    method,
                    "/report/",
                    label=f"{method} header {header}={value[:30]!r}",
                    payloads=(value,),
                    **kwargs,
                    **{header: value},
                )


def test_public_form_without_csrf_token(probe: Probe, loose_limits) -> None:
    strict = Client(enforce_csrf_checks=True)
    data = report_form_data()
    probe.send(strict, "post", "/report/", label="form without CSRF token", accept=False, data=data)
    probe.send(
        strict,
        "post",
        "/report/status/",
        label="status without CSRF token",
        accept=False,
        data={"code": "AAAA-BBBB", "pin": "123456"},
    )
    strict.get("/report/")
    forged = {**data, "csrfmiddlewaretoken": "x" * 64}
    probe.send(strict, "post", "/report/", label="form with a forged CSRF token", accept=False, data=forged)
    other = Client(enforce_csrf_checks=True)
    other.get("/report/")
    token = other.cookies["csrftoken"].value
    probe.send(
        strict,
        "post",
        "/report/",
        label="form with another visitor's CSRF token",
        accept=False,
        data={**data, "csrfmiddlewaretoken": token},
    )
    assert not Report.objects.exists()


def test_status_check(probe: Probe, loose_limits, client: Client) -> None:
    for payload in CORPUS:
        for name in ("code", "pin"):
            data = {"code": "ABCD-EFGH-IJKL", "pin": "123456", name: payload}
            probe.send(
                client,
                "post",
                "/report/status/",
                label=f"status {name}={payload[:40]!r}",
                payloads=(payload,),
                data=data,
            )


# --- Partner API --------------------------------------------------------------------------------------


@pytest.fixture
def api(db) -> dict[str, str]:
    _partner, issued = partner_create(name="Hardening partner", kind="hotline")
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}


GOOD_REPORT = {"urls": ["https://example.com/hardening/1"], "category": "csam"}
JSON_VALUES: tuple[object, ...] = (
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    1e308,
    "",
    [],
    {},
    [None],
    [[[]]],
    {"$gt": ""},
    ["x" * 10_000],
    "x" * 100_000,
    [1, 2, 3],
    {"urls": []},
)
REPORT_FIELDS = ("urls", "hashes", "category", "ai_suspected", "note", "found_at", "external_id", "extra")


def post_json(probe: Probe, client: Client, path: str, body: object, api: dict[str, str], label: str, **extra):
    text = json.dumps(body)
    payloads = tuple(s for s in CORPUS if "<" in s and s in text)
    return probe.send(
        client, "post", path, label=label, payloads=payloads, data=text, content_type="application/json", **api, **extra
    )


def test_api_report_fields(probe: Probe, loose_limits, client: Client, api) -> None:
    for name in REPORT_FIELDS:
        for value in (*JSON_VALUES, *CORPUS):
            body = {**GOOD_REPORT, name: value}
            post_json(probe, client, "/api/v1/reports", body, api, f"api {name}={str(value)[:40]!r}")
        body = {**GOOD_REPORT, name: [*CORPUS]}
        post_json(probe, client, "/api/v1/reports", body, api, f"api {name}=[corpus]")
    for value in CORPUS:
        body = {**GOOD_REPORT, "hashes": [{"algorithm": "md5", "value": value}]}
        post_json(probe, client, "/api/v1/reports", body, api, f"api hash value {value[:40]!r}")
        body = {**GOOD_REPORT, "hashes": [{"algorithm": value, "value": "0" * 32}]}
        post_json(probe, client, "/api/v1/reports", body, api, f"api hash algorithm {value[:40]!r}")


def test_api_raw_bodies(probe: Probe, loose_limits, client: Client, api, settings) -> None:
    bodies = {
        "empty": b"",
        "not json": b"not json",
        "invalid utf-8": b'{"urls": ["http://example.com/\xff\xfe"], "category": "csam"}',
        "utf-16": json.dumps(GOOD_REPORT).encode("utf-16"),
        "bom": b"\xef\xbb\xbf" + json.dumps(GOOD_REPORT).encode(),
        "nan": b'{"urls": ["http://example.com/n"], "category": "csam", "external_id": NaN}',
        "duplicate keys": b'{"urls": ["http://example.com/d"], "urls": 5, "category": "csam"}',
        "trailing garbage": json.dumps(GOOD_REPORT).encode() + b"}}}",
        "nested arrays 100k": b"[" * 100_000 + b"]" * 100_000,
        "nested objects 50k": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "nested in a field": b'{"urls": ' + b"[" * 20_000 + b"]" * 20_000 + b', "category": "csam"}',
        "huge number": b'{"urls": ["http://example.com/h"], "category": "csam", "note": ' + b"9" * 100_000 + b"}",
        "huge string key": b'{"' + b"k" * 1_000_000 + b'": 1}',
        "null bytes": b"\x00" * 1000,
        "over the body limit": b'{"note": "' + b"a" * (settings.HOTLINE_API_MAX_BODY_BYTES + 10) + b'"}',
    }
    for path in ("/api/v1/reports", "/api/v1/reports/batch", "/api/v1/hashlists"):
        for label, body in bodies.items():
            probe.send(
                client,
                "post",
                path,
                label=f"api raw {label} to {path}",
                data=body,
                content_type="application/json",
                **api,
            )
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "text/csv"):
            probe.send(
                client,
                "post",
                path,
                label=f"api {content_type} to {path}",
                data=json.dumps(GOOD_REPORT).encode(),
                content_type=content_type,
                **api,
            )


def test_api_batches_and_hash_lists(probe: Probe, loose_limits, client: Client, api, settings) -> None:
    for value in JSON_VALUES:
        post_json(probe, client, "/api/v1/reports/batch", {"reports": value}, api, f"batch reports={str(value)[:30]}")
        post_json(probe, client, "/api/v1/reports/batch", {"reports": [value]}, api, f"batch item={str(value)[:30]}")
    mixed = [GOOD_REPORT, {"urls": ["<script>alert(16)</script>"]}, {"category": 5}, None]
    response = post_json(probe, client, "/api/v1/reports/batch", {"reports": mixed}, api, "batch mixed")
    assert response.json()["created"] + response.json()["replayed"] == 1
    too_many = [{**GOOD_REPORT, "external_id": str(i)} for i in range(settings.HOTLINE_API_MAX_BATCH + 1)]
    post_json(probe, client, "/api/v1/reports/batch", {"reports": too_many}, api, "batch over the limit")

    created = post_json(probe, client, "/api/v1/hashlists", {"name": "Hardening list"}, api, "hash list")
    list_id = created.json()["id"]
    for value in (*JSON_VALUES, *SCRIPTS, *INJECTIONS, "\x00"):
        post_json(probe, client, "/api/v1/hashlists", {"name": value}, api, f"hash list name {str(value)[:30]}")
        entries = {"entries": [{"algorithm": "md5", "value": value}]}
        post_json(probe, client, f"/api/v1/hashlists/{list_id}/entries", entries, api, f"entry {str(value)[:30]}")
    csv_bodies = [
        b"md5,<script>alert(17)</script>\n",
        b"algorithm,value,category\n" + b"md5," + b"0" * 31 + b"g\n",
        b"\xff\xfe\x00m\x00d\x005",
        b'"unterminated,md5\n',
        b"md5," + b"a" * 100_000 + b"\n",
        b"=cmd|' /C calc'!A0,md5\n",
        b"\x00\x00\x00",
        b"md5,d41d8cd98f00b204e9800998ecf8427e,not-a-category\n",
    ]
    for body in csv_bodies:
        probe.send(
            client,
            "post",
            f"/api/v1/hashlists/{list_id}/entries",
            label=f"csv {body[:30]!r}",
            data=body,
            content_type="text/csv",
            **api,
        )


def test_api_queries_paths_and_headers(probe: Probe, loose_limits, client: Client, api) -> None:
    for value in (
        *CORPUS,
        "0",
        "-5",
        "1000000",
        "2024-13-45T99:99:99",
        "9999-12-31T23:59:59+23:00",
        "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
        "LTE",
    ):  # base64 of a 30-digit number and of -1
        for name in ("since", "cursor", "limit"):
            probe.send(
                client,
                "get",
                "/api/v1/reports",
                label=f"api ?{name}={value[:30]!r}",
                payloads=(value,),
                data={name: value},
                **api,
            )
    for segment in ("0", "-1", "99999999999999999999999", "%00", "<script>", "1.5", "..%2f..%2f", "1;DROP"):
        probe.send(client, "get", f"/api/v1/reports/{segment}", label=f"api report id {segment}", **api)
        probe.send(client, "get", f"/api/v1/hashlists/{segment}/entries", label=f"api list id {segment}", **api)
    for value in ("", "x" * 201, "a\x00b", "<script>alert(18)</script>", "\r\nX: y", "ünïcödé"):
        post_json(
            probe,
            client,
            "/api/v1/reports",
            GOOD_REPORT,
            api,
            f"Idempotency-Key {value[:20]!r}",
            HTTP_IDEMPOTENCY_KEY=value,
        )
    for header in (
        "Bearer",
        "Bearer  ",
        "Bearer \x00",
        "Bearer <script>alert(19)</script>",
        "Bearer " + "x" * 10_000,
        "bearer hl_",
        "Token x",
        "Bearer hl_\r\nX: y",
        "Basic Og==",
    ):
        probe.send(
            client,
            "get",
            "/api/v1/reports",
            label=f"Authorization {header[:30]!r}",
            accept=False,
            payloads=(header,),
            HTTP_AUTHORIZATION=header,
        )


# --- Staff pages --------------------------------------------------------------------------------------


def test_staff_pages(probe: Probe, loose_limits, staff_client) -> None:
    admin = staff_client("admin")
    case = make_case(1)
    content_id = case.contents.first().pk
    for payload in CORPUS:
        probe.send(
            admin,
            "get",
            "/staff/queues/",
            label=f"queues filter {payload[:30]!r}",
            payloads=(payload,),
            data={"source": payload, "category": payload, "country": payload, "older_than_hours": payload},
        )
        probe.send(
            admin,
            "get",
            "/staff/audit/",
            label=f"audit filter {payload[:30]!r}",
            payloads=(payload,),
            data={"action": payload, "actor": payload, "since": payload, "until": payload, "page": payload},
        )
        probe.send(
            admin,
            "get",
            "/staff/exposure/",
            label=f"exposure {payload[:30]!r}",
            payloads=(payload,),
            data={"period": payload},
        )
        probe.send(
            admin,
            "post",
            f"/staff/cases/{case.pk}/assess",
            label=f"assess {payload[:30]!r}",
            payloads=(payload,),
            data={
                "content": payload,
                f"c{content_id}-verdict": payload,
                f"c{content_id}-notes": payload,
                f"c{content_id}-age_group": payload,
            },
        )
        probe.send(
            admin,
            "post",
            f"/staff/cases/{case.pk}/reassign",
            label=f"reassign {payload[:30]!r}",
            payloads=(payload,),
            data={"to": payload},
        )
        probe.send(
            admin,
            "post",
            f"/staff/contents/{content_id}/reveal",
            label=f"reveal {payload[:30]!r}",
            payloads=(payload,),
            data={"case": payload, "grey": payload},
        )
        probe.send(
            admin,
            "get",
            f"/staff/contents/{content_id}/preview",
            label=f"preview {payload[:30]!r}",
            payloads=(payload,),
            data={"view": payload, "token": payload},
        )
        probe.send(
            admin,
            "post",
            "/staff/queues/new_unknown/next",
            label=f"next {payload[:30]!r}",
            payloads=(payload,),
            data={"release": payload, "country": payload},
        )
        probe.send(
            admin,
            "post",
            "/staff/queues/known_new_location/confirm",
            label=f"confirm {payload[:30]!r}",
            payloads=(payload,),
            data={"case": [payload, str(case.pk)]},
        )
        response = probe.send(
            admin,
            "post",
            "/staff/preferences/",
            label=f"preferences next={payload[:30]!r}",
            payloads=(payload,),
            data={"greyscale": payload, "next": payload},
        )
        location = response.get("Location", "")
        if location.startswith(("http:", "https:", "//", "javascript:", "\\")) or "\n" in location:
            probe.failures.append(f"open redirect: preferences next={payload!r} -> {location!r}")
    for segment in ("<script>alert(20)</script>", "%00", "..", "x" * 3000, "'--"):
        probe.send(admin, "get", f"/staff/queues/{segment}/", label=f"queue name {segment[:30]!r}", payloads=(segment,))


def test_staff_post_without_csrf_token(probe: Probe, loose_limits, staff_client) -> None:
    admin = staff_client("admin")
    admin.handler.enforce_csrf_checks = True
    case = make_case(2)
    content_id = case.contents.first().pk
    for path, data in (
        (f"/staff/cases/{case.pk}/claim", {}),
        (f"/staff/cases/{case.pk}/assess", {f"c{content_id}-verdict": "not_illegal", "content": str(content_id)}),
        (f"/staff/contents/{content_id}/reveal", {"case": str(case.pk)}),
        ("/staff/preferences/", {"greyscale": "1"}),
        ("/staff/audit/export.csv", {}),
    ):
        probe.send(admin, "post", path, label=f"staff {path} without CSRF token", accept=False, data=data)


def test_stored_markup_is_never_rendered_to_staff(
    probe: Probe, loose_limits, client: Client, staff_client, api
) -> None:
    """What the public and partners stored (description, note, e-mail, external id, submitted URL spelling)
    comes back escaped on every staff page that shows it: the analyst's case page and the admin."""
    for payload in SCRIPTS:
        data = report_form_data([f"https://example.com/stored?q={payload}"], description=payload, email="a@example.com")
        probe.send(client, "post", "/report/", label=f"stored via form {payload[:30]!r}", payloads=(payload,),
                   data=data)  # fmt: skip
        body = {**GOOD_REPORT, "urls": [f"https://example.com/api-stored?q={payload}"], "note": payload,
                "external_id": payload}  # fmt: skip
        post_json(probe, client, "/api/v1/reports", body, api, f"stored via API {payload[:30]!r}")
    admin = staff_client("admin")
    pages = ["/admin/reports/report/", "/admin/reports/url/", "/admin/reports/reportedurl/"]
    pages += [f"/admin/reports/report/{pk}/change/" for pk in Report.objects.values_list("pk", flat=True)]
    case = make_case(4, description=SCRIPTS[0])
    pages.append(f"/staff/cases/{case.pk}/")
    for page in pages:
        response = probe.send(admin, "get", page, label=f"staff page {page}", payloads=SCRIPTS)
        assert response.status_code == 200, page
