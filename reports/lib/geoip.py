"""Hosting lookup from MaxMind-format databases (GeoLite2/GeoIP2 Country and ASN). Django-free.

Both databases are optional: a missing path, an unreadable file or an address the database does
not cover gives empty fields, never an error, so the analyst can fill them in by hand.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from typing import Any

import maxminddb

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostingInfo:
    ip: str = ""
    country: str = ""  # ISO 3166-1 alpha-2, upper case
    asn: int | None = None
    provider: str = ""


class GeoIpReader:
    """Readers for a country and an ASN database; either may be absent."""

    def __init__(self, country_db: str = "", asn_db: str = "") -> None:
        self.country = _open(country_db)
        self.asn = _open(asn_db)

    def lookup(self, ip: str | None) -> HostingInfo:
        if not ip:
            return HostingInfo()
        try:
            address = str(ipaddress.ip_address(ip))
        except ValueError:
            return HostingInfo()
        country_record = _get(self.country, address)
        asn_record = _get(self.asn, address)
        country = ""
        if country_record:
            # GeoIP2 Country: the country the block is registered in, else the registered country.
            place = country_record.get("country") or country_record.get("registered_country") or {}
            country = str(place.get("iso_code") or "").upper()[:2]
        asn = asn_record.get("autonomous_system_number") if asn_record else None
        provider = str(asn_record.get("autonomous_system_organization") or "") if asn_record else ""
        return HostingInfo(
            ip=address, country=country, asn=int(asn) if isinstance(asn, int) else None, provider=provider[:200]
        )

    def close(self) -> None:
        for reader in (self.country, self.asn):
            if reader is not None:
                reader.close()


def _open(path: str) -> maxminddb.Reader | None:
    if not path:
        return None
    try:
        return maxminddb.open_database(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError):
        logger.warning("GeoIP database %s could not be opened; hosting fields stay empty", path)
        return None


def _get(reader: maxminddb.Reader | None, address: str) -> dict[str, Any] | None:
    if reader is None:
        return None
    try:
        record = reader.get(address)
    except (ValueError, maxminddb.InvalidDatabaseError):
        return None
    return record if isinstance(record, dict) else None


_readers: dict[tuple[str, str], GeoIpReader] = {}
_lock = threading.Lock()


def reader_for(country_db: str, asn_db: str) -> GeoIpReader:
    """One reader per pair of paths per process: opening maps the file, lookups are then cheap."""
    key = (country_db, asn_db)
    with _lock:
        reader = _readers.get(key)
        if reader is None:
            reader = _readers[key] = GeoIpReader(country_db, asn_db)
        return reader


def reset_readers() -> None:
    """Forget the open readers (tests that write a new database; a database updated on disk)."""
    with _lock:
        for reader in _readers.values():
            reader.close()
        _readers.clear()
