"""Hash lists over the partner API and the import_hashes / export_hashes commands."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from reports.models import HashList, KnownHash
from reports.models.choices import PartnerKind
from reports.services.partners import partner_create

pytestmark = pytest.mark.django_db

MD5_A = "0123456789abcdef0123456789abcdef"
MD5_B = "fedcba9876543210fedcba9876543210"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PDQ = "f" * 64
PHASH = "8f373714acfcf4d0"


class Api:
    def __init__(self, client: Client, name: str, kind: str = PartnerKind.HOTLINE) -> None:
        self.client = client
        self.partner, issued = partner_create(name=name, kind=kind, country="NL")
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}

    def post(self, path: str, body: Any, content_type: str = "application/json"):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(path, data, content_type=content_type, **self.headers)

    def get(self, path: str):
        return self.client.get(path, **self.headers)

    def create_list(self, name: str, **fields: Any) -> int:
        response = self.post("/api/v1/hashlists", {"name": name, **fields})
        assert response.status_code == 201, response.content
        return response.json()["id"]

    def import_json(self, list_id: int, entries: list[dict[str, str]]):
        return self.post(f"/api/v1/hashlists/{list_id}/entries", {"entries": entries})

    def import_csv(self, list_id: int, text: str | bytes):
        return self.post(f"/api/v1/hashlists/{list_id}/entries", text, content_type="text/csv")

    def export(self, list_id: int):
        return self.get(f"/api/v1/hashlists/{list_id}/entries")


def export_text(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8")


def entries(list_id: int) -> set[tuple[str, str, str]]:
    return set(KnownHash.objects.filter(hash_list_id=list_id).values_list("algorithm", "value", "category"))


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client, "Hotline Example")


@pytest.fixture
def other() -> Api:
    return Api(Client(), "Platform Example", PartnerKind.PLATFORM)


# --- create and list ------------------------------------------------------------------------


def test_create_list_is_201(api: Api) -> None:
    response = api.post("/api/v1/hashlists", {"name": "Known bad", "default_category": "ai_csam"})

    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "name": "Known bad", "default_category": "ai_csam", "active": True, "entries": 0}
    hash_list = HashList.objects.get(pk=body["id"])
    assert hash_list.source == api.partner


def test_create_list_defaults_to_csam(api: Api) -> None:
    list_id = api.create_list("Defaults")

    assert HashList.objects.get(pk=list_id).default_category == "csam"


def test_duplicate_list_name_is_409(api: Api, other: Api) -> None:
    api.create_list("Taken")

    mine = api.post("/api/v1/hashlists", {"name": "Taken"})
    theirs = other.post("/api/v1/hashlists", {"name": "Taken"})

    for response in (mine, theirs):
        assert response.status_code == 409
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["detail"]
    assert HashList.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "$.name"),
        ({"name": ""}, "$.name"),
        ({"name": "x" * 201}, "$.name"),
        ({"name": "ok", "default_category": "spam"}, "$.default_category"),
        ({"name": "ok", "owner": "me"}, "$.owner"),
        ({"name": "nul\x00name"}, "$.name"),
    ],
)
def test_create_list_validation_is_400(api: Api, body: dict[str, Any], path: str) -> None:
    response = api.post("/api/v1/hashlists", body)

    assert response.status_code == 400
    assert path in [error["path"] for error in response.json()["errors"]]
    assert HashList.objects.count() == 0


def test_listing_shows_own_lists_with_entry_counts(api: Api, other: Api) -> None:
    first = api.create_list("B list")
    api.create_list("A list")
    other.create_list("Their list")
    api.import_json(first, [{"algorithm": "md5", "value": MD5_A}, {"algorithm": "md5", "value": MD5_B}])

    response = api.get("/api/v1/hashlists")

    assert response.status_code == 200
    assert [(hl["name"], hl["entries"]) for hl in response.json()] == [("A list", 0), ("B list", 2)]


# --- import ---------------------------------------------------------------------------------


def test_json_import_counts_duplicates_and_describes_invalid_entries(api: Api) -> None:
    list_id = api.create_list("Mixed")

    response = api.import_json(
        list_id,
        [
            {"algorithm": "md5", "value": MD5_A.upper()},
            {"algorithm": "MD5", "value": f" {MD5_A} "},  # the same entry after normalising
            {"algorithm": "sha1", "value": SHA1, "category": "other"},
            {"algorithm": "md5", "value": "xyz"},
            {"algorithm": "crc32", "value": "deadbeef"},
            {"algorithm": "sha256", "value": SHA256, "category": "spam"},
            {"algorithm": "phash", "value": PHASH, "category": "AI_CSAM"},
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["added"], body["duplicates"], body["invalid"]) == (7, 3, 1, 3)
    assert [error["entry"] for error in body["errors"]] == [4, 5, 6]
    assert "md5" in body["errors"][0]["message"]
    assert "crc32" in body["errors"][1]["message"]
    assert "spam" in body["errors"][2]["message"]
    assert entries(list_id) == {("md5", MD5_A, "csam"), ("sha1", SHA1, "other"), ("phash", PHASH, "ai_csam")}


def test_reimporting_adds_nothing(api: Api) -> None:
    list_id = api.create_list("Twice")
    batch = [{"algorithm": "pdq", "value": PDQ}, {"algorithm": "sha256", "value": SHA256}]
    api.import_json(list_id, batch)

    response = api.import_json(list_id, batch)

    assert response.json() == {"received": 2, "added": 0, "duplicates": 2, "invalid": 0, "errors": []}
    assert KnownHash.objects.count() == 2


def test_the_same_hash_may_be_in_two_lists(api: Api) -> None:
    first, second = api.create_list("One"), api.create_list("Two")

    for list_id in (first, second):
        assert api.import_json(list_id, [{"algorithm": "md5", "value": MD5_A}]).json()["added"] == 1


def test_csv_import_with_header_and_category(api: Api) -> None:
    list_id = api.create_list("From CSV", default_category="sextortion")
    text = (
        "algorithm,value,category\r\n"
        f"md5,{MD5_A},other\r\n"
        f"sha1,{SHA1.upper()}\r\n"
        "\r\n"
        f"sha256,{SHA256},\r\n"
        f"md5,{MD5_A},csam\r\n"
        "md5,nothex\r\n"
        "just-one-column\r\n"
    )

    response = api.import_csv(list_id, text)

    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["added"], body["duplicates"], body["invalid"]) == (6, 3, 1, 2)
    assert [error["entry"] for error in body["errors"]] == [5, 6]
    assert entries(list_id) == {("md5", MD5_A, "other"), ("sha1", SHA1, "sextortion"), ("sha256", SHA256, "sextortion")}


def test_csv_import_without_header_and_with_a_byte_order_mark(api: Api) -> None:
    list_id = api.create_list("BOM")

    response = api.import_csv(list_id, f"\ufeffmd5,{MD5_B}\nphash,{PHASH}\n".encode())

    assert response.json()["added"] == 2


def test_csv_lines_that_are_not_utf8_are_invalid_entries(api: Api) -> None:
    list_id = api.create_list("Binary")

    response = api.import_csv(list_id, b"\xff\xfe,\x00\nmd5," + MD5_A.encode() + b'\n"unterminated\n')

    body = response.json()
    assert response.status_code == 200
    assert (body["added"], body["invalid"]) == (1, 2)


def test_json_import_of_a_bad_body_is_400(api: Api) -> None:
    list_id = api.create_list("Bad bodies")

    for body in ("{broken", "[" * 100_000, "[]", '{"entries": "md5"}', '{"entries": [{"algorithm": "md5"}]}'):
        response = api.post(f"/api/v1/hashlists/{list_id}/entries", body)
        assert response.status_code == 400, body
        assert response.json()["detail"]
    assert KnownHash.objects.count() == 0


def test_json_import_errors_name_the_path(api: Api) -> None:
    list_id = api.create_list("Paths")

    response = api.post(f"/api/v1/hashlists/{list_id}/entries", {"entries": [{"algorithm": "md5", "value": 5}]})

    assert [error["path"] for error in response.json()["errors"]] == ["$.entries[0].value"]


def test_import_of_another_media_type_is_415(api: Api) -> None:
    list_id = api.create_list("Media types")

    response = api.post(f"/api/v1/hashlists/{list_id}/entries", f"md5,{MD5_A}", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["detail"]


def test_more_entries_than_allowed_is_413_and_stores_none(api: Api, settings) -> None:
    settings.HOTLINE_API_MAX_HASHLIST_ENTRIES = 3
    list_id = api.create_list("Capped")

    response = api.import_csv(list_id, "".join(f"md5,{i:032x}\n" for i in range(4)))

    assert response.status_code == 413
    assert KnownHash.objects.count() == 0
    assert api.import_csv(list_id, "".join(f"md5,{i:032x}\n" for i in range(3))).json()["added"] == 3


def test_over_size_import_body_is_413(api: Api, settings) -> None:
    settings.HOTLINE_API_MAX_HASHLIST_BODY_BYTES = 200
    list_id = api.create_list("Small bodies")
    small = f"md5,{MD5_A}\n"
    large = "".join(f"md5,{i:032x}\n" for i in range(10))

    assert api.import_csv(list_id, small).status_code == 200
    response = api.import_csv(list_id, large)

    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert KnownHash.objects.count() == 1


def test_another_partners_list_is_404(api: Api, other: Api) -> None:
    theirs = other.create_list("Theirs")
    other.import_json(theirs, [{"algorithm": "md5", "value": MD5_A}])

    imported = api.import_json(theirs, [{"algorithm": "md5", "value": MD5_B}])
    exported = api.export(theirs)

    assert imported.status_code == 404
    assert exported.status_code == 404
    assert imported.json()["detail"] == exported.json()["detail"] == "No such hash list."
    assert entries(theirs) == {("md5", MD5_A, "csam")}


def test_a_list_without_a_partner_is_404_over_the_api(api: Api) -> None:
    hotline_own = HashList.objects.create(name="Hotline bank")

    assert api.export(hotline_own.pk).status_code == 404
    assert api.import_json(hotline_own.pk, []).status_code == 404


@pytest.mark.parametrize("list_id", ["999999", "99999999999999999999999"])
def test_a_list_that_does_not_exist_is_404(api: Api, list_id: str) -> None:
    assert api.get(f"/api/v1/hashlists/{list_id}/entries").status_code == 404


# --- export ---------------------------------------------------------------------------------


def test_export_is_csv_in_the_import_format(api: Api) -> None:
    list_id = api.create_list("Exported")
    api.import_json(
        list_id, [{"algorithm": "md5", "value": MD5_A}, {"algorithm": "pdq", "value": PDQ, "category": "ai_csam"}]
    )

    response = api.export(list_id)

    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="hashlist-{list_id}.csv"' in response["Content-Disposition"]
    assert export_text(response).splitlines() == ["algorithm,value,category", f"md5,{MD5_A},csam", f"pdq,{PDQ},ai_csam"]


def test_export_round_trips_into_import_with_nothing_added(api: Api) -> None:
    source = api.create_list("Source")
    api.import_json(
        source,
        [
            {"algorithm": "md5", "value": MD5_A},
            {"algorithm": "sha1", "value": SHA1, "category": "other"},
            {"algorithm": "phash", "value": PHASH, "category": "sextortion"},
        ],
    )
    exported = export_text(api.export(source))

    again = api.import_csv(source, exported)
    copy = api.create_list("Copy")
    copied = api.import_csv(copy, exported)

    assert again.json() == {"received": 3, "added": 0, "duplicates": 3, "invalid": 0, "errors": []}
    assert copied.json()["added"] == 3
    assert entries(copy) == entries(source)


def test_an_empty_list_exports_only_the_header(api: Api) -> None:
    list_id = api.create_list("Empty")

    assert export_text(api.export(list_id)) == "algorithm,value,category\n"


def test_imported_entries_match_submitted_hashes(api: Api) -> None:
    list_id = api.create_list("Matching list")
    api.import_csv(list_id, f"sha256,{SHA256}\n")

    response = api.post("/api/v1/reports", {"hashes": [{"algorithm": "sha256", "value": SHA256}], "category": "csam"})

    assert response.json()["hashes"][0]["matches"] == [
        {"kind": "sha256", "distance": 0, "content": None, "hash_list": "Matching list"}
    ]


# --- manage.py import_hashes / export_hashes ------------------------------------------------


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_and_export_commands_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "bank.csv"
    source.write_text(
        f"algorithm,value,category\nmd5,{MD5_A.upper()},other\nsha1,{SHA1}\npdq,{PDQ},ai_csam\nmd5,{MD5_A}\nmd5,zz\n",
        encoding="utf-8",
    )

    out, err = run("import_hashes", "Bank Example", str(source))

    assert "Created hash list 'Bank Example'" in out
    assert "5 read, 3 added, 1 already present, 1 invalid" in out
    assert "line 5: md5 values are 32 hexadecimal digits" in err
    bank = HashList.objects.get(name="Bank Example")
    assert bank.source is None
    assert entries(bank.pk) == {("md5", MD5_A, "other"), ("sha1", SHA1, "csam"), ("pdq", PDQ, "ai_csam")}

    exported = tmp_path / "export.csv"
    run("export_hashes", "Bank Example", str(exported))
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "algorithm,value,category"
    assert sorted(lines[1:]) == sorted(f"{a},{v},{c}" for a, v, c in entries(bank.pk))

    again, _ = run("import_hashes", "Bank Example", str(exported))
    assert "3 read, 0 added, 3 already present, 0 invalid" in again
    copy_out, _ = run("import_hashes", "Bank Copy", str(exported))
    assert "3 added" in copy_out
    assert entries(HashList.objects.get(name="Bank Copy").pk) == entries(bank.pk)


def test_import_command_uses_the_category_for_a_new_list(tmp_path: Path) -> None:
    source = tmp_path / "ai.csv"
    source.write_text(f"md5,{MD5_B}\n", encoding="utf-8")

    run("import_hashes", "AI bank", str(source), "--category", "ai_csam")

    assert HashList.objects.get(name="AI bank").default_category == "ai_csam"
    assert entries(HashList.objects.get(name="AI bank").pk) == {("md5", MD5_B, "ai_csam")}


def test_import_command_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file"):
        run("import_hashes", "Missing", str(tmp_path / "nope.csv"))


def test_export_command_refuses_an_unknown_list() -> None:
    with pytest.raises(CommandError, match="No hash list"):
        run("export_hashes", "Nobody's list")


def test_export_command_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    bank = HashList.objects.create(name="Stdout bank")
    KnownHash.objects.create(hash_list=bank, algorithm="md5", value=MD5_A, category="csam")

    call_command("export_hashes", "Stdout bank")

    assert capsys.readouterr().out == f"algorithm,value,category\nmd5,{MD5_A},csam\n"
