"""Partner API authentication: bearer tokens, scopes, how tokens are stored, and create_partner."""

from __future__ import annotations

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from reports.models import ApiToken, Partner, Report
from reports.models.choices import TokenScope
from reports.services.partners import partner_create, token_issue, token_revoke

pytestmark = pytest.mark.django_db

REPORT = {"urls": ["https://example.com/auth/1"], "category": "csam"}

# Every operation of the API by the scope it needs, with a body that a good token gets accepted.
SUBMIT_OPERATIONS = [
    ("post", "/api/v1/reports", REPORT),
    ("post", "/api/v1/reports/batch", {"reports": [REPORT]}),
]
READ_OPERATIONS = [
    ("get", "/api/v1/reports", None),
    ("get", "/api/v1/reports/1", None),
]
HASHLIST_OPERATIONS = [
    ("get", "/api/v1/hashlists", None),
    ("post", "/api/v1/hashlists", {"name": "Auth list"}),
    ("post", "/api/v1/hashlists/1/entries", {"entries": []}),
    ("get", "/api/v1/hashlists/1/entries", None),
]
OPERATIONS = SUBMIT_OPERATIONS + READ_OPERATIONS + HASHLIST_OPERATIONS


def call(client: Client, method: str, path: str, body: object = None, **headers: str):
    if method == "post":
        return client.post(path, json.dumps(body), content_type="application/json", **headers)
    return client.get(path, **headers)


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def assert_unauthenticated(response) -> None:
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"] == 'Bearer realm="hotline"'
    assert "token" in response.json()["detail"]


# --- 401: no, wrong, revoked token; inactive partner ----------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_no_authorization_header_is_401_everywhere(client: Client, method: str, path: str, body: object) -> None:
    assert_unauthenticated(call(client, method, path, body))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer hl_not-a-real-token",
        "Bearer ",
        "Bearer " + "x" * 300,
        "Basic dXNlcjpwYXNz",
        "hl_token-without-scheme",
    ],
)
def test_wrong_token_is_401(client: Client, header: str) -> None:
    partner_create(name="Real partner", kind="hotline")

    response = client.post(
        "/api/v1/reports", json.dumps(REPORT), content_type="application/json", **{"HTTP_AUTHORIZATION": header}
    )

    assert_unauthenticated(response)
    assert Report.objects.count() == 0


def test_a_token_differing_in_one_character_is_refused(client: Client) -> None:
    _, issued = partner_create(name="Typo partner", kind="hotline")
    last = issued.secret[-1]
    typo = issued.secret[:-1] + ("A" if last != "A" else "B")

    assert_unauthenticated(client.get("/api/v1/reports", **bearer(typo)))
    assert client.get("/api/v1/reports", **bearer(issued.secret)).status_code == 200


def test_revoked_token_is_401_and_other_tokens_keep_working(client: Client) -> None:
    partner, issued = partner_create(name="Revoking partner", kind="hotline")
    spare = token_issue(partner=partner, name="spare")
    assert client.get("/api/v1/reports", **bearer(issued.secret)).status_code == 200

    token_revoke(token=issued.token)

    assert_unauthenticated(client.get("/api/v1/reports", **bearer(issued.secret)))
    assert client.get("/api/v1/reports", **bearer(spare.secret)).status_code == 200


def test_inactive_partner_is_401(client: Client) -> None:
    partner, issued = partner_create(name="Suspended partner", kind="platform")
    Partner.objects.filter(pk=partner.pk).update(active=False)

    response = client.post(
        "/api/v1/reports", json.dumps(REPORT), content_type="application/json", **bearer(issued.secret)
    )

    assert_unauthenticated(response)
    assert Report.objects.count() == 0


# --- 403: a live token without the scope ----------------------------------------------------


def scoped_token(*scopes: str) -> str:
    _, issued = partner_create(name=f"Scoped {'-'.join(scopes) or 'none'}", kind="hotline", scopes=scopes)
    return issued.secret


def assert_forbidden(response, scope: str) -> None:
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert f"'{scope}' scope" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), SUBMIT_OPERATIONS)
def test_submitting_needs_the_submit_scope(client: Client, method: str, path: str, body: object) -> None:
    secret = scoped_token(TokenScope.READ, TokenScope.HASHLISTS)

    assert_forbidden(call(client, method, path, body, **bearer(secret)), "submit")
    assert Report.objects.count() == 0


@pytest.mark.parametrize(("method", "path", "body"), READ_OPERATIONS)
def test_reading_needs_the_read_scope(client: Client, method: str, path: str, body: object) -> None:
    secret = scoped_token(TokenScope.SUBMIT, TokenScope.HASHLISTS)

    assert_forbidden(call(client, method, path, body, **bearer(secret)), "read")


@pytest.mark.parametrize(("method", "path", "body"), HASHLIST_OPERATIONS)
def test_hash_lists_need_the_hashlists_scope(client: Client, method: str, path: str, body: object) -> None:
    secret = scoped_token(TokenScope.SUBMIT, TokenScope.READ)

    assert_forbidden(call(client, method, path, body, **bearer(secret)), "hashlists")


