"""SSRF: reported URLs that try to make Hotline's fetcher connect to private addresses.

Two tripwires count every attempt:
- canaries (reports/tests/canary.py) listening on 127.0.0.2, on another port of 127.0.0.1 (the allowed
  site's own host) and on ::1 count connections that reach them;
- a guard around the fetcher's sockets (ssrfguard's `connect`, the only way safe_fetch opens one) counts
  every connect to anything but the one allowed test site, and refuses the non-loopback ones *before*
  they leave the machine, so a payload naming 10.0.0.1 or 169.254.169.254 is counted, never sent.

Names never reach DNS: safe_fetch's resolver is replaced by a table (evil.*, localhost, nip.io-style
names → loopback, metadata names → 169.254.169.254, …). Every payload goes in directly (a Url row as if
it had got past intake), as a redirect target of the allowed site (one hop, 307, scheme-relative and
three-hop chains), and as an image link on a page. Each must end without a capture of content and
without a single connection.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import types
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import ssrfguard._connect  # noqa: TID251 - the tripwire wraps the fetcher's only way to open a socket

from reports.lib import safe_fetch
from reports.lib.synthetic import Response, SyntheticSite, gallery_html
from reports.lib.urls import InvalidUrl, canonicalize_url
from reports.models import Capture, Url
from reports.models.choices import FetchStatus
from reports.services.fetching import url_fetch
from reports.services.intake import url_hash
from reports.tests.canary import Canary
from reports.tests.hardening import figures

pytestmark = [pytest.mark.hardening, pytest.mark.django_db]

# The fake resolver's table. Nothing here is ever looked up for real.
NAMES: dict[str, list[str]] = {
    "evil.hotline-ssrf.net": ["127.0.0.2"],
    "localhost": ["127.0.0.1"],
    "localhost.localdomain": ["127.0.0.1"],
    "127.0.0.2.nip.io": ["127.0.0.2"],
    "7f000002.nip.io": ["127.0.0.2"],
    "customer1.app.localtest.me": ["127.0.0.2"],
    "metadata.hotline-ssrf.net": ["169.254.169.254"],
    "internal.hotline-ssrf.net": ["10.1.2.3"],
    "v6.hotline-ssrf.net": ["::1"],
    "mixed.hotline-ssrf.net": ["192.0.2.1", "127.0.0.2"],  # one public answer, one private: refused
}


def _bindable(host: str, family: socket.AddressFamily = socket.AF_INET) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


class Tripwire:
    """Counts every connect the fetcher attempts, except to the allowed site."""

    def __init__(self) -> None:
        self.allowed: set[tuple[str, int]] = set()
        self.attempts: list[tuple[str, int]] = []

    def check(self, address: tuple) -> None:
        host, port = str(address[0]).split("%")[0], int(address[1])
        if (host, port) in self.allowed:
            return
        self.attempts.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:
            raise ConnectionRefusedError(f"hardening tripwire: refused a connection to {host}:{port}")


@pytest.fixture(scope="module")
def canaries() -> Iterator[dict[str, Canary]]:
    if not _bindable("127.0.0.2"):
        pytest.skip("127.0.0.2 is not bindable here (loopback is not 127.0.0.0/8 on this system)")
    listeners = {"v4": Canary("127.0.0.2"), "same_host": Canary("127.0.0.1")}
    if _bindable("::1", socket.AF_INET6):
        listeners["v6"] = Canary("::1", socket.AF_INET6)
    yield listeners
    for listener in listeners.values():
        listener.close()


def payloads(canaries: dict[str, Canary]) -> dict[str, str]:
    """At least 30 ways to name a private address. `p` is the 127.0.0.2 canary's port."""
    p = canaries["v4"].port
    v6 = canaries["v6"].port if "v6" in canaries else p
    return {
        "dotted": f"http://127.0.0.2:{p}/x.jpg",
        "decimal": f"http://2130706434:{p}/x.jpg",
        "hex": f"http://0x7f000002:{p}/x.jpg",
        "octal": f"http://0177.0.0.2:{p}/x.jpg",
        "octal-integer": f"http://017700000002:{p}/x.jpg",
        "short": f"http://127.2:{p}/x.jpg",
        "mixed-hex": f"http://0x7f.0.0.2:{p}/x.jpg",
        "trailing-dot": f"http://127.0.0.2.:{p}/x.jpg",
        "userinfo": f"http://example.com@127.0.0.2:{p}/x.jpg",
        "https": f"https://127.0.0.2:{p}/x.jpg",
        "v4-mapped-v6": f"http://[::ffff:127.0.0.2]:{p}/x.jpg",
        "v4-mapped-v6-hex": f"http://[::ffff:7f00:2]:{p}/x.jpg",
        "v6-loopback": f"http://[::1]:{v6}/x.jpg",
        "v6-loopback-long": f"http://[0:0:0:0:0:0:0:1]:{v6}/x.jpg",
        "v6-unspecified": f"http://[::]:{p}/x.jpg",
        "zero": f"http://0.0.0.0:{p}/x.jpg",
        "zero-short": f"http://0:{p}/x.jpg",
        "same-host-other-port": canaries["same_host"].url("/x.jpg"),
        "rfc1918-10": "http://10.0.0.1/x.jpg",
        "rfc1918-172": "http://172.16.0.1/x.jpg",
        "rfc1918-192": "http://192.168.1.1/x.jpg",
        "cgnat": "http://100.64.0.1/x.jpg",
        "link-local-metadata": "http://169.254.169.254/latest/meta-data/",
        "benchmark": "http://198.18.0.1/x.jpg",
        "multicast": "http://224.0.0.1/x.jpg",
        "broadcast": "http://255.255.255.255/x.jpg",
        "v6-ula": "http://[fc00::1]/x.jpg",
        "v6-link-local": "http://[fe80::1]/x.jpg",
        "v6-mapped-10": "http://[::ffff:a00:1]/x.jpg",
        "nat64-loopback": f"http://[64:ff9b::7f00:2]:{p}/x.jpg",
        "6to4-loopback": f"http://[2002:7f00:2::]:{p}/x.jpg",
        "name-to-loopback": f"http://evil.hotline-ssrf.net:{p}/x.jpg",
        "localhost": f"http://localhost:{p}/x.jpg",
        "localhost-upper-dot": f"http://LOCALHOST.:{p}/x.jpg",
        "localhost-localdomain": f"http://localhost.localdomain:{p}/x.jpg",
        "nip-io": f"http://127.0.0.2.nip.io:{p}/x.jpg",
        "nip-io-hex": f"http://7f000002.nip.io:{p}/x.jpg",
        "localtest-me": f"http://customer1.app.localtest.me:{p}/x.jpg",
        "name-to-metadata": "http://metadata.hotline-ssrf.net/latest/meta-data/",
        "name-to-rfc1918": "http://internal.hotline-ssrf.net/x.jpg",
        "name-to-v6-loopback": f"http://v6.hotline-ssrf.net:{v6}/x.jpg",
        "name-with-one-private-answer": f"http://mixed.hotline-ssrf.net:{p}/x.jpg",
        "file": "file:///etc/passwd",
        "gopher": f"gopher://127.0.0.2:{p}/_HELO",
        "ftp": f"ftp://127.0.0.2:{p}/x.jpg",
        "dict": f"dict://127.0.0.2:{p}/info",
        "ldap": f"ldap://127.0.0.2:{p}/",
        "ws": f"ws://127.0.0.2:{p}/",
        "data": "data:image/png;base64,iVBORw0KGgo=",
        "javascript": "javascript:alert(1)",
    }


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    wire = Tripwire()

    class GuardedSocket(socket.socket):
        def connect(self, address):  # type: ignore[no-untyped-def]
            wire.check(address)
            return super().connect(address)

    shim = types.SimpleNamespace(**{name: getattr(socket, name) for name in dir(socket) if not name.startswith("__")})
    shim.socket = GuardedSocket
    monkeypatch.setattr(ssrfguard._connect, "socket", shim)

    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):
        answers = NAMES.get(host.rstrip(".").lower())
        if answers is None:
            try:
                socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            except OSError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            answers = [host]
        results = []
        for answer in answers:
            results += real(answer, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        return results

    monkeypatch.setattr(safe_fetch, "_getaddrinfo", getaddrinfo)
    return wire


@pytest.fixture
def site(canaries: dict[str, Canary]) -> Iterator[SyntheticSite]:
    with SyntheticSite() as running:
        yield running


@pytest.fixture
def armed(pipeline, site: SyntheticSite, canaries: dict[str, Canary], tripwire: Tripwire):
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    pipeline.HOTLINE_FETCH_CONNECT_TIMEOUT = 2
    pipeline.HOTLINE_FETCH_TOTAL_TIMEOUT = 10
    tripwire.allowed = {("127.0.0.1", site.port)}
    for listener in canaries.values():
        listener.connections = 0
    return pipeline


def connections(canaries: dict[str, Canary], tripwire: Tripwire, *, settle: bool = True) -> int:
    """Connections seen so far; `settle` first gives the canaries' accept loops time to see anything
    the kernel already completed (Canary.count(), once for all of them)."""
    if settle:
        time.sleep(0.06)
    return sum(listener.connections for listener in canaries.values()) + len(tripwire.attempts)


def raw_url_row(url: str) -> Url:
    """A Url row as if the payload had got past intake: the fetcher must hold the line by itself."""
    parts = urlsplit(url)
    return Url.objects.create(
        canonical_url=url, url_hash=url_hash(url), scheme=parts.scheme[:5], host=(parts.hostname or "")[:253]
    )


def assert_nothing_fetched(url: Url) -> None:
    url.refresh_from_db()
    assert url.fetch_status == FetchStatus.ERROR, (url.canonical_url, url.fetch_status, url.fetch_error)
    assert not Capture.objects.filter(url=url, content__isnull=False).exists()


def test_the_tripwire_counts_an_allowed_connection(armed, canaries: dict[str, Canary], tripwire: Tripwire) -> None:
    """The control: with the canary explicitly allowed, the fetcher reaches it, and both tripwires see it."""
    canary = canaries["v4"]
    armed.HOTLINE_FETCH_ALLOW_HOSTS = [canary.authority]
    url_fetch(url_id=raw_url_row(canary.url("/control.jpg")).pk)
    assert canary.count() == 1
    assert tripwire.attempts == [("127.0.0.2", canary.port)]


def test_payloads_named_directly(armed, canaries: dict[str, Canary], tripwire: Tripwire) -> None:
    tried = payloads(canaries)
    assert len(tried) >= 30
    refused_at_intake = 0
    leaked = []
    for name, payload in tried.items():
        try:
            canonicalize_url(payload, allow_hosts=armed.HOTLINE_FETCH_ALLOW_HOSTS, max_length=2048)
        except InvalidUrl:
            refused_at_intake += 1
        before = connections(canaries, tripwire, settle=False)
        url = raw_url_row(payload)
        url_fetch(url_id=url.pk, final_attempt=True)
        assert_nothing_fetched(url)
        if connections(canaries, tripwire) != before:
            leaked.append(name)
    figures.add("ssrf", payloads=len(tried), fetches=len(tried), refused_at_intake=refused_at_intake)
    figures.add("ssrf", canary_connections=connections(canaries, tripwire))
    assert not leaked, f"connections made for {leaked}: {tripwire.attempts}"


def test_payloads_behind_redirects(armed, site: SyntheticSite, canaries: dict[str, Canary], tripwire: Tripwire) -> None:
    tried = payloads(canaries)
    routes = site.handler.routes

    def redirect(location: str, status: int = 302):
        return lambda: Response(status=status, headers={"Location": location}, content_type="text/plain")

    paths = []
    for name, payload in tried.items():
        routes[f"/r/{name}"] = redirect(payload)
        routes[f"/r307/{name}"] = redirect(payload, 307)
        routes[f"/chain/{name}/1"] = redirect(f"/chain/{name}/2", 301)
        routes[f"/chain/{name}/2"] = redirect(site.url(f"/chain/{name}/3"), 308)
        routes[f"/chain/{name}/3"] = redirect(payload, 303)
        paths += [f"/r/{name}", f"/r307/{name}", f"/chain/{name}/1"]
        if payload.startswith("http://"):
            routes[f"/rel/{name}"] = redirect(payload.removeprefix("http:"))  # scheme-relative
            paths.append(f"/rel/{name}")
    leaked = []
    for path in paths:
        before = connections(canaries, tripwire, settle=False)
        url = raw_url_row(site.url(path))
        url_fetch(url_id=url.pk, final_attempt=True)
        assert_nothing_fetched(url)
        if connections(canaries, tripwire) != before:
            leaked.append(path)
    figures.add("ssrf", redirect_chains=len(paths), fetches=len(paths))
    figures.add("ssrf", canary_connections=connections(canaries, tripwire))
    assert not leaked, f"connections made for {leaked}: {tripwire.attempts}"


def test_payloads_as_image_links_on_a_page(
    armed, site: SyntheticSite, canaries: dict[str, Canary], tripwire: Tripwire
) -> None:
    armed.HOTLINE_FETCH_MAX_IMAGES_PER_PAGE = 100
    tried = list(payloads(canaries).values())
    site.handler.routes["/hostile.html"] = lambda: Response(
        body=gallery_html(["/img/1.jpg", *tried]), content_type="text/html"
    )
    url = raw_url_row(site.url("/hostile.html"))
    url_fetch(url_id=url.pk, final_attempt=True)

    children = Capture.objects.filter(url=url, parent__isnull=False)
    assert children.filter(content__isnull=False).count() == 1  # the one real image on the page
    figures.add("ssrf", image_links=len(tried), fetches=1)
    figures.add("ssrf", canary_connections=connections(canaries, tripwire))
    assert connections(canaries, tripwire) == 0, tripwire.attempts
