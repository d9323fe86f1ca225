"""Partner API limits (body size, rate) and its published documentation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.test import Client

from reports.models import HashList, Report
from reports.models.choices import PartnerKind
from reports.services import throttle
from reports.services.partners import partner_create, token_issue

pytestmark = pytest.mark.django_db

REPORT = {"urls": ["https://example.com/limits"], "category": "csam"}


def bearer(name: str, kind: str = PartnerKind.HOTLINE) -> dict[str, str]:
    _, issued = partner_create(name=name, kind=kind)
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}


def post_json(client: Client, path: str, body: object, headers: dict[str, str]):
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


# --- body size ------------------------------------------------------------------------------


def test_body_over_the_api_limit_is_413_json(client: Client, settings) -> None:
    settings.HOTLINE_API_MAX_BODY_BYTES = 1000
    headers = bearer("Size partner")
    small = {**REPORT, "note": "x" * 100}
    large = {**REPORT, "note": "x" * 1500}

    assert post_json(client, "/api/v1/reports", small, headers).status_code == 201
    response = post_json(client, "/api/v1/reports", large, headers)

    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "The request body is too large."}
    assert Report.objects.count() == 1


def test_batch_body_over_the_api_limit_is_413(client: Client, settings) -> None:
    settings.HOTLINE_API_MAX_BODY_BYTES = 2000
    headers = bearer("Batch size partner")
    reports = [{**REPORT, "urls": [f"https://example.com/{i}"]} for i in range(100)]

    response = post_json(client, "/api/v1/reports/batch", {"reports": reports}, headers)

    assert response.status_code == 413
    assert Report.objects.count() == 0


def test_body_size_is_checked_before_the_token(client: Client, settings) -> None:
    settings.HOTLINE_API_MAX_BODY_BYTES = 100

    response = client.post(
        "/api/v1/reports", json.dumps({**REPORT, "note": "x" * 200}), content_type="application/json"
    )

    assert response.status_code == 413


def test_hash_list_imports_have_their_own_larger_limit(client: Client, settings) -> None:
    settings.HOTLINE_API_MAX_BODY_BYTES = 200
    settings.HOTLINE_API_MAX_HASHLIST_BODY_BYTES = 10_000
    partner, issued = partner_create(name="Import partner", kind=PartnerKind.HOTLINE)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}
    hash_list = HashList.objects.create(name="Big import", source=partner)
    body = "".join(f"md5,{i:032x}\n" for i in range(50))  # ~1.9 kB

    response = client.post(f"/api/v1/hashlists/{hash_list.pk}/entries", body, content_type="text/csv", **headers)

    assert response.status_code == 200
    assert response.json()["added"] == 50


# --- rate limit -----------------------------------------------------------------------------


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """Hold the throttle's clock 30 s into a minute, so a test never straddles two windows."""
    now = 1_700_000_010.0  # 1_699_999_980 is a multiple of 60: this is 30 s into its window
    assert now % 60 == 30
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: now))
    return now


def test_rate_limit_answers_429_with_retry_after(client: Client, settings, frozen_clock: float) -> None:
    settings.HOTLINE_API_RATE_LIMIT = 3
    headers = bearer("Busy partner")

    statuses = [client.get("/api/v1/reports", **headers).status_code for _ in range(3)]
    limited = post_json(client, "/api/v1/reports", REPORT, headers)

    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited["Content-Type"].startswith("application/json")
    assert limited.json()["detail"]
    retry_after = limited["Retry-After"]
    assert retry_after.isdigit()
    assert int(retry_after) == 30
    assert Report.objects.count() == 0


def test_rate_limit_is_per_partner(client: Client, settings, frozen_clock: float) -> None:
    settings.HOTLINE_API_RATE_LIMIT = 3
    busy = bearer("Busy partner")
    quiet = bearer("Quiet partner", PartnerKind.POLICE)
    for _ in range(4):
        client.get("/api/v1/reports", **busy)

    assert client.get("/api/v1/reports", **busy).status_code == 429
    assert client.get("/api/v1/reports", **quiet).status_code == 200


def test_rate_limit_counts_every_token_of_a_partner(client: Client, settings, frozen_clock: float) -> None:
    settings.HOTLINE_API_RATE_LIMIT = 3
    partner, first = partner_create(name="Two-token partner", kind="hotline")
    second = token_issue(partner=partner)
    for _ in range(3):
        client.get("/api/v1/reports", HTTP_AUTHORIZATION=f"Bearer {first.secret}")

    assert client.get("/api/v1/reports", HTTP_AUTHORIZATION=f"Bearer {second.secret}").status_code == 429


def test_rate_limit_resets_in_the_next_window(client: Client, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.HOTLINE_API_RATE_LIMIT = 1
    headers = bearer("Patient partner")
    clock = {"now": 1_700_000_010.0}
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: clock["now"]))

    assert client.get("/api/v1/reports", **headers).status_code == 200
    assert client.get("/api/v1/reports", **headers).status_code == 429
    clock["now"] += 30

    assert client.get("/api/v1/reports", **headers).status_code == 200


def test_wrong_tokens_are_not_counted_against_a_partner(client: Client, settings, frozen_clock: float) -> None:
    settings.HOTLINE_API_RATE_LIMIT = 2
    headers = bearer("Targeted partner")
    for _ in range(5):
        client.get("/api/v1/reports", HTTP_AUTHORIZATION="Bearer hl_guess")

    assert client.get("/api/v1/reports", **headers).status_code == 200


# --- documentation --------------------------------------------------------------------------

EXPECTED_OPERATIONS = {
    "/api/v1/reports": {"get", "post"},
    "/api/v1/reports/batch": {"post"},
    "/api/v1/reports/{report_id}": {"get"},
    "/api/v1/hashlists": {"get", "post"},
    "/api/v1/hashlists/{list_id}/entries": {"get", "post"},
}


def test_schema_is_openapi_3_json_listing_every_path(client: Client) -> None:
    response = client.get("/api/v1/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Hotline partner API"
    operations = {path: set(methods) for path, methods in schema["paths"].items()}
    assert operations == EXPECTED_OPERATIONS


def test_schema_documents_bearer_auth_and_errors(client: Client) -> None:
    schema = client.get("/api/v1/schema/").json()

    schemes = schema["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    submit = schema["paths"]["/api/v1/reports"]["post"]
    assert {"200", "201", "400", "401", "403", "413", "429"} <= set(submit["responses"])
    assert submit["security"]
    report_in = schema["components"]["schemas"]["ReportIn"]
    assert set(report_in["properties"]) == {
        "external_id",
        "urls",
        "hashes",
        "category",
        "ai_suspected",
        "note",
        "found_at",
    }
    assert report_in["properties"]["urls"]["maxItems"] == 100
    batch = schema["paths"]["/api/v1/reports/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["properties"]["reports"]["maxItems"] == 1000


def test_docs_page_is_browsable_html(client: Client) -> None:
    response = client.get("/api/v1/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    content = response.content.decode()
    assert "Hotline partner API" in content
    # Served from our own static files, so the Content-Security-Policy lets it run.
    assert "swagger-ui-bundle.js" in content
    assert "//cdn" not in content
