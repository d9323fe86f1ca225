"""Fill a development database with demo staff users, a demo partner and reports that take the
whole pipeline: fetch → hash → match → case. DEBUG only: the demo users and the partner token are
published.

The pictures come from the synthetic site (`reports/lib/synthetic.py`): images generated in code,
served on a loopback address. `make demo` runs that site in the background
(`manage.py serve_synthetic_site`, 127.0.0.1:8765); when nothing listens there, this command starts
one in-process for the seeding and stops it afterwards. Hotline fetches a loopback address only if
HOTLINE_FETCH_ALLOW_HOSTS names its host:port (the demo's environment does); without that, only the
reports on reserved example domains are seeded.

With tasks running in-process (the demo: no REDIS_URL), every report is fetched, hashed, matched
and turned into a case while it is seeded. What is seeded:

- originals /img/1.jpg and /img/2.jpg, the PDQ of /img/2.jpg on a tiny demo hash list (a hit);
- near-duplicates of /img/1.jpg (re-encoded, resized, greyscale, mirrored), matched to it;
- a gallery page whose images are captured one by one, an AI-tagged PNG, a dead link, a web page
  served as a .jpg and a redirect;
- an earlier assessment of /img/1.jpg (standing in for the analyst workspace) and the same file
  reported again at another address, which is closed unseen as known content;
- two reports on reserved example domains (different spellings of the same addresses: sightings add
  up; their fetch ends as a `dns` error without any lookup);
- a demo partner (its API token printed) with a hash-only report: the MD5 of /img/3.jpg.

The demo staff users (admin, analyst, senior, coordinator) get TOTP authenticators with fixed,
published keys; `manage.py demo_totp USER` (DEBUG only) prints the current code for a login.

Running it again resets the demo passwords and authenticators, issues a fresh partner token and adds nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from reports.lib.imaging import digest_image
from reports.lib.safe_fetch import safe_fetch
from reports.lib.synthetic import SyntheticSite, default_routes
from reports.lib.urls import canonicalize_url
from reports.management.commands.serve_synthetic_site import DEFAULT_HOST, DEFAULT_PORT, loopback_host
from reports.models import Assessment, Capture, Case, Content, HashList, Match, Partner, Report, Url
from reports.models.choices import (
    AiSuspected,
    CaseQueue,
    CaseStatus,
    Category,
    FetchStatus,
    PartnerKind,
    ReportSource,
    StaffRole,
    Verdict,
    Virtual,
    WhereFound,
)
from reports.services.audit import audit_record
from reports.services.intake import UrlItem, report_create_public
from reports.services.matching import hashlist_create, hashlist_import
from reports.services.partners import (
    PartnerReportInput,
    partner_create,
    partner_reports_submit,
    token_issue,
    token_revoke,
)
from reports.services.staff import ADMIN_SITE_ROLES, staff_issue_devices
from reports.services.triage import reports_refresh_status

DEMO_PASSWORD = "hotline-demo"  # noqa: S105 - published on purpose; refused unless DEBUG
# Descriptions of demo reports start with "[demo] <key>:", so a re-run knows which ones exist.
DEMO_MARKER = "[demo]"
DEMO_PARTNER = "Demo Partner Hotline"
DEMO_HASH_LIST = "Demo hash list (synthetic)"
DEMO_HASH_REPORT_ID = "demo-hash-only-1"  # the partner report's external id
ORIGINAL = "/img/1.jpg"
LISTED = "/img/2.jpg"  # its PDQ is on the demo hash list
PARTNER_HASHED = "/img/3.jpg"  # its MD5 is the partner's hash-only report (the gallery shows it)
KNOWN_COPY = "/img/1.jpg?reupload=1"  # the same bytes as ORIGINAL at another canonical URL


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str  # a StaffRole: the user's group

    @property
    def totp_key(self) -> str:
        """The authenticator key (hex), fixed and published like the password: `manage.py demo_totp
        USER` prints the current code."""
        return hashlib.sha1(f"hotline-demo-totp:{self.username}".encode(), usedforsecurity=False).hexdigest()


DEMO_USERS = (
    DemoUser("admin", role=StaffRole.ADMIN),
    DemoUser("analyst", role=StaffRole.ANALYST),
    DemoUser("senior", role=StaffRole.SENIOR_ANALYST),
    DemoUser("coordinator", role=StaffRole.COORDINATOR),
)


@dataclass(frozen=True)
class DemoReport:
    key: str  # stable: a re-run recognises the report by it
    urls: tuple[str, ...]  # paths on the synthetic site, or absolute URLs on example domains
    category: str
    ai_suspected: str
    where_found: str
    description: str = ""
    email: str = ""


# Reports pointing at the synthetic site, seeded in this order (originals before their copies).
SITE_REPORTS = (
    DemoReport(
        key="originals",
        urls=(ORIGINAL, LISTED),
        category=Category.CSAM,
        ai_suspected=AiSuspected.NO,
        where_found=WhereFound.WEBSITE,
        description="Two pictures on an image host.",
    ),
    DemoReport(
        key="near-duplicates",
        urls=("/img/1/reencoded.jpg", "/img/1/resized.jpg", "/img/1/greyscale.jpg", "/img/1/mirrored.jpg"),
        category=Category.CSAM,
        ai_suspected=AiSuspected.UNKNOWN,
        where_found=WhereFound.FORUM,
        description="The same picture re-posted: re-encoded, resized, greyscale, mirrored.",
    ),
    DemoReport(
        key="gallery",
        urls=("/gallery/1.html",),
        category=Category.CSAM,
        ai_suspected=AiSuspected.UNKNOWN,
        where_found=WhereFound.WEBSITE,
        description="A gallery page.",
    ),
    DemoReport(
        key="ai-tagged",
        urls=("/ai/1.png",),
        category=Category.AI_CSAM,
        ai_suspected=AiSuspected.YES,
        where_found=WhereFound.SOCIAL,
        description="Looks generated.",
        email="reporter@example.org",
    ),
    DemoReport(
        key="dead-link",
        urls=("/dead.jpg",),
        category=Category.CSAM,
        ai_suspected=AiSuspected.NO,
        where_found=WhereFound.FORUM,
        description="The link was already dead when I looked again.",
    ),
    DemoReport(
        key="chat-links",
        urls=("/fake.jpg", "/redirect/1"),
        category=Category.SEXTORTION,
        ai_suspected=AiSuspected.UNKNOWN,
        where_found=WhereFound.CHAT,
        description="Two links from a chat group.",
    ),
)
# Seeded after the demo analyst has assessed ORIGINAL: the same file, so its case closes unseen.
KNOWN_COPY_REPORT = DemoReport(
    key="known-copy",
    urls=(KNOWN_COPY,),
    category=Category.CSAM,
    ai_suspected=AiSuspected.NO,
    where_found=WhereFound.OTHER,
    description="The first picture again, at another address.",
)
# Reserved example domains (RFC 2606) are never resolved: each fetch ends as a `dns` capture error.
# Spelled differently but canonicalising to the same two addresses, so sightings add up.
EXAMPLE_REPORTS = (
    DemoReport(
        key="example-forum",
        urls=("https://www.example.com/gallery/1234", "http://example.org/forum/thread?id=77&utm_source=chat"),
        category=Category.CSAM,
        ai_suspected=AiSuspected.NO,
        where_found=WhereFound.FORUM,
        description="A link posted in a forum thread.",
    ),
    DemoReport(
        # Upper-case host, default port, a dot segment, a fragment; tracking parameters dropped.
        key="example-forum-again",
        urls=("HTTPS://WWW.EXAMPLE.COM:443/gallery/./1234#top", "http://example.org/forum/thread?utm_medium=x&id=77"),
        category=Category.CSAM,
        ai_suspected=AiSuspected.UNKNOWN,
        where_found=WhereFound.SOCIAL,
    ),
)


def synthetic_bytes(path: str) -> bytes:
    """What the synthetic site serves at `path` (the query is ignored, as the site does)."""
    return default_routes()[path.split("?", 1)[0]]().body


class Command(BaseCommand):
    help = (
        "Create demo staff users (fixed passwords), a demo partner and public reports on the synthetic "
        "image site that go through fetch, hashing, matching and triage. DEBUG only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--site",
            default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
            help=f"host:port of the synthetic site (default {DEFAULT_HOST}:{DEFAULT_PORT}); a loopback address, "
            "also named in HOTLINE_FETCH_ALLOW_HOSTS.",
        )
        parser.add_argument(
            "--wait-for-site",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="How long to wait for a synthetic site that is still starting before starting one in-process "
            "(default 0; `make demo` waits, since it starts the site in the background).",
        )
        parser.add_argument(
            "--history",
            type=int,
            default=0,
            metavar="N",
            help="Like --reports N, but only if no synthetic history is there yet (what `make demo` uses, so that "
            "running it again adds nothing).",
        )
        parser.add_argument(
            "--reports",
            type=int,
            default=0,
            metavar="N",
            help="Also add a synthetic history of N reports (about 3 URLs each, on .example domains) over the last "
            "two years, written in bulk, and build the statistics rollups (default 0: none).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates users with published passwords and runs only with DEBUG=1. "
                "Never run it against a real database."
            )
        host, _, port = options["site"].rpartition(":")
        if not port.isdigit():
            raise CommandError("--site must be host:port, e.g. 127.0.0.1:8765.")
        authority = f"{loopback_host(host)}:{int(port)}"

        with transaction.atomic():
            self._seed_users()
        with _quiet_task_log():
            token, created = self._seed_all(authority, wait=options["wait_for_site"])
        self._print_summary(created, base_url=f"http://{authority}/", token=token)
        if options["reports"] > 0:
            self._seed_statistics_history(options["reports"])
        elif options["history"] > 0:
            from reports.services.demo_history import history_exists

            if history_exists():
                self.stdout.write("Synthetic history: already there (seed_demo --reports N adds more).")
            else:
                self._seed_statistics_history(options["history"])

    def _seed_statistics_history(self, reports: int) -> None:
        """The statistics issue's synthetic history (reports.services.demo_history), then the rollups."""
        from reports.services.demo_history import seed_history
        from reports.services.stats import stats_refresh

        began = time.monotonic()
        result = seed_history(reports=reports)
        seeded = time.monotonic()
        rollup = stats_refresh(full=True)
        self.stdout.write(
            f"Synthetic history: {result.reports} reports, {result.sightings} URL sightings ({result.urls} URLs), "
            f"{result.contents} contents, {result.cases} cases, {result.assessments} assessments, "
            f"{result.referrals} referrals in {seeded - began:.1f} s; statistics rollup: {rollup['rows']} rows "
            f"for {rollup['days']} days in {time.monotonic() - seeded:.1f} s."
        )

    def _seed_all(self, authority: str, *, wait: float) -> tuple[str, int]:
        """Partner, hash list and reports, in the order the demo needs; (partner token, reports created)."""
        token = self._seed_partner()
        self._seed_hash_list()
        created = 0
        with self._synthetic_site(authority, wait=wait) as base:
            if base is not None:
                for report in SITE_REPORTS:
                    created += self._create_report(report, base=base)
                if not self._exists(KNOWN_COPY_REPORT):
                    self._assess_as_demo_analyst(f"{base}{ORIGINAL}")
                    created += self._create_report(KNOWN_COPY_REPORT, base=base)
        for report in EXAMPLE_REPORTS:
            created += self._create_report(report)
        created += self._seed_partner_report()
        return token, created

    # --- Users and the partner ------------------------------------------------------------------

    def _seed_users(self) -> None:
        user_model = get_user_model()
        for demo in DEMO_USERS:
            user, _created = user_model.objects.get_or_create(
                username=demo.username, defaults={"email": f"{demo.username}@example.org"}
            )
            # Reset every run, so the printed logins always work: the password, the role (as
            # staff_create gives it) and the authenticator with its fixed key.
            user.is_staff = demo.role in ADMIN_SITE_ROLES
            user.is_active = True
            user.is_superuser = demo.role == StaffRole.ADMIN
            user.set_password(DEMO_PASSWORD)
            user.save()
            group, _ = Group.objects.get_or_create(name=demo.role)
            user.groups.set([group])
            staff_issue_devices(user=user, totp_key=demo.totp_key)

    @transaction.atomic
    def _seed_partner(self) -> str:
        """The demo partner's API token: a new one every run (only digests are stored), like the
        demo passwords, so the printed token always works; earlier demo tokens are revoked."""
        partner = Partner.objects.filter(name=DEMO_PARTNER).first()
        if partner is None:
            partner, issued = partner_create(name=DEMO_PARTNER, kind=PartnerKind.HOTLINE, country="BE")
            return issued.secret
        for old in partner.tokens.filter(revoked_at__isnull=True):
            token_revoke(token=old)
        return token_issue(partner=partner, name="demo").secret

    def _seed_hash_list(self) -> None:
        """A one-entry hash list: the PDQ of LISTED, so fetching it shows a hash-list hit. Imported
        before the reports, so the entry is known when the picture is matched."""
        hash_list = HashList.objects.filter(name=DEMO_HASH_LIST).first() or hashlist_create(
            name=DEMO_HASH_LIST, default_category=Category.OTHER
        )
        digest, _image = digest_image(synthetic_bytes(LISTED))
        hashlist_import(hash_list=hash_list, entries=[("pdq", digest.pdq, "")])

    def _seed_partner_report(self) -> int:
        """A hash-only partner report: the MD5 of a picture the gallery page shows."""
        partner = Partner.objects.get(name=DEMO_PARTNER)
        md5 = hashlib.md5(synthetic_bytes(PARTNER_HASHED), usedforsecurity=False).hexdigest()
        [result] = partner_reports_submit(
            partner=partner,
            items=[
                PartnerReportInput(
                    url_items=[],
                    hashes=[("md5", md5)],
                    category=Category.CSAM,
                    ai_suspected=AiSuspected.UNKNOWN,
                    note="Hash-only report: a file one of our members found.",
                    external_id=DEMO_HASH_REPORT_ID,
                )
            ],
        )
        return int(result.created)

    # --- Reports ----------------------------------------------------------------------------------

    @staticmethod
    def _prefix(report: DemoReport) -> str:
        return f"{DEMO_MARKER} {report.key}:"

    def _exists(self, report: DemoReport) -> bool:
        return Report.objects.filter(source=ReportSource.PUBLIC, description__startswith=self._prefix(report)).exists()

    def _create_report(self, report: DemoReport, *, base: str = "") -> int:
        """File `report` through the public intake service unless it exists; 1 if it was created.
        With tasks running in-process, its URLs are fetched, hashed and matched before this returns."""
        if self._exists(report):
            return 0
        items = [
            UrlItem(
                submitted=base + line,
                canonical=canonicalize_url(
                    base + line,
                    allow_hosts=settings.HOTLINE_FETCH_ALLOW_HOSTS,
                    max_length=settings.HOTLINE_MAX_URL_LENGTH,
                ),
            )
            for line in report.urls
        ]
        report_create_public(
            url_items=items,
            category=report.category,
            ai_suspected=report.ai_suspected,
            where_found=report.where_found,
            description=f"{self._prefix(report)} {report.description}".strip(),
            email=report.email,
        )
        return 1

    @transaction.atomic
    def _assess_as_demo_analyst(self, url: str) -> None:
        """Stand-in for the analyst workspace (a later issue): the demo analyst assesses what was
        captured at `url` (a generated picture: not illegal) and closes its case, so the same file
        reported again is closed unseen by the auto-close policy."""
        canonical = canonicalize_url(url, allow_hosts=settings.HOTLINE_FETCH_ALLOW_HOSTS).url
        case = (
            Case.objects.select_for_update()
            .filter(url__canonical_url=canonical, status=CaseStatus.OPEN, claimed_by__isnull=True)
            .first()
        )
        if case is None or not case.contents.exists():
            return  # not fetched (tasks not in-process): nothing to assess yet
        analyst = get_user_model().objects.get(username="analyst")
        now = timezone.now()
        Assessment.objects.bulk_create(
            Assessment(
                case=case,
                content=content,
                analyst=analyst,
                verdict=Verdict.NOT_ILLEGAL,
                virtual=Virtual.DRAWN,
                notes="Demo: a picture generated in code.",
            )
            for content in case.contents.all()
        )
        case.status = CaseStatus.CLOSED
        case.assessed_at = case.closed_at = now
        case.save(update_fields=["status", "assessed_at", "closed_at"])
        reports_refresh_status(Report.objects.filter(reported_urls__url_id=case.url_id).values_list("pk", flat=True))
        audit_record(action="case.assessed", actor=analyst, obj=case, details={"verdict": Verdict.NOT_ILLEGAL})

    # --- The synthetic site -----------------------------------------------------------------------

    @contextmanager
    def _synthetic_site(self, authority: str, *, wait: float) -> Iterator[str | None]:
        """The site's base URL while it is reachable (started in-process if nothing listens on
        `authority`), or None, having said why, when reports must not point at it."""
        base = f"http://{authority}"
        allowed = {entry.strip().lower() for entry in settings.HOTLINE_FETCH_ALLOW_HOSTS}
        if authority not in allowed:
            self.stdout.write(
                f"Not seeding reports on the synthetic site: HOTLINE_FETCH_ALLOW_HOSTS does not name {authority} "
                "(Hotline refuses to fetch loopback addresses otherwise; `make demo` sets it)."
            )
            yield None
            return
        state = self._probe(base, authority, wait=wait)
        if state == "ours":
            yield base
            return
        if state != "absent":
            self.stdout.write(f"Not seeding reports on the synthetic site: {base}/ {state}.")
            yield None
            return
        host, _, port = authority.rpartition(":")
        try:
            site = SyntheticSite(host=host, port=int(port)).start()
        except OSError as exc:
            self.stdout.write(f"Not seeding reports on the synthetic site: cannot listen on {authority}: {exc}.")
            yield None
            return
        if not (settings.HOTLINE_ENQUEUE_TASKS and _tasks_run_in_process()):
            self.stdout.write(
                f"Started the synthetic site on {base}/ for the seeding only; tasks do not run in-process here, "
                "so keep `manage.py serve_synthetic_site` running until they have fetched the reports."
            )
        try:
            yield base
        finally:
            site.stop()

    @staticmethod
    def _probe(base: str, authority: str, *, wait: float) -> str:
        """ "ours" if the synthetic site answers at `base`, "absent" if nothing listens (after up to
        `wait` seconds), else what answers instead."""
        expected = hashlib.sha256(synthetic_bytes(ORIGINAL)).hexdigest()
        deadline = time.monotonic() + wait
        while True:
            result = safe_fetch(f"{base}{ORIGINAL}", allow_hosts=[authority], connect_timeout=2, total_timeout=10)
            if result.error != "connect":
                break
            if time.monotonic() >= deadline:
                return "absent"
            time.sleep(0.25)
        if result.error:
            return f"does not answer like the synthetic site ({result.error}: {result.error_detail})"
        if hashlib.sha256(result.body or b"").hexdigest() != expected:
            return "serves something other than the synthetic site's images"
        return "ours"

    # --- Summary ----------------------------------------------------------------------------------

    def _print_summary(self, created: int, *, base_url: str, token: str) -> None:
        out = self.stdout.write
        demo_reports = Report.objects.filter(
            Q(source=ReportSource.PUBLIC, description__startswith=DEMO_MARKER)
            | Q(partner__name=DEMO_PARTNER, external_id=DEMO_HASH_REPORT_ID)
        )
        urls = Counter(Url.objects.values_list("fetch_status", flat=True))
        errors = Counter(Url.objects.filter(fetch_status=FetchStatus.ERROR).values_list("fetch_error", flat=True))
        contents = Content.objects.aggregate(
            total=Count("pk"),
            ai=Count("pk", filter=Q(ai_indicated=True)),
            quarantined=Count("pk", filter=Q(quarantined=True)),
        )
        matches = Match.objects.aggregate(
            near=Count("pk", filter=Q(content__isnull=False, matched_content__isnull=False)),
            listed=Count("pk", filter=Q(content__isnull=False, known_hash__isnull=False)),
            partner=Count("pk", filter=Q(submitted_hash__isnull=False)),
        )
        open_queues = Counter(Case.objects.exclude(status=CaseStatus.CLOSED).values_list("queue", flat=True))
        closed = Case.objects.filter(status=CaseStatus.CLOSED)
        queue_labels = dict(CaseQueue.choices)
        error_text = ", ".join(f"{kind or 'other'} {count}" for kind, count in sorted(errors.items()))

        out(f"Demo reports: {created} created, {demo_reports.count()} in total (synthetic site: {base_url}).")
        out("Pipeline results (the whole database):")
        out(
            f"  URLs:      {sum(urls.values())} — {urls[FetchStatus.FETCHED]} fetched, "
            f"{urls[FetchStatus.ERROR]} failed ({error_text or 'none'}), {urls[FetchStatus.PENDING]} pending; "
            f"{Url.objects.filter(sightings__gt=1).count()} reported more than once"
        )
        out(
            f"  Captures:  {Capture.objects.count()} fetch attempts, "
            f"{Capture.objects.filter(parent__isnull=False).count()} of them images linked from a page"
        )
        out(
            f"  Contents:  {contents['total']} distinct images, {contents['ai']} AI-indicated, "
            f"{contents['quarantined']} quarantined"
        )
        out(
            f"  Matches:   {sum(matches.values())} (to earlier content, the same or a near-duplicate picture: "
            f"{matches['near']}; hash-list hits: {matches['listed']}; "
            f"on partner-submitted hashes: {matches['partner']})"
        )
        out(
            "  Open cases by queue: "
            + ", ".join(f"{queue_labels[queue]} {open_queues[queue]}" for queue in CaseQueue.values)
        )
        out(
            f"  Closed cases: {closed.count()}, of which {closed.filter(auto_closed=True).count()} auto-closed "
            "as known content (nobody had to look)"
        )
        if urls[FetchStatus.PENDING]:
            out("  (Pending URLs are fetched by Celery workers, or by the sweeper if none was queued.)")
        out("")
        labels = dict(StaffRole.choices)
        out("Demo staff logins (DEBUG only; these passwords and authenticator keys are public):")
        for user in DEMO_USERS:
            out(f"  {user.username:<12} / {DEMO_PASSWORD}   ({labels[user.role]})")
        out("Every login also asks for a two-factor code. Get the current one with:")
        out("  DEBUG=1 python manage.py demo_totp USER      (e.g. demo_totp analyst)")
        out(f"Demo partner API token ({DEMO_PARTNER}, all scopes, new every run): {token}")


@contextmanager
def _quiet_task_log() -> Iterator[None]:
    """In-process tasks log a line each ("Task … succeeded"), and kombu warns that the in-memory
    broker has no host name; the summary says what matters."""
    loggers = {name: logging.getLogger(name) for name in ("celery.app.trace", "kombu.connection")}
    levels = {name: logger.level for name, logger in loggers.items()}
    for logger in loggers.values():
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


def _tasks_run_in_process() -> bool:
    from hotline.celery import app

    return bool(app.conf.task_always_eager)
