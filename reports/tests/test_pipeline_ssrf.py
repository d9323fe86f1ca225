"""Nothing is fetched from a private address that is not explicitly allowed.

A canary listener on 127.0.0.2 (and one on another port of 127.0.0.1, and on ::1 where available)
counts every connection it accepts: it must count none. Reported URLs name it directly in every
spelling, through a name that resolves to it, through redirects from the one allowed
`SyntheticSite` and through image links on a page. Every attempt must end in a capture with the
error `blocked_address`. Names never reach real DNS: the fetcher's resolver is replaced here.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from django.test import Client

from reports.lib import safe_fetch
from reports.lib.synthetic import Response, SyntheticSite, gallery_html
from reports.lib.urls import InvalidUrl, canonicalize_url
from reports.models import Capture, Case, Content, Report, Url
from reports.models.choices import CaptureError, FetchStatus
from reports.services.fetching import url_fetch
from reports.services.intake import url_hash
from reports.tests.canary import Canary
from reports.tests.factories import make_public_report, submit_report
from reports.tests.pipeline_helpers import cached_routes, case_of, contents_of, fetch

CANARY_NAME = "canary.hotline-ssrf.net"  # resolved by the fake resolver below only


def _bindable(host: str, family: socket.AddressFamily = socket.AF_INET) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    if not _bindable("127.0.0.2"):
        pytest.skip("127.0.0.2 is not bindable here (loopback is not 127.0.0.0/8 on this system)")
    listener = Canary("127.0.0.2")
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def loopback_canary() -> Iterator[Canary]:
    """On the allowed site's own address, another port: the allow list is host *and* port."""
    listener = Canary("127.0.0.1")
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def v6_canary() -> Iterator[Canary | None]:
    listener = Canary("::1", socket.AF_INET6) if _bindable("::1", socket.AF_INET6) else None
    yield listener
    if listener is not None:
        listener.close()