def test_a_submit_only_token_can_submit_but_not_read_back(client: Client) -> None:
    secret = scoped_token(TokenScope.SUBMIT)

    created = client.post("/api/v1/reports", json.dumps(REPORT), content_type="application/json", **bearer(secret))
    assert created.status_code == 201

    assert_forbidden(client.get(f"/api/v1/reports/{created.json()['id']}", **bearer(secret)), "read")


# --- how tokens are stored ------------------------------------------------------------------


def test_token_is_stored_only_as_a_digest() -> None:
    _, issued = partner_create(name="Digest partner", kind="ngo")

    row = ApiToken.objects.filter(pk=issued.token.pk).values().get()
    for column, value in row.items():
        assert issued.secret not in str(value), column
    assert row["digest"] == hashlib.sha256(issued.secret.encode()).hexdigest()
    # The visible prefix identifies the token in lists without giving it away.
    assert issued.secret.startswith(row["prefix"])
    assert len(row["prefix"]) < len(issued.secret) // 3
    assert sorted(row["scopes"]) == sorted(TokenScope.values)


def test_each_token_is_different(client: Client) -> None:
    partner, first = partner_create(name="Two tokens", kind="hotline")
    second = token_issue(partner=partner)

    assert first.secret != second.secret
    assert first.token.digest != second.token.digest


def test_use_is_recorded_on_the_token(client: Client) -> None:
    _, issued = partner_create(name="Used partner", kind="hotline")
    assert issued.token.last_used_at is None

    client.get("/api/v1/reports", **bearer(issued.secret))

    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None


# --- manage.py create_partner ---------------------------------------------------------------


def run_create_partner(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_partner", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_partner_prints_a_working_token_on_its_last_line(client: Client) -> None:
    lines = run_create_partner("Platform Example", "--kind", "platform", "--country", "de")

    partner = Partner.objects.get(name="Platform Example")
    assert (partner.kind, partner.country, partner.active) == ("platform", "DE", True)
    assert "Platform Example" in lines[0]
    token = lines[-1]
    assert " " not in token
    assert ApiToken.objects.get(partner=partner).digest == hashlib.sha256(token.encode()).hexdigest()

    response = client.post("/api/v1/reports", json.dumps(REPORT), content_type="application/json", **bearer(token))
    assert response.status_code == 201
    assert Report.objects.get().partner == partner


def test_create_partner_defaults_to_a_hotline_with_every_scope() -> None:
    run_create_partner("Hotline Example")

    partner = Partner.objects.get(name="Hotline Example")
    assert partner.kind == "hotline"
    assert sorted(partner.tokens.get().scopes) == sorted(TokenScope.values)


def test_create_partner_new_token_adds_a_second_working_token(client: Client) -> None:
    first = run_create_partner("Rotating Example")[-1]

    second = run_create_partner("Rotating Example", "--new-token")[-1]

    assert second != first
    assert Partner.objects.filter(name="Rotating Example").count() == 1
    assert ApiToken.objects.filter(partner__name="Rotating Example").count() == 2
    for token in (first, second):
        assert client.get("/api/v1/reports", **bearer(token)).status_code == 200


def test_create_partner_scopes_limit_the_token(client: Client) -> None:
    token = run_create_partner("Reader Example", "--scopes", "read")[-1]

    assert client.get("/api/v1/reports", **bearer(token)).status_code == 200
    response = client.post("/api/v1/reports", json.dumps(REPORT), content_type="application/json", **bearer(token))
    assert_forbidden(response, "submit")


def test_create_partner_refuses_an_existing_name_without_new_token() -> None:
    run_create_partner("Taken Example")

    with pytest.raises(CommandError, match="--new-token"):
        run_create_partner("Taken Example")
    assert ApiToken.objects.count() == 1


def test_create_partner_new_token_needs_an_existing_partner() -> None:
    with pytest.raises(CommandError, match="No partner"):
        run_create_partner("Nobody Example", "--new-token")
    assert ApiToken.objects.count() == 0


def test_create_partner_refuses_an_unknown_scope() -> None:
    with pytest.raises(CommandError, match="unknown scope"):
        run_create_partner("Bad scope Example", "--scopes", "submit,admin")
    assert not Partner.objects.filter(name="Bad scope Example").exists()


@pytest.mark.django_db
def test_admin_revokes_a_token_and_the_api_then_refuses_it(staff_client):
    _partner, issued = partner_create(name="Revoked by admin", kind="hotline", country="NL")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}
    client = staff_client("admin")  # the admin is only for users verified by a second factor
    assert client.get("/api/v1/reports", **headers).status_code == 200
    response = client.post(
        "/admin/reports/apitoken/",
        {"action": "revoke", "_selected_action": [issued.token.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at is not None
    client.logout()
    assert client.get("/api/v1/reports", **headers).status_code == 401
