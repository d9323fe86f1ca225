from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from reports.lib.safe_fetch import safe_fetch
from reports.lib.synthetic import Response, SyntheticSite, default_routes
from reports.models import (
    ApiToken,
    Assessment,
    Capture,
    Case,
    Content,
    HashList,
    KnownHash,
    Match,
    Partner,
    Report,
    ReportedUrl,
    SubmittedHash,
    Url,
)
from reports.models.choices import CaptureError, CaseQueue, CaseStatus, FetchStatus, ReportSource, ReportStatus
from reports.tests.factories import login_password_step, login_token_step, login_verified

DEMO_USERNAMES = {"admin", "analyst", "senior", "coordinator"}
RESERVED_SUFFIXES = ("example.com", "example.org", ".example")
VARIANTS = ("reencoded", "resized", "greyscale", "mirrored")
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The demo users' passwords are hashed on every run; the real hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo_settings(settings):
    settings.DEBUG = True
    return settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def site_authority(demo_settings) -> str:
    """A free loopback host:port for the demo's synthetic site, on the fetch allow-list."""
    authority = f"127.0.0.1:{free_port()}"
    demo_settings.HOTLINE_FETCH_ALLOW_HOSTS = [authority]
    return authority


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def listening(authority: str) -> bool:
    host, _, port = authority.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


# --- Without the pipeline: users, partner, reports, idempotency ----------------------------------


@pytest.mark.django_db
def test_refuses_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        seed()

    assert not get_user_model().objects.filter(username__in=DEMO_USERNAMES).exists()
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_demo_users_can_sign_in_with_their_roles(demo_settings, client):
    output = seed()

    users = {user.username: user for user in get_user_model().objects.filter(username__in=DEMO_USERNAMES)}
    assert users["admin"].is_superuser
    assert not users["analyst"].is_superuser
    # The Django admin is for coordinators and admins only, as for users made by create_staff.
    assert {name for name, user in users.items() if user.is_staff} == {"admin", "coordinator"}
    for username, role in (("admin", "admin"), ("analyst", "analyst"), ("senior", "senior_analyst")):
        assert list(users[username].groups.values_list("name", flat=True)) == [role]
    assert list(users["coordinator"].groups.values_list("name", flat=True)) == ["coordinator"]
    assert "hotline-demo" in output
    assert "manage.py demo_totp USER" in output
    for username in DEMO_USERNAMES:
        assert username in output
        # The whole two-factor login, with the code demo_totp prints.
        out = StringIO()
        call_command("demo_totp", username, stdout=out, stderr=StringIO())
        client.logout()
        assert login_password_step(client, username, "hotline-demo").status_code == 200
        response = login_token_step(client, out.getvalue().strip())
        assert response.status_code == 302, username
        assert client.get("/staff/").status_code == 200, username


@pytest.mark.django_db
def test_without_the_allow_list_only_example_domain_reports_are_seeded(demo_settings):
    demo_settings.HOTLINE_FETCH_ALLOW_HOSTS = []

    output = seed()

    assert "HOTLINE_FETCH_ALLOW_HOSTS does not name 127.0.0.1:8765" in output
    hosts = set(Url.objects.values_list("host", flat=True))
    assert hosts
    assert all(host.endswith(RESERVED_SUFFIXES) for host in hosts)
    public = Report.objects.filter(source=ReportSource.PUBLIC)
    assert public.count() == 2
    assert not public.filter(receipt_code__isnull=True).exists()  # receipts, like reports from the form


@pytest.mark.django_db
def test_differently_spelled_urls_become_one_url_with_several_sightings(demo_settings):
    seed()

    gallery = Url.objects.get(canonical_url="https://www.example.com/gallery/1234")
    forum = Url.objects.get(canonical_url="http://example.org/forum/thread?id=77")
    assert gallery.sightings == forum.sightings == 2
    assert ReportedUrl.objects.filter(url=gallery).count() == 2
    assert ReportedUrl.objects.filter(was_known=True).count() == 2


