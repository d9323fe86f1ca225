"""Tiny MaxMind-format databases written in the test, for the hosting lookup. Only loopback and
documentation ranges, with made-up providers on private-use AS numbers: nothing real."""

from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# 127.0.0.0/24 plays a host in the hotline's country, 127.0.1.0/24 one abroad.
HOME_NET, ABROAD_NET = "127.0.0.0/24", "127.0.1.0/24"
HOME_ASN, ABROAD_ASN = 64500, 64501
HOME_PROVIDER, ABROAD_PROVIDER = "Example Hosting BV", "Beispiel Hosting GmbH"


def write_country_db(path: Path, networks: dict[str, str]) -> Path:
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True)
    for network, country in networks.items():
        writer.insert_network(IPSet([network]), {"country": {"iso_code": country}})
    writer.to_db_file(str(path))
    return path


def write_asn_db(path: Path, networks: dict[str, tuple[int, str]]) -> Path:
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for network, (asn, organisation) in networks.items():
        writer.insert_network(
            IPSet([network]), {"autonomous_system_number": asn, "autonomous_system_organization": organisation}
        )
    writer.to_db_file(str(path))
    return path


def write_test_databases(directory: Path) -> tuple[Path, Path]:
    country = write_country_db(directory / "country.mmdb", {HOME_NET: "NL", ABROAD_NET: "DE"})
    asn = write_asn_db(
        directory / "asn.mmdb", {HOME_NET: (HOME_ASN, HOME_PROVIDER), ABROAD_NET: (ABROAD_ASN, ABROAD_PROVIDER)}
    )
    return country, asn
