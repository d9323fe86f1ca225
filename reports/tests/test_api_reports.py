"""Partner API reports: submit one, submit a batch, read back, page through."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.test import Client

from reports.models import (
    Capture,
    Case,
    Content,
    HashList,
    KnownHash,
    Match,
    Referral,
    Report,
    ReportedUrl,
    SubmittedHash,
    Url,
)
from reports.models.choices import PartnerKind
from reports.services.partners import partner_create
from reports.tests.factories import make_public_report

pytestmark = pytest.mark.django_db

HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "phash": 16}


class Api:
    """One partner talking to the API through the test client."""

    def __init__(self, client: Client, *, name: str = "Hotline Example", kind: str = PartnerKind.HOTLINE) -> None:
        self.client = client
        self.partner, issued = partner_create(name=name, kind=kind, country="NL")
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}

    def post(self, path: str, body: Any, **headers: str):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(path, data, content_type="application/json", **self.headers, **headers)

    def get(self, path: str, params: dict[str, Any] | None = None):
        return self.client.get(path, params or {}, **self.headers)

    def submit(self, **fields: Any):
        return self.post("/api/v1/reports", report(**fields))


def report(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"urls": ["https://example.com/a"], "category": "csam"}
    body.update(fields)
    return body


def hash_value(algorithm: str, seed: int = 1) -> str:
    return f"{seed:x}".rjust(HEX_LENGTH[algorithm], "a")


def counts() -> tuple[int, int, int, int]:
    return (Report.objects.count(), ReportedUrl.objects.count(), Url.objects.count(), SubmittedHash.objects.count())


def error_paths(response) -> list[str]:
    return [error["path"] for error in response.json()["errors"]]


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


@pytest.fixture
def other() -> Api:
    return Api(Client(), name="Platform Example", kind=PartnerKind.PLATFORM)


# --- submit: what is stored and answered ----------------------------------------------------


def test_submit_returns_201_with_the_documented_shape(api: Api) -> None:
    found_at = "2025-03-01T12:30:00+01:00"
    response = api.submit(
        external_id="case-1",
        urls=["https://example.com/gallery/1"],
        hashes=[{"algorithm": "sha256", "value": hash_value("sha256")}],
        ai_suspected=True,
        note="Seen in a forum thread.",
        found_at=found_at,
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "status", "urls", "hashes"}
    assert body["status"] == "received"
    assert body["urls"] == [
        {"url": "https://example.com/gallery/1", "canonical_url": "https://example.com/gallery/1", "known": False}
    ]
    assert body["hashes"] == [{"algorithm": "sha256", "value": hash_value("sha256"), "matches": []}]
    stored = Report.objects.get(pk=body["id"])
    assert stored.source == "partner"
    assert stored.partner == api.partner
    assert stored.external_id == "case-1"
    assert stored.receipt_code is None
    assert stored.ai_suspected == "yes"
    assert stored.description == "Seen in a forum thread."
    assert stored.found_at == datetime(2025, 3, 1, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(("given", "stored"), [(True, "yes"), (False, "no"), (None, "unknown")])
def test_ai_suspected_is_stored_as_the_public_form_does(api: Api, given: bool | None, stored: str) -> None:
    response = api.submit(ai_suspected=given)

    assert Report.objects.get(pk=response.json()["id"]).ai_suspected == stored


def test_a_hash_only_report_is_accepted(api: Api) -> None:
    response = api.submit(urls=[], hashes=[{"algorithm": "pdq", "value": hash_value("pdq")}])

    assert response.status_code == 201
    assert response.json()["urls"] == []
    assert counts() == (1, 0, 0, 1)


def test_urls_are_canonicalised_and_deduplicated_within_a_report(api: Api) -> None:
    response = api.submit(
        urls=[
            "HTTP://Example.COM:80/a/../b?utm_source=mail&z=1&a=2#top",
            "https://example.org/other",
            "http://example.com/b?a=2&z=1",
        ]
    )

    assert response.status_code == 201
    assert response.json()["urls"] == [
        {
            "url": "HTTP://Example.COM:80/a/../b?utm_source=mail&z=1&a=2#top",
            "canonical_url": "http://example.com/b?a=2&z=1",
            "known": False,
        },
        {"url": "https://example.org/other", "canonical_url": "https://example.org/other", "known": False},
    ]
    assert counts() == (1, 2, 2, 0)
    assert Url.objects.get(canonical_url="http://example.com/b?a=2&z=1").sightings == 1


def test_duplicate_hashes_within_a_report_are_stored_once(api: Api) -> None:
    value = hash_value("md5")
    response = api.submit(
        urls=[], hashes=[{"algorithm": "md5", "value": value}, {"algorithm": "md5", "value": value.upper()}]
    )

    assert response.status_code == 201
    assert len(response.json()["hashes"]) == 1
    assert SubmittedHash.objects.count() == 1


@pytest.mark.parametrize(
    "bad_url",
    [
        "http://127.0.0.1/admin",
        "http://localhost:8000/",
        "http://10.0.0.5/files",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://0x7f000001/",
        "http://169.254.169.254/latest/meta-data/",
        "ftp://example.com/file",
        "javascript:alert(1)",
    ],
)
def test_private_or_unsupported_url_is_400_naming_its_position(api: Api, bad_url: str) -> None:
    response = api.submit(urls=["https://example.com/fine", bad_url])

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert error_paths(response) == ["$.urls[1]"]
    assert counts() == (0, 0, 0, 0)


def test_private_url_message_says_why(api: Api) -> None:
    response = api.submit(urls=["http://127.0.0.1/"])

    (error,) = response.json()["errors"]
    assert error["message"].startswith("private_host:")
    assert "private" in error["message"]


@pytest.mark.parametrize("algorithm", sorted(HEX_LENGTH))
@pytest.mark.parametrize("defect", ["one short", "one long", "not hex", "empty"])
def test_bad_hash_value_is_400_at_its_path(api: Api, algorithm: str, defect: str) -> None:
    length = HEX_LENGTH[algorithm]
    value = {"one short": "a" * (length - 1), "one long": "a" * (length + 1), "not hex": "g" * length, "empty": ""}[
        defect
    ]

    response = api.submit(urls=[], hashes=[{"algorithm": algorithm, "value": value}])

    assert response.status_code == 400
    assert error_paths(response) == ["$.hashes[0].value"]
    assert counts() == (0, 0, 0, 0)


def test_hash_length_message_names_the_algorithm(api: Api) -> None:
    response = api.submit(urls=[], hashes=[{"algorithm": "sha1", "value": "a" * 32}])

    assert response.json()["errors"][0]["message"] == "sha1 values are 40 hexadecimal digits"


def test_bad_hash_in_a_later_position_is_named(api: Api) -> None:
    response = api.submit(
        urls=[],
        hashes=[{"algorithm": "md5", "value": hash_value("md5")}, {"algorithm": "phash", "value": "zz" * 8}],
    )

    assert error_paths(response) == ["$.hashes[1].value"]


@pytest.mark.parametrize("algorithm", sorted(HEX_LENGTH))
def test_upper_case_hex_is_stored_lower_case(api: Api, algorithm: str) -> None:
    value = "ABCDEF0123456789" * (HEX_LENGTH[algorithm] // 16) + "ABCDEF01"[: HEX_LENGTH[algorithm] % 16]

    response = api.submit(urls=[], hashes=[{"algorithm": algorithm, "value": value}])

    assert response.status_code == 201
    assert response.json()["hashes"][0]["value"] == value.lower()
    assert SubmittedHash.objects.get().value == value.lower()


def test_at_most_100_urls(api: Api) -> None:
    urls = [f"https://example.com/item/{i}" for i in range(101)]

    refused = api.submit(urls=urls)
    accepted = api.submit(urls=urls[:100])

    assert refused.status_code == 400
    assert error_paths(refused) == ["$.urls"]
    assert accepted.status_code == 201
    assert len(accepted.json()["urls"]) == 100


def test_at_most_100_hashes(api: Api) -> None:
    hashes = [{"algorithm": "md5", "value": hash_value("md5", i)} for i in range(101)]

    response = api.submit(urls=[], hashes=hashes)

    assert response.status_code == 400
    assert error_paths(response) == ["$.hashes"]
    assert counts() == (0, 0, 0, 0)


def test_a_report_needs_a_url_or_a_hash(api: Api) -> None:
    response = api.submit(urls=[], hashes=[])

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "$", "message": "a report needs at least one URL or hash"}]
    assert counts() == (0, 0, 0, 0)


def test_unknown_field_is_400(api: Api) -> None:
    response = api.submit(colour="red")

    assert response.status_code == 400
    assert error_paths(response) == ["$.colour"]


def test_unknown_field_inside_a_hash_is_400(api: Api) -> None:
    response = api.submit(urls=[], hashes=[{"algorithm": "md5", "value": hash_value("md5"), "salt": "x"}])

    assert error_paths(response) == ["$.hashes[0].salt"]


@pytest.mark.parametrize("body", ["{not json", "", '{"urls": ["https://example.com/"], "category": "csam"', "\xff"])
def test_malformed_json_is_400(api: Api, body: str) -> None:
    response = api.post("/api/v1/reports", body)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert counts() == (0, 0, 0, 0)


def test_absurdly_deep_json_is_400(api: Api) -> None:
    response = api.post("/api/v1/reports", "[" * 100_000)

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"urls": "https://example.com/"}, "$.urls"),
        ({"urls": [42]}, "$.urls[0]"),
        ({"category": 5}, "$.category"),
        ({"category": "spam"}, "$.category"),
        ({"ai_suspected": "maybe"}, "$.ai_suspected"),
        ({"hashes": {"md5": "a"}}, "$.hashes"),
        ({"hashes": [{"algorithm": "crc32", "value": "a" * 16}]}, "$.hashes[0].algorithm"),
        ({"hashes": [{"value": "a" * 32}]}, "$.hashes[0].algorithm"),
        ({"external_id": 7}, "$.external_id"),
        ({"external_id": ""}, "$.external_id"),
        ({"note": ["a"]}, "$.note"),
        ({"note": "x" * 2001}, "$.note"),
        ({"found_at": "yesterday"}, "$.found_at"),
        ({"found_at": "2025-03-01T12:30:00"}, "$.found_at"),  # no time zone
    ],
)
def test_wrong_types_and_values_are_400_at_their_path(api: Api, fields: dict[str, Any], path: str) -> None:
    response = api.submit(**fields)

    assert response.status_code == 400
    assert path in error_paths(response)
    assert counts() == (0, 0, 0, 0)


def test_missing_category_is_400(api: Api) -> None:
    response = api.post("/api/v1/reports", {"urls": ["https://example.com/"]})

    assert error_paths(response) == ["$.category"]


@pytest.mark.parametrize("body", [[], "a string", 42, None])
def test_a_body_that_is_not_an_object_is_400(api: Api, body: Any) -> None:
    response = api.post("/api/v1/reports", json.dumps(body))

    assert response.status_code == 400
    assert error_paths(response) == ["$"]


@pytest.mark.parametrize(("field", "value"), [("note", "before\x00after"), ("external_id", "id\x00")])
def test_null_characters_are_refused(api: Api, field: str, value: str) -> None:
    # PostgreSQL cannot store them; without this check the insert failed with a 500.
    response = api.submit(**{field: value})

    assert response.status_code == 400
    assert error_paths(response) == [f"$.{field}"]


@pytest.mark.parametrize("found_at", ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+10:00"])
def test_found_at_out_of_range_in_utc_is_400(api: Api, found_at: str) -> None:
    # Valid ISO 8601, but its UTC time is outside years 1-9999: it used to reach the database and fail.
    response = api.submit(found_at=found_at)

    assert response.status_code == 400
    assert error_paths(response) == ["$.found_at"]


# --- known URLs -----------------------------------------------------------------------------


def test_known_is_true_for_a_url_the_public_form_reported(api: Api) -> None:
    make_public_report(urls=["https://example.com/seen?utm_campaign=x"])

    response = api.submit(urls=["https://EXAMPLE.com/seen", "https://example.com/new"])

    assert [(u["canonical_url"], u["known"]) for u in response.json()["urls"]] == [
        ("https://example.com/seen", True),
        ("https://example.com/new", False),
    ]
    assert Url.objects.get(canonical_url="https://example.com/seen").sightings == 2


def test_known_is_true_for_a_url_another_partner_reported(api: Api, other: Api) -> None:
    other.submit(urls=["https://example.org/shared"])

    response = api.submit(urls=["https://example.org/shared"])

    assert response.json()["urls"][0]["known"] is True
    assert Url.objects.count() == 1


def test_known_stays_as_it_was_when_reported(api: Api) -> None:
    first = api.submit(urls=["https://example.org/first"])
    api.submit(urls=["https://example.org/first"])

    detail = api.get(f"/api/v1/reports/{first.json()['id']}").json()

    assert detail["urls"][0]["known"] is False


# --- idempotency ----------------------------------------------------------------------------


def test_replaying_an_external_id_returns_the_first_report_and_stores_nothing(api: Api) -> None:
    body = report(
        external_id="ticket-77", urls=["https://example.com/x"], hashes=[{"algorithm": "md5", "value": "a" * 32}]
    )
    first = api.post("/api/v1/reports", body)
    before = counts()
    sightings = Url.objects.get().sightings

    replay = api.post("/api/v1/reports", body)
    changed = api.post("/api/v1/reports", {**body, "urls": ["https://example.com/y"], "category": "other"})

    assert first.status_code == 201
    assert replay.status_code == 200
    assert changed.status_code == 200
    assert replay.json() == first.json()
    assert changed.json()["id"] == first.json()["id"]
    assert changed.json()["urls"][0]["canonical_url"] == "https://example.com/x"
    assert counts() == before
    assert Url.objects.get().sightings == sightings
    assert Report.objects.get().category == "csam"


def test_idempotency_key_replay_returns_the_first_report(api: Api) -> None:
    first = api.post("/api/v1/reports", report(), HTTP_IDEMPOTENCY_KEY="retry-123")
    before = counts()

    replay = api.post("/api/v1/reports", report(), HTTP_IDEMPOTENCY_KEY="retry-123")
    fresh = api.post("/api/v1/reports", report(), HTTP_IDEMPOTENCY_KEY="retry-124")

    assert (first.status_code, replay.status_code, fresh.status_code) == (201, 200, 201)
    assert replay.json()["id"] == first.json()["id"]
    assert fresh.json()["id"] != first.json()["id"]
    assert counts()[0] == before[0] + 1


def test_without_external_id_or_key_each_submission_is_new(api: Api) -> None:
    first = api.submit()
    second = api.submit()

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["urls"][0]["known"] is True


@pytest.mark.parametrize("key", ["", "k" * 201, "bad\x00key"])
def test_a_bad_idempotency_key_is_400(api: Api, key: str) -> None:
    response = api.post("/api/v1/reports", report(), HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert counts()[0] == 0


def test_the_same_external_id_from_another_partner_is_a_new_report(api: Api, other: Api) -> None:
    mine = api.submit(external_id="shared-id")

    theirs = other.submit(external_id="shared-id")

    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]
    assert Report.objects.filter(external_id="shared-id").count() == 2


# --- matches --------------------------------------------------------------------------------


def make_content(seed: int, **fields: Any) -> Content:
    values = {
        "sha256": hash_value("sha256", seed),
        "md5": hash_value("md5", seed),
        "sha1": hash_value("sha1", seed),
    }
    values.update(fields)
    return Content.objects.create(**values)


def test_a_hash_known_to_a_list_and_as_content_shows_both_matches(api: Api) -> None:
    value = hash_value("md5", 0xBEEF)
    content = make_content(1, md5=value)
    bank = HashList.objects.create(name="Bank Example")
    KnownHash.objects.create(hash_list=bank, algorithm="md5", value=value, category="csam")

    response = api.submit(urls=[], hashes=[{"algorithm": "md5", "value": value.upper()}])

    (entry,) = response.json()["hashes"]
    assert sorted(entry["matches"], key=lambda m: m["hash_list"] or "") == [
        {"kind": "md5", "distance": 0, "content": content.sha256, "hash_list": None},
        {"kind": "md5", "distance": 0, "content": None, "hash_list": "Bank Example"},
    ]
    read_back = api.get(f"/api/v1/reports/{response.json()['id']}").json()
    assert read_back["hashes"] == response.json()["hashes"]


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "pdq", "phash"])
def test_every_algorithm_matches_content(api: Api, algorithm: str) -> None:
    value = hash_value(algorithm, 0xC0FFEE)
    content = make_content(2, **{algorithm: value})

    response = api.submit(urls=[], hashes=[{"algorithm": algorithm, "value": value}])

    assert response.json()["hashes"][0]["matches"] == [
        {"kind": algorithm, "distance": 0, "content": content.sha256, "hash_list": None}
    ]


def test_inactive_lists_and_quarantined_entries_do_not_match(api: Api) -> None:
    value = hash_value("sha1", 0xFACE)
    retired = HashList.objects.create(name="Retired Example", active=False)
    KnownHash.objects.create(hash_list=retired, algorithm="sha1", value=value)
    noisy = HashList.objects.create(name="Noisy Example")
    KnownHash.objects.create(hash_list=noisy, algorithm="sha1", value=value, quarantined=True)

    response = api.submit(urls=[], hashes=[{"algorithm": "sha1", "value": value}])

    assert response.json()["hashes"][0]["matches"] == []


def test_the_same_value_under_another_algorithm_does_not_match(api: Api) -> None:
    value = hash_value("sha256", 0xABC)
    make_content(3, sha256=value)

    response = api.submit(urls=[], hashes=[{"algorithm": "pdq", "value": value}])

    assert response.json()["hashes"][0]["matches"] == []


# --- batch ----------------------------------------------------------------------------------


def batch(api: Api, reports: list[Any]):
    return api.post("/api/v1/reports/batch", {"reports": reports})


def test_batch_answers_each_item_in_order_and_one_bad_item_does_not_sink_the_others(api: Api) -> None:
    response = batch(
        api,
        [
            report(external_id="b-1", urls=["https://example.com/b1"]),
            report(external_id="b-2", urls=["https://example.com/b2", "http://192.168.0.10/"]),
            report(external_id="b-3", urls=[], hashes=[{"algorithm": "phash", "value": "0123456789ABCDEF"}]),
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["replayed"], body["invalid"]) == (2, 0, 1)
    assert [(r["index"], r["result"]) for r in body["results"]] == [(0, "created"), (1, "invalid"), (2, "created")]
    assert body["results"][1]["report"] is None
    assert [e["path"] for e in body["results"][1]["errors"]] == ["$.reports[1].urls[1]"]
    assert body["results"][0]["errors"] == []
    assert body["results"][0]["report"]["urls"][0]["canonical_url"] == "https://example.com/b1"
    assert body["results"][2]["report"]["hashes"][0]["value"] == "0123456789abcdef"
    stored = {r.external_id: r.pk for r in Report.objects.all()}
    assert stored == {"b-1": body["results"][0]["report"]["id"], "b-3": body["results"][2]["report"]["id"]}
    assert not Url.objects.filter(host="192.168.0.10").exists()


def test_batch_errors_carry_the_item_path(api: Api) -> None:
    response = batch(
        api,
        [
            report(),
            report(hashes=[{"algorithm": "md5", "value": "xyz"}], category="nope"),
            "not a report",
            report(urls=[], hashes=[]),
        ],
    )

    results = response.json()["results"]
    assert sorted(e["path"] for e in results[1]["errors"]) == ["$.reports[1].category", "$.reports[1].hashes[0].value"]
    assert [e["path"] for e in results[2]["errors"]] == ["$.reports[2]"]
    assert [e["path"] for e in results[3]["errors"]] == ["$.reports[3]"]
    assert response.json()["invalid"] == 3


def test_batch_duplicate_external_id_is_replayed_within_the_batch(api: Api) -> None:
    response = batch(
        api,
        [
            report(external_id="dup", urls=["https://example.com/first"]),
            report(external_id="other", urls=["https://example.com/other"]),
            report(external_id="dup", urls=["https://example.com/second"]),
        ],
    )

    body = response.json()
    assert [r["result"] for r in body["results"]] == ["created", "created", "replayed"]
    assert body["results"][2]["report"]["id"] == body["results"][0]["report"]["id"]
    assert body["results"][2]["report"]["urls"][0]["canonical_url"] == "https://example.com/first"
    assert (body["created"], body["replayed"]) == (2, 1)
    assert Report.objects.count() == 2
    assert not Url.objects.filter(canonical_url="https://example.com/second").exists()


def test_batch_replays_external_ids_of_earlier_requests(api: Api) -> None:
    earlier = api.submit(external_id="old")

    response = batch(api, [report(external_id="old"), report(external_id="new")])

    results = response.json()["results"]
    assert [r["result"] for r in results] == ["replayed", "created"]
    assert results[0]["report"]["id"] == earlier.json()["id"]


def test_batch_marks_a_url_seen_earlier_in_the_same_batch_as_known(api: Api) -> None:
    response = batch(api, [report(urls=["https://example.com/twice"]), report(urls=["https://example.com/twice"])])

    known = [r["report"]["urls"][0]["known"] for r in response.json()["results"]]
    assert known == [False, True]
    assert Url.objects.get().sightings == 2


def forced_splits(inserts: list[tuple[type[Model], int]]) -> int:
    """How many more INSERT statements than one per model the database backend forces."""
    extra = 0
    for model, rows in inserts:
        fields = [field for field in model._meta.concrete_fields if not field.primary_key]
        extra += math.ceil(rows / connection.ops.bulk_batch_size(fields, [None] * rows)) - 1
    return extra


def test_batch_of_1000_reports_is_stored_in_a_bounded_number_of_queries(
    api: Api, django_assert_max_num_queries
) -> None:
    reports = [
        report(
            external_id=f"bulk-{i}",
            urls=[f"https://example.com/bulk/{i}", f"https://example.org/bulk/{i}"],
            hashes=[
                {"algorithm": "md5", "value": hash_value("md5", i)},
                {"algorithm": "sha1", "value": hash_value("sha1", i)},
            ],
        )
        for i in range(1000)
    ]
    # 30 on PostgreSQL, which takes each bulk insert in one statement; SQLite needs more because
    # Django splits inserts to stay under its 999 parameters a statement.
    limit = 30 + forced_splits([(Report, 1000), (Url, 2000), (ReportedUrl, 2000), (SubmittedHash, 2000)])

    with django_assert_max_num_queries(limit):
        response = batch(api, reports)

    assert response.status_code == 200
    assert response.json()["created"] == 1000
    assert counts() == (1000, 2000, 2000, 2000)
    assert response.json()["results"][999]["report"]["urls"][1]["canonical_url"] == "https://example.org/bulk/999"


def test_batch_of_more_than_1000_is_400(api: Api) -> None:
    response = batch(api, [report(urls=[f"https://example.com/{i}"]) for i in range(1001)])

    assert response.status_code == 400
    assert "$.reports" in response.json()["detail"]
    assert counts() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "body", ['{"reports": []}', '{"reports": {}}', "{}", "[]", '"x"', "{broken", "\xff", "[" * 100_000]
)
def test_batch_needs_a_list_of_reports(api: Api, body: str) -> None:
    response = api.post("/api/v1/reports/batch", body)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


# --- read back ------------------------------------------------------------------------------


def test_read_back_own_report(api: Api) -> None:
    created = api.submit(
        external_id="rb-1",
        urls=["https://example.com/rb"],
        hashes=[{"algorithm": "md5", "value": hash_value("md5")}],
        ai_suspected=False,
    ).json()

    response = api.get(f"/api/v1/reports/{created['id']}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "external_id",
        "status",
        "category",
        "ai_suspected",
        "created_at",
        "urls",
        "hashes",
        "outcome",
    }
    assert (body["id"], body["external_id"], body["status"], body["category"]) == (
        created["id"],
        "rb-1",
        "received",
        "csam",
    )
    assert body["ai_suspected"] is False
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert body["urls"] == [
        {
            "url": "https://example.com/rb",
            "canonical_url": "https://example.com/rb",
            "known": False,
            "fetch_status": "pending",
            "contents": [],
            "case_status": None,
        }
    ]
    assert body["hashes"] == [{"algorithm": "md5", "value": hash_value("md5"), "matches": []}]
    assert body["outcome"] is None


def test_read_back_another_partners_report_is_404(api: Api, other: Api) -> None:
    theirs = other.submit().json()["id"]

    response = api.get(f"/api/v1/reports/{theirs}")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such report."}


@pytest.mark.parametrize("report_id", ["999999", "99999999999999999999999", "-1", "0"])
def test_read_back_of_an_id_that_does_not_exist_is_404(api: Api, report_id: str) -> None:
    assert api.get(f"/api/v1/reports/{report_id}").status_code == 404


def test_read_back_a_public_report_is_404(api: Api) -> None:
    public = make_public_report()

    assert api.get(f"/api/v1/reports/{public.pk}").status_code == 404


def test_read_back_a_non_numeric_id_is_400(api: Api) -> None:
    response = api.get("/api/v1/reports/abc")

    assert response.status_code == 400
    assert error_paths(response) == ["$.report_id"]


def test_read_back_shows_contents_matches_provenance_and_case(api: Api) -> None:
    created = api.submit(
        urls=["https://example.com/img/1.jpg"], hashes=[{"algorithm": "pdq", "value": hash_value("pdq", 5)}]
    ).json()
    url = Url.objects.get()
    Url.objects.filter(pk=url.pk).update(fetch_status="fetched")
    earlier = make_content(10, pdq=hash_value("pdq", 6))
    bank = HashList.objects.create(name="Bank Example")
    entry = KnownHash.objects.create(hash_list=bank, algorithm="md5", value=hash_value("md5", 11))
    signals = [{"kind": "c2pa", "generator": "Example Image Model"}]
    content = make_content(
        11, pdq=hash_value("pdq", 7), phash=hash_value("phash", 7), provenance={"signals": signals}, ai_indicated=True
    )
    Capture.objects.create(url=url, requested_url=url.canonical_url, http_status=200, content=content)
    Capture.objects.create(url=url, requested_url=url.canonical_url, error="timeout")
    Match.objects.create(content=content, kind="pdq", distance=18, matched_content=earlier)
    Match.objects.create(content=content, kind="md5", distance=0, known_hash=entry)
    submitted = SubmittedHash.objects.get()
    Match.objects.create(submitted_hash=submitted, kind="pdq", distance=9, matched_content=earlier)
    Case.objects.create(url=url, status="in_progress")

    body = api.get(f"/api/v1/reports/{created['id']}").json()

    (url_entry,) = body["urls"]
    assert url_entry["fetch_status"] == "fetched"
    assert url_entry["case_status"] == "in_progress"
    assert url_entry["contents"] == [
        {
            "sha256": content.sha256,
            "md5": content.md5,
            "sha1": content.sha1,
            "pdq": content.pdq,
            "phash": content.phash,
            "matches": [
                {"kind": "md5", "distance": 0, "content": None, "hash_list": "Bank Example"},
                {"kind": "pdq", "distance": 18, "content": earlier.sha256, "hash_list": None},
            ],
            "provenance": {"ai_indicated": True, "signals": signals},
        }
    ]
    assert body["hashes"][0]["matches"] == [
        {"kind": "pdq", "distance": 9, "content": earlier.sha256, "hash_list": None}
    ]


def test_read_back_lists_each_content_once_and_empty_hashes_as_null(api: Api) -> None:
    created = api.submit(urls=["https://example.com/again"]).json()
    url = Url.objects.get()
    content = make_content(20)
    for _ in range(2):  # fetched twice, same bytes
        Capture.objects.create(url=url, requested_url=url.canonical_url, content=content)

    contents = api.get(f"/api/v1/reports/{created['id']}").json()["urls"][0]["contents"]

    assert len(contents) == 1
    assert (contents[0]["pdq"], contents[0]["phash"]) == (None, None)
    assert contents[0]["provenance"] == {"ai_indicated": False, "signals": []}


@pytest.mark.parametrize(("error", "shown"), [("dns", "dns"), ("", "other")])
def test_read_back_shows_a_final_fetch_error_by_kind(api: Api, error: str, shown: str) -> None:
    created = api.submit().json()
    Url.objects.update(fetch_status="error", fetch_error=error)

    assert api.get(f"/api/v1/reports/{created['id']}").json()["urls"][0]["fetch_status"] == shown


def test_read_back_shows_the_latest_case(api: Api) -> None:
    created = api.submit().json()
    url = Url.objects.get()
    Case.objects.create(url=url, status="closed", created_at=datetime(2024, 1, 1, tzinfo=UTC))
    Case.objects.create(url=url, status="open")

    assert api.get(f"/api/v1/reports/{created['id']}").json()["urls"][0]["case_status"] == "open"


def referral_for(url: Url, status: str) -> Referral:
    referral = Referral.objects.create(kind="hosting_ntd", recipient="abuse@example.org", status=status)
    referral.urls.add(url)
    return referral


def test_outcome_is_shown_to_a_hotline_partner(api: Api) -> None:
    created = api.submit(urls=["https://example.com/hosted"]).json()
    referral_for(Url.objects.get(), "removed")

    assert api.partner.kind == "hotline"
    assert api.get(f"/api/v1/reports/{created['id']}").json()["outcome"] == "removed"


def test_outcome_is_null_for_a_platform_partner(other: Api) -> None:
    created = other.submit(urls=["https://example.com/hosted"]).json()
    referral_for(Url.objects.get(), "removed")

    assert other.partner.kind == "platform"
    assert other.get(f"/api/v1/reports/{created['id']}").json()["outcome"] is None


def test_outcome_follows_the_setting(other: Api, settings) -> None:
    settings.HOTLINE_OUTCOME_VISIBLE_KINDS = ["platform"]
    created = other.submit(urls=["https://example.com/hosted"]).json()
    referral_for(Url.objects.get(), "not_removed")

    assert other.get(f"/api/v1/reports/{created['id']}").json()["outcome"] == "not_removed"


def test_outcome_ignores_draft_and_cancelled_referrals(api: Api) -> None:
    created = api.submit(urls=["https://example.com/hosted"]).json()
    url = Url.objects.get()
    referral_for(url, "draft")
    referral_for(url, "cancelled")

    assert api.get(f"/api/v1/reports/{created['id']}").json()["outcome"] is None

    referral_for(url, "sent")
    assert api.get(f"/api/v1/reports/{created['id']}").json()["outcome"] == "sent"


# --- list: since and cursor -----------------------------------------------------------------


def all_pages(api: Api, **params: Any) -> list[list[int]]:
    pages = []
    cursor = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        response = api.get("/api/v1/reports", query)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([r["id"] for r in body["results"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"


@pytest.mark.parametrize("total", [0, 1, 6, 7])
def test_cursor_pages_cover_every_report_exactly_once(api: Api, other: Api, total: int) -> None:
    ids = [api.submit(external_id=f"p-{i}").json()["id"] for i in range(total)]
    other.submit()

    pages = all_pages(api, limit=3)

    seen = [report_id for page in pages for report_id in page]
    assert seen == sorted(ids)
    assert all(len(page) <= 3 for page in pages)


def test_list_entries_have_the_documented_shape(api: Api) -> None:
    api.submit(external_id="shape")

    body = api.get("/api/v1/reports").json()

    assert set(body) == {"results", "next_cursor"}
    (entry,) = body["results"]
    assert set(entry) == {"id", "external_id", "status", "category", "created_at"}
    assert (entry["external_id"], entry["status"], entry["category"]) == ("shape", "received", "csam")
    assert body["next_cursor"] is None


def test_since_returns_reports_received_at_or_after(api: Api) -> None:
    ids = [api.submit().json()["id"] for _ in range(5)]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for offset, report_id in enumerate(ids):
        Report.objects.filter(pk=report_id).update(created_at=start + timedelta(days=offset))

    since = (start + timedelta(days=2)).isoformat()
    pages = all_pages(api, since=since, limit=2)

    assert [report_id for page in pages for report_id in page] == ids[2:]


def test_since_with_another_offset_means_the_same_instant(api: Api) -> None:
    ids = [api.submit().json()["id"] for _ in range(2)]
    Report.objects.filter(pk=ids[0]).update(created_at=datetime(2025, 1, 1, 11, 0, tzinfo=UTC))
    Report.objects.filter(pk=ids[1]).update(created_at=datetime(2025, 1, 1, 13, 0, tzinfo=UTC))

    body = api.get("/api/v1/reports", {"since": "2025-01-01T13:00:00+01:00"}).json()

    assert [r["id"] for r in body["results"]] == [ids[1]]


def test_since_without_offset_is_utc(api: Api) -> None:
    ids = [api.submit().json()["id"] for _ in range(2)]
    Report.objects.filter(pk=ids[0]).update(created_at=datetime(2025, 1, 1, 11, 0, tzinfo=UTC))
    Report.objects.filter(pk=ids[1]).update(created_at=datetime(2025, 1, 1, 13, 0, tzinfo=UTC))

    body = api.get("/api/v1/reports", {"since": "2025-01-01T12:00:00"}).json()

    assert [r["id"] for r in body["results"]] == [ids[1]]


@pytest.mark.parametrize("since", ["not-a-date", "9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+10:00"])
def test_bad_since_is_400(api: Api, since: str) -> None:
    response = api.get("/api/v1/reports", {"since": since})

    assert response.status_code == 400
    assert error_paths(response) == ["$.since"]


@pytest.mark.parametrize("cursor", ["!!!", "YWJj", "LTE", "%%", "\u00e9t\u00e9", "x" * 41])
def test_bad_cursor_is_400(api: Api, cursor: str) -> None:
    api.submit()

    response = api.get("/api/v1/reports", {"cursor": cursor})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("limit", ["0", "501", "ten"])
def test_bad_limit_is_400(api: Api, limit: str) -> None:
    response = api.get("/api/v1/reports", {"limit": limit})

    assert response.status_code == 400
    assert error_paths(response) == ["$.limit"]


def test_list_shows_only_own_reports(api: Api, other: Api) -> None:
    mine = api.submit().json()["id"]
    other.submit()
    make_public_report()

    assert [r["id"] for r in api.get("/api/v1/reports").json()["results"]] == [mine]