@pytest.mark.django_db
def test_seeding_twice_does_not_duplicate_and_issues_a_fresh_partner_token(site_authority):
    first = seed("--site", site_authority)
    counts = (Report.objects.count(), Url.objects.count(), SubmittedHash.objects.count(), KnownHash.objects.count())
    second = seed("--site", site_authority)

    assert get_user_model().objects.filter(username__in=DEMO_USERNAMES).count() == len(DEMO_USERNAMES)
    assert (Report.objects.count(), Url.objects.count(), SubmittedHash.objects.count(), KnownHash.objects.count()) == (
        counts
    )
    assert counts[0] == 10  # 9 public reports (7 on the synthetic site, 2 on example domains) + 1 partner report
    assert "10 created, 10 in total" in first
    assert "0 created, 10 in total" in second
    assert Partner.objects.filter(name="Demo Partner Hotline").count() == 1
    assert HashList.objects.filter(name="Demo hash list (synthetic)").count() == 1
    # Only the token printed last works.
    tokens = re.findall(r"\bhl_[\w-]+", first + second)
    assert len(tokens) == 2
    active = ApiToken.objects.filter(revoked_at__isnull=True)
    assert active.count() == 1
    assert active.get().prefix == tokens[1][:10]


@pytest.mark.django_db
def test_the_partner_hash_is_the_md5_of_a_served_image_and_the_list_holds_a_pdq(demo_settings):
    seed()

    md5 = hashlib.md5(default_routes()["/img/3.jpg"]().body, usedforsecurity=False).hexdigest()
    submitted = SubmittedHash.objects.get()
    assert (submitted.algorithm, submitted.value) == ("md5", md5)
    assert submitted.report.partner.name == "Demo Partner Hotline"
    assert not submitted.report.reported_urls.exists()
    assert list(KnownHash.objects.values_list("algorithm", flat=True)) == ["pdq"]


@pytest.mark.django_db
def test_refuses_a_synthetic_site_off_loopback(demo_settings):
    with pytest.raises(CommandError, match="loopback"):
        seed("--site", "10.0.0.5:8765")


@pytest.mark.django_db
def test_does_not_point_reports_at_a_listener_that_is_not_the_synthetic_site(demo_settings):
    impostor = SyntheticSite(routes={"/img/1.jpg": lambda: Response(body=b"\xff\xd8\xffsomething else")})
    with impostor:
        demo_settings.HOTLINE_FETCH_ALLOW_HOSTS = [impostor.authority]
        output = seed("--site", impostor.authority)

    assert "serves something other than the synthetic site's images" in output
    assert not Url.objects.filter(host="127.0.0.1").exists()


@pytest.mark.django_db
def test_an_in_process_site_is_stopped_after_seeding(site_authority):
    assert not listening(site_authority)

    seed("--site", site_authority)

    assert Url.objects.filter(canonical_url__startswith=f"http://{site_authority}/").count() == 12
    assert not listening(site_authority)


# --- With the pipeline: every report fetched, hashed, matched and made a case --------------------


def site_url(authority: str, path: str) -> Url:
    return Url.objects.get(canonical_url=f"http://{authority}{path}")


def only_content(url: Url) -> Content:
    [content] = Content.objects.filter(captures__url=url, captures__parent__isnull=True).distinct()
    return content


def pipeline_counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count() for model in (Report, Url, Capture, Content, Match, Case, Assessment, SubmittedHash)
    )


