"""Fill a development database with demo staff users and synthetic public reports.

Only for DEBUG: the demo users have fixed, published passwords. Every URL is on a reserved
example domain (RFC 2606: example.com, example.org, *.example), so nothing here points at a
real site. Running it again resets the demo passwords and tops the demo reports up to
`--reports`; it never duplicates users or reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from reports.lib.urls import canonicalize_url
from reports.models import Report, Url
from reports.models.choices import AiSuspected, Category, ReportSource, WhereFound
from reports.services.intake import UrlItem, report_create_public

DEMO_PASSWORD = "hotline-demo"  # noqa: S105 - published on purpose; refused unless DEBUG
# Descriptions of demo reports start with this, so a re-run knows how many already exist.
DEMO_MARKER = "[demo]"


@dataclass(frozen=True)
class DemoUser:
    username: str
    superuser: bool
    groups: tuple[str, ...]
    role: str


DEMO_USERS = (
    DemoUser("admin", superuser=True, groups=("admin",), role="superuser"),
    DemoUser("analyst", superuser=False, groups=("analyst",), role="analyst"),
    DemoUser("coordinator", superuser=False, groups=("coordinator",), role="coordinator"),
)


@dataclass(frozen=True)
class DemoReport:
    urls: tuple[str, ...]
    category: str
    ai_suspected: str
    where_found: str
    description: str = ""
    email: str = ""


# Written by hand so the demo shows canonicalisation at work: differently spelled lines that
# end up as one `Url` row with several sightings.
HANDWRITTEN = (
    DemoReport(
        urls=("https://www.example.com/gallery/1234", "http://example.org/forum/thread?id=77&utm_source=chat"),
        category=Category.CSAM,
        ai_suspected=AiSuspected.NO,
        where_found=WhereFound.FORUM,
        description="A link posted in a forum thread.",
    ),
    DemoReport(
        # Same as the first URL above: upper-case host, default port, a dot segment, a fragment.
        urls=("HTTPS://WWW.EXAMPLE.COM:443/gallery/./1234#top", "https://images.example/a/b.jpg"),
        category=Category.AI_CSAM,
        ai_suspected=AiSuspected.YES,
        where_found=WhereFound.WEBSITE,
        description="Looks generated.",
    ),
    DemoReport(
        # Tracking parameters dropped, the rest sorted: both canonicalise to URLs already reported.
        urls=("http://example.org/forum/thread?utm_medium=x&id=77", "https://www.example.com/gallery/1234?fbclid=abc"),
        category=Category.CSAM,
        ai_suspected=AiSuspected.UNKNOWN,
        where_found=WhereFound.SOCIAL,
    ),
    DemoReport(
        urls=("https://chat.example/invite/XYZ",),
        category=Category.SEXTORTION,
        ai_suspected=AiSuspected.NO,
        where_found=WhereFound.CHAT,
        description="Someone is being pressured with photos in this group.",
        email="reporter@example.org",
    ),
    DemoReport(
        # The same line twice is merged into one sighting, as the form does.
        urls=(
            "https://www.example.com/photos/../gallery/1234",
            "https://files.example/share/0042",
            "https://files.example/share/0042",
        ),
        category=Category.OTHER,
        ai_suspected=AiSuspected.UNKNOWN,
        where_found=WhereFound.OTHER,
    ),
)

# A few "popular" addresses that generated reports keep naming, each in several spellings.
POPULAR = (
    ("https://www.example.com/gallery/1234", "HTTPS://www.Example.com/gallery/1234?utm_campaign=x"),
    ("https://images.example/a/b.jpg", "https://images.example:443/a/./b.jpg#x"),
    ("https://host1.example/album/9", "https://HOST1.example/album/9?gclid=1"),
    ("http://example.org/board/t/55", "http://example.org:80/board/t/55"),
)
HOSTS = ("example.com", "example.org", "img.example", "cdn.example", "board.example", "share.example")
CATEGORIES = (Category.CSAM, Category.CSAM, Category.AI_CSAM, Category.SEXTORTION, Category.CSAM, Category.OTHER)
WHERE = tuple(WhereFound.values)


def generated_report(index: int) -> DemoReport:
    """Report number `index`, always the same for the same index (no randomness: stable demos)."""
    category = CATEGORIES[index % len(CATEGORIES)]
    if category == Category.AI_CSAM:
        ai = AiSuspected.YES
    else:
        ai = (AiSuspected.UNKNOWN, AiSuspected.NO, AiSuspected.YES, AiSuspected.NO)[index % 4]
    urls: list[str] = []
    if index % 3 == 0:
        spellings = POPULAR[(index // 3) % len(POPULAR)]
        urls.append(spellings[(index // 3) % len(spellings)])
    for extra in range(1 + index % 3):
        host = HOSTS[(index + extra) % len(HOSTS)]
        urls.append(f"https://{host}/item/{index}-{extra}")
    return DemoReport(
        urls=tuple(urls),
        category=category,
        ai_suspected=ai,
        where_found=WHERE[(index * 3) % len(WHERE)],
        email="someone@example.com" if index % 7 == 0 else "",
    )


def demo_report(index: int) -> DemoReport:
    return HANDWRITTEN[index] if index < len(HANDWRITTEN) else generated_report(index)


class Command(BaseCommand):
    help = "Create demo staff users (fixed passwords) and synthetic public reports. DEBUG only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reports",
            type=int,
            default=25,
            help="How many demo public reports the database should hold (default 25).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates users with published passwords and runs only with DEBUG=1. "
                "Never run it against a real database."
            )
        wanted: int = options["reports"]
        if wanted < 0:
            raise CommandError("--reports must be 0 or more.")

        with transaction.atomic():
            self._seed_users()
        created = self._seed_reports(wanted)

        demo_reports = Report.objects.filter(source=ReportSource.PUBLIC, description__startswith=DEMO_MARKER)
        repeated = Url.objects.filter(sightings__gt=1).count()
        self.stdout.write(
            f"Demo reports: {created} created, {demo_reports.count()} in total; "
            f"{Url.objects.count()} distinct URLs, {repeated} reported more than once."
        )
        self.stdout.write("")
        self.stdout.write("Demo logins (DEBUG only; these passwords are public):")
        for user in DEMO_USERS:
            self.stdout.write(f"  {user.username:<12} / {DEMO_PASSWORD}   ({user.role})")

    def _seed_users(self) -> None:
        user_model = get_user_model()
        for demo in DEMO_USERS:
            user, _created = user_model.objects.get_or_create(
                username=demo.username, defaults={"email": f"{demo.username}@example.org"}
            )
            # Reset every run, so the printed logins always work.
            user.is_staff = True
            user.is_active = True
            user.is_superuser = demo.superuser
            user.set_password(DEMO_PASSWORD)
            user.save()
            for name in demo.groups:
                group, _ = Group.objects.get_or_create(name=name)
                user.groups.add(group)

    def _seed_reports(self, wanted: int) -> int:
        existing = Report.objects.filter(source=ReportSource.PUBLIC, description__startswith=DEMO_MARKER).count()
        for index in range(existing, wanted):
            report = demo_report(index)
            items = [
                UrlItem(
                    submitted=line,
                    canonical=canonicalize_url(
                        line,
                        allow_hosts=settings.HOTLINE_FETCH_ALLOW_HOSTS,
                        max_length=settings.HOTLINE_MAX_URL_LENGTH,
                    ),
                )
                for line in report.urls
            ]
            description = f"{DEMO_MARKER} Synthetic demo report {index + 1}. {report.description}".strip()
            report_create_public(
                url_items=items,
                category=report.category,
                ai_suspected=report.ai_suspected,
                where_found=report.where_found,
                description=description,
                email=report.email,
            )
        return max(0, wanted - existing)