@pytest.fixture(scope="module")
def site(canary: Canary, loopback_canary: Canary, v6_canary: Canary | None) -> Iterator[SyntheticSite]:
    def redirect(location: str):
        return lambda: Response(status=302, headers={"Location": location}, content_type="text/plain")

    routes = {
        "/to/canary": redirect(canary.url()),
        "/to/canary-decimal": redirect(f"http://2130706434:{canary.port}/secret.jpg"),
        "/to/canary-name": redirect(f"http://{CANARY_NAME}:{canary.port}/secret.jpg"),
        "/to/canary-mapped": redirect(f"http://[::ffff:127.0.0.2]:{canary.port}/secret.jpg"),
        "/to/loopback-port": redirect(loopback_canary.url()),
        "/to/file": redirect("file:///etc/passwd"),
        "/hop/1": redirect("/hop/2"),
        "/hop/2": redirect(canary.url("/after-two-hops.jpg")),
        "/canary-gallery.html": lambda: Response(
            body=gallery_html(["/img/1.jpg", canary.url("/a.jpg"), f"http://{CANARY_NAME}:{canary.port}/b.jpg"]),
            content_type="text/html",
        ),
    }
    if v6_canary is not None:
        routes["/to/v6"] = redirect(v6_canary.url())
    with SyntheticSite(routes=cached_routes(routes)) as running:
        running.handler.routes["/to/localhost"] = redirect(f"http://localhost:{running.port}/img/1.jpg")
        yield running


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetcher's resolver knows two names; anything else fails as an unknown name would."""
    names = {CANARY_NAME: "127.0.0.2", "localhost": "127.0.0.1"}
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):
        address = names.get(host.rstrip(".").lower())
        if address is None:
            try:
                socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            except OSError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            address = host
        return real(address, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(safe_fetch, "_getaddrinfo", getaddrinfo)


@pytest.fixture
def allowed(pipeline, site: SyntheticSite, canary: Canary, loopback_canary: Canary, v6_canary: Canary | None):
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    for listener in (canary, loopback_canary, v6_canary):
        if listener is not None:
            listener.connections = 0
    return pipeline


def raw_url_row(url: str, host: str) -> Url:
    """A Url row as if it had got past intake (an older allow list, a name that resolved elsewhere
    then): the fetcher must hold the line by itself."""
    return Url.objects.create(canonical_url=url, url_hash=url_hash(url), scheme="http", host=host)


def assert_blocked(url: Url) -> Capture:
    url.refresh_from_db()
    assert (url.fetch_status, url.fetch_error) == (FetchStatus.ERROR, CaptureError.BLOCKED_ADDRESS)
    assert url.hosting_ip is None
    capture = Capture.objects.get(url=url, parent=None)
    assert capture.error == CaptureError.BLOCKED_ADDRESS
    assert capture.error_detail
    assert capture.content is None
    assert case_of(url).contents.count() == 0
    return capture


# --- The canary itself ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_canary_counts_a_fetch_that_is_allowed_to_reach_it(allowed, canary: Canary) -> None:
    """The control: with the canary explicitly allowed, the fetcher does connect, and it is counted."""
    allowed.HOTLINE_FETCH_ALLOW_HOSTS = [canary.authority]
    url, outcome = fetch(canary.url("/control.jpg"))

    assert outcome.state == "error"
    assert url.fetch_error != CaptureError.BLOCKED_ADDRESS
    assert canary.count() == 1


def test_intake_refuses_the_canary_address(settings, canary: Canary) -> None:
    settings.HOTLINE_FETCH_ALLOW_HOSTS = []
    for spelling in (canary.url(), f"http://2130706434:{canary.port}/", f"http://0x7f.0.0.2:{canary.port}/"):
        with pytest.raises(InvalidUrl):
            canonicalize_url(spelling, allow_hosts=[])


# --- Directly --------------------------------------------------------------------------------------

DIRECT = {
    "dotted": ("http://127.0.0.2:{port}/secret.jpg", "127.0.0.2"),
    "decimal": ("http://2130706434:{port}/secret.jpg", "2130706434"),
    "hex": ("http://0x7f000002:{port}/secret.jpg", "0x7f000002"),
    "octal": ("http://0177.0.0.2:{port}/secret.jpg", "0177.0.0.2"),
    "short": ("http://127.2:{port}/secret.jpg", "127.2"),
    "mapped-v6": ("http://[::ffff:127.0.0.2]:{port}/secret.jpg", "::ffff:127.0.0.2"),
    "name": (f"http://{CANARY_NAME}:{{port}}/secret.jpg", CANARY_NAME),
}


@pytest.mark.parametrize("spelling", list(DIRECT))
@pytest.mark.django_db
def test_a_url_naming_the_canary_directly_is_blocked(allowed, canary: Canary, spelling: str) -> None:
    template, host = DIRECT[spelling]
    url = raw_url_row(template.format(port=canary.port), host)

    outcome = url_fetch(url_id=url.pk, final_attempt=False)  # blocked is permanent: not retried

    assert outcome.state == "error"
    assert assert_blocked(url).ip is None
    assert canary.count() == 0


@pytest.mark.django_db
def test_another_port_of_the_allowed_host_is_blocked(allowed, loopback_canary: Canary) -> None:
    url = raw_url_row(loopback_canary.url(), "127.0.0.1")

    url_fetch(url_id=url.pk)

    assert_blocked(url)
    assert loopback_canary.count() == 0


# --- Through redirects from the allowed site ---------------------------------------------------------

REDIRECTS = {
    "/to/canary": "canary",
    "/to/canary-decimal": "canary",
    "/to/canary-name": "canary",
    "/to/canary-mapped": "canary",
    "/hop/1": "canary",
    "/to/loopback-port": "loopback_canary",
    "/to/localhost": "site",
    "/to/file": "site",
    "/to/v6": "v6_canary",
}


@pytest.mark.parametrize("path", list(REDIRECTS))
@pytest.mark.django_db
def test_a_redirect_from_the_allowed_site_to_a_private_address_is_blocked(
    allowed, request: pytest.FixtureRequest, site: SyntheticSite, path: str
) -> None:
    if path == "/to/v6" and request.getfixturevalue("v6_canary") is None:
        pytest.skip("::1 is not bindable here")
    target = REDIRECTS[path]
    listener = request.getfixturevalue(target) if target != "site" else None
    before = site.hits.get(path, 0)
    image_hits = site.hits.get("/img/1.jpg", 0)

    url, outcome = fetch(site.url(path))

    assert outcome.state == "error"
    capture = assert_blocked(url)
    assert capture.requested_url == site.url(path)
    assert capture.final_url != site.url(path)  # the refused hop is recorded as where it ended
    assert capture.http_status is None
    assert site.hits.get(path, 0) == before + 1  # the allowed site itself was fetched
    assert site.hits.get("/img/1.jpg", 0) == image_hits
    if listener is not None:
        assert listener.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_public_report_redirected_to_the_canary_ends_blocked_through_the_tasks(
    allowed, site: SyntheticSite, canary: Canary
) -> None:
    report = make_public_report(urls=[site.url("/to/canary"), site.url("/hop/1"), site.url("/to/canary-name")])

    for url in Url.objects.all():
        assert_blocked(url)
    assert Case.objects.count() == 3
    assert Content.objects.count() == 0
    assert canary.count() == 0
    report.refresh_from_db()
    assert report.status == "in_assessment"


@pytest.mark.django_db
def test_image_links_on_a_page_that_point_at_the_canary_are_blocked(
    allowed, site: SyntheticSite, canary: Canary
) -> None:
    url, outcome = fetch(site.url("/canary-gallery.html"))

    assert outcome.state == "fetched"
    children = list(Capture.objects.filter(url=url, parent__isnull=False).order_by("pk"))
    assert [child.error for child in children] == ["", CaptureError.BLOCKED_ADDRESS, CaptureError.BLOCKED_ADDRESS]
    assert len(contents_of(url)) == 1
    assert canary.count() == 0


@pytest.mark.django_db
def test_the_public_form_refuses_the_canary(allowed, client: Client, canary: Canary) -> None:
    response = submit_report(client, [canary.url()], remote_addr="192.0.2.77")

    assert response.status_code == 400
    assert not Report.objects.exists()
    assert canary.count() == 0