@pytest.mark.django_db(transaction=True)
def test_seeded_reports_take_the_whole_pipeline(pipeline, site_authority):
    output = seed("--site", site_authority)

    # Every URL was fetched or failed for good, and each has exactly one case.
    assert not Url.objects.filter(fetch_status=FetchStatus.PENDING).exists()
    for url in Url.objects.all():
        assert Case.objects.filter(url=url).count() == 1, url

    # Near-duplicates of /img/1.jpg are linked to it by Match rows (the mirrored one through PDQ's
    # dihedral hashes).
    original = only_content(site_url(site_authority, "/img/1.jpg"))
    for variant in VARIANTS:
        content = only_content(site_url(site_authority, f"/img/1/{variant}.jpg"))
        assert content != original
        assert Match.objects.filter(content=content, matched_content=original, kind="pdq").exists(), variant
        case = Case.objects.get(url=site_url(site_authority, f"/img/1/{variant}.jpg"))
        assert case.queue == CaseQueue.KNOWN_NEW_LOCATION

    # A hash-list hit: the PDQ of /img/2.jpg is on the demo list.
    listed = only_content(site_url(site_authority, "/img/2.jpg"))
    assert Match.objects.filter(content=listed, known_hash__hash_list__name="Demo hash list (synthetic)").exists()
    assert Case.objects.get(url=site_url(site_authority, "/img/2.jpg")).queue == CaseQueue.KNOWN_NEW_LOCATION

    # The gallery page: its four images captured as children, all in the page's case.
    gallery = site_url(site_authority, "/gallery/1.html")
    assert Capture.objects.filter(url=gallery, parent__isnull=False).count() == 4
    assert Case.objects.get(url=gallery).contents.count() == 4
    assert Case.objects.get(url=gallery).queue == CaseQueue.NEW_UNKNOWN

    # The AI-tagged PNG is flagged and queued as such.
    ai = only_content(site_url(site_authority, "/ai/1.png"))
    assert ai.ai_indicated
    assert Case.objects.get(url=site_url(site_authority, "/ai/1.png")).queue == CaseQueue.AI_INDICATED

    # The dead link and the page served as a .jpg are capture errors, with cases of nothing captured.
    dead = site_url(site_authority, "/dead.jpg")
    assert (dead.fetch_status, dead.fetch_error) == (FetchStatus.ERROR, CaptureError.HTTP_4XX)
    assert Capture.objects.get(url=dead).http_status == 404
    assert not Case.objects.get(url=dead).contents.exists()
    fake = site_url(site_authority, "/fake.jpg")
    assert (fake.fetch_status, fake.fetch_error) == (FetchStatus.ERROR, CaptureError.NOT_AN_IMAGE)
    # Example domains are never resolved: a `dns` error.
    for url in Url.objects.filter(host__endswith="example.com") | Url.objects.filter(host__endswith="example.org"):
        assert (url.fetch_status, url.fetch_error) == (FetchStatus.ERROR, CaptureError.DNS)

    # The redirect was followed to the picture it names.
    redirect = Capture.objects.get(url=site_url(site_authority, "/redirect/1"))
    assert redirect.final_url == f"http://{site_authority}/img/6.jpg"
    assert redirect.content is not None

    # The demo analyst assessed /img/1.jpg; the same file at another address was closed unseen.
    assert Case.objects.get(url=site_url(site_authority, "/img/1.jpg")).status == CaseStatus.CLOSED
    copy = Case.objects.get(url=site_url(site_authority, "/img/1.jpg?reupload=1"))
    assert copy.status == CaseStatus.CLOSED
    assert copy.auto_closed
    assert list(copy.contents.all()) == [original]
    assert Report.objects.get(description__startswith="[demo] known-copy:").status == ReportStatus.ASSESSED_NO_ACTION

    # The partner's hash-only report matched the picture the gallery showed, in its own queue.
    submitted = SubmittedHash.objects.get()
    assert Match.objects.filter(submitted_hash=submitted, matched_content__captures__url=gallery).exists()
    assert Case.objects.get(report=submitted.report, url__isnull=True).queue == CaseQueue.HASH_ONLY

    # The summary says so.
    assert "URLs:      14 — 10 fetched, 4 failed (dns 2, http_4xx 1, not_an_image 1), 0 pending" in output
    assert "Contents:  11 distinct images, 1 AI-indicated" in output
    assert "hash-list hits: 1; on partner-submitted hashes: 1" in output
    assert "Closed cases: 2, of which 1 auto-closed" in output
    open_cases = Case.objects.exclude(status=CaseStatus.CLOSED)
    assert f"AI-indicated {open_cases.filter(queue=CaseQueue.AI_INDICATED).count()}" in output
    assert f"Partner hash-only reports {open_cases.filter(queue=CaseQueue.HASH_ONLY).count()}" in output

    # The in-process site is gone, and seeding again adds nothing.
    assert not listening(site_authority)
    before = pipeline_counts()
    again = seed("--site", site_authority)
    assert pipeline_counts() == before
    assert "0 created" in again


