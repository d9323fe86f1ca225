"""The hosting lookup: a MaxMind-format database written in the test (loopback ranges, made-up
providers on private-use AS numbers), a clean fall-back without one, and the analyst's override."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reports.lib.geoip import GeoIpReader, HostingInfo, reset_readers
from reports.lib.synthetic import SyntheticSite
from reports.models import AuditEvent, Url
from reports.services.hosting import url_hosting_fill
from reports.tests.analyst_helpers import make_case
from reports.tests.geoip_helpers import ABROAD_ASN, ABROAD_PROVIDER, HOME_ASN, HOME_PROVIDER, write_test_databases
from reports.tests.pipeline_helpers import cached_routes, fetch


@pytest.fixture(scope="module")
def site() -> Iterator[SyntheticSite]:
    with SyntheticSite(routes=cached_routes()) as running:
        yield running


@pytest.fixture
def databases(tmp_path: Path) -> tuple[Path, Path]:
    return write_test_databases(tmp_path)


@pytest.fixture(autouse=True)
def _fresh_readers() -> Iterator[None]:
    reset_readers()
    yield
    reset_readers()


def test_the_reader_finds_country_asn_and_provider(databases: tuple[Path, Path]) -> None:
    reader = GeoIpReader(*map(str, databases))

    assert reader.lookup("127.0.0.1") == HostingInfo(ip="127.0.0.1", country="NL", asn=HOME_ASN, provider=HOME_PROVIDER)
    assert reader.lookup("127.0.1.9") == HostingInfo(
        ip="127.0.1.9", country="DE", asn=ABROAD_ASN, provider=ABROAD_PROVIDER
    )
    # Not in the database, or not an address at all: empty fields, no error.
    assert reader.lookup("192.0.2.1") == HostingInfo(ip="192.0.2.1")
    assert reader.lookup("not an ip") == HostingInfo()
    assert reader.lookup(None) == HostingInfo()


def test_without_databases_or_with_broken_ones_every_field_stays_empty(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"this is not a MaxMind database")

    for paths in (("", ""), (str(tmp_path / "missing.mmdb"), ""), (str(garbage), str(garbage))):
        assert GeoIpReader(*paths).lookup("127.0.0.1") == HostingInfo(ip="127.0.0.1")


@pytest.mark.django_db
def test_a_fetch_fills_in_the_hosting_from_the_connected_ip(pipeline, site, databases) -> None:
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    pipeline.HOTLINE_GEOIP_COUNTRY_DB, pipeline.HOTLINE_GEOIP_ASN_DB = map(str, databases)

    url, _outcome = fetch(site.url("/img/1.jpg"))

    assert (url.hosting_ip, url.hosting_country, url.hosting_asn, url.hosting_provider) == (
        "127.0.0.1",
        "NL",
        HOME_ASN,
        HOME_PROVIDER,
    )


@pytest.mark.django_db
def test_without_databases_a_fetch_leaves_country_and_provider_for_the_analyst(pipeline, site) -> None:
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    pipeline.HOTLINE_GEOIP_COUNTRY_DB = pipeline.HOTLINE_GEOIP_ASN_DB = ""

    url, outcome = fetch(site.url("/img/2.jpg"))

    assert outcome.state == "fetched"
    assert url.hosting_ip == "127.0.0.1"
    assert (url.hosting_country, url.hosting_asn, url.hosting_provider) == ("", None, "")


@pytest.mark.django_db
def test_an_analysts_override_is_audited_and_survives_a_later_lookup(staff_client, settings, databases) -> None:
    settings.HOTLINE_GEOIP_COUNTRY_DB, settings.HOTLINE_GEOIP_ASN_DB = map(str, databases)
    analyst = staff_client("analyst")
    case = make_case(1)
    from reports.services.triage import case_claim

    case_claim(user=analyst.user, case=case)

    response = analyst.post(
        f"/staff/cases/{case.pk}/hosting",
        {"ip": "127.0.1.5", "country": "be", "asn": "64999", "provider": "Voorbeeld NV", "reason": "WHOIS says so"},
    )

    assert response.status_code == 302
    url = Url.objects.get(pk=case.url_id)
    assert (url.hosting_ip, url.hosting_country, url.hosting_asn, url.hosting_provider, url.hosting_overridden) == (
        "127.0.1.5",
        "BE",
        64999,
        "Voorbeeld NV",
        True,
    )
    event = AuditEvent.objects.get(action="url.hosting_overridden")
    assert event.details["reason"] == "WHOIS says so"
    assert event.details["after"]["hosting_country"] == "BE"

    # The database says DE for 127.0.1.5: the next fetch's lookup leaves the analyst's word standing.
    assert url_hosting_fill(url=url) == []
    assert url.hosting_country == "BE"


@pytest.mark.django_db
def test_a_32_bit_as_number_is_stored(staff_client) -> None:
    """AS numbers go up to 4,294,967,295, past a 4-byte PostgreSQL integer: stored, not a 500."""
    analyst = staff_client("analyst")
    case = make_case(1)
    from reports.services.triage import case_claim

    case_claim(user=analyst.user, case=case)
    response = analyst.post(
        f"/staff/cases/{case.pk}/hosting",
        {"ip": "127.0.1.5", "country": "nl", "asn": "4200000001", "provider": "Private ASN", "reason": "RDAP"},
    )

    assert response.status_code == 302
    assert Url.objects.get(pk=case.url_id).hosting_asn == 4_200_000_001


@pytest.mark.django_db
def test_a_bad_override_is_refused_and_changes_nothing(staff_client) -> None:
    analyst = staff_client("analyst")
    case = make_case(1)
    from reports.services.triage import case_claim

    case_claim(user=analyst.user, case=case)

    for data in (
        {"country": "Netherlands", "reason": "x"},
        {"ip": "999.1.1.1", "reason": "x"},
        {"asn": "-4", "reason": "x"},
        {"country": "NL"},  # no reason
    ):
        response = analyst.post(f"/staff/cases/{case.pk}/hosting", data)
        assert response.status_code == 400, data
    url = Url.objects.get(pk=case.url_id)
    assert not url.hosting_overridden
    assert not AuditEvent.objects.filter(action="url.hosting_overridden").exists()