@pytest.mark.django_db(transaction=True)
def test_staff_see_the_pipeline_in_the_admin_without_any_picture(pipeline, site_authority, client):
    seed("--site", site_authority)
    login_verified(client, get_user_model().objects.get(username="admin"))

    for path, expected in (
        ("/admin/reports/capture/?error__exact=dns", "2 captures"),
        ("/admin/reports/content/?ai_indicated__exact=1", "1 content"),
        ("/admin/reports/case/?queue__exact=hash_only", "1 case"),
        ("/admin/reports/match/?kind__exact=md5", "1 match"),
        ("/admin/reports/submittedhash/", "1 submitted hash"),
        ("/admin/reports/knownhash/", "1 known hash"),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert expected in response.content.decode(), path

    contents = list(Content.objects.all())
    for content in contents:
        page = client.get(f"/admin/reports/content/{content.pk}/change/").content.decode()
        assert "Preview stored (encrypted)" in page
        # The only pictures on the page are the admin's own yes/no icons.
        assert all(src.startswith("/static/admin/img/icon-") for src in re.findall(r'<img[^>]*src="([^"]*)"', page))
        assert "data:image" not in page
        assert bytes(content.preview).decode() not in page  # not even the encrypted token
    listing = client.get("/admin/reports/content/").content.decode()
    assert listing.count('alt="True"') >= len(contents)  # every preview stored, shown only as a flag
    case = Case.objects.get(url__canonical_url=f"http://{site_authority}/gallery/1.html")
    page = client.get("/admin/reports/case/").content.decode()
    assert f'href="/admin/reports/case/{case.pk}/change/' in page
    # Read-only: nothing can be added, changed or deleted here.
    assert client.get("/admin/reports/content/add/").status_code == 403
    assert client.get(f"/admin/reports/case/{case.pk}/delete/").status_code == 403
    assert client.post(f"/admin/reports/case/{case.pk}/change/", {"status": "closed"}).status_code == 403


# --- serve_synthetic_site -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "localhost", "::1", "example.org"])  # noqa: S104
def test_serve_synthetic_site_refuses_non_loopback_hosts(host):
    with pytest.raises(CommandError, match="loopback"):
        call_command("serve_synthetic_site", "--host", host, "--port", "8765")


@pytest.mark.integration
def test_serve_synthetic_site_serves_until_terminated_and_frees_its_port():
    port = free_port()
    authority = f"127.0.0.1:{port}"
    env = {**os.environ, "DEBUG": "1"}
    command = [sys.executable, "manage.py", "serve_synthetic_site", "--host", "127.0.0.1", "--port", str(port)]
    for _run in range(2):  # the second run binds the same port at once (SO_REUSEADDR)
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)  # noqa: S603
        try:
            deadline = time.monotonic() + 30
            while not listening(authority):
                assert process.poll() is None, "the site exited early"
                assert time.monotonic() < deadline, "the site did not come up"
                time.sleep(0.1)
            fetched = safe_fetch(f"http://{authority}/img/1.jpg", allow_hosts=[authority])
            assert fetched.body == default_routes()["/img/1.jpg"]().body
        finally:
            process.send_signal(signal.SIGTERM)
            out, _err = process.communicate(timeout=10)
        assert process.returncode == 0
        assert "Synthetic site stopped." in out
        assert not listening(authority)
