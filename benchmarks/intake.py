"""Public intake throughput: reports per second through the real form view, and through the service alone.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/intake.py [--n 2000]

Each report names 3 URLs, one of them already known (a new sighting of an existing `Url`), two new.
The view is driven with django.test.Client: the whole middleware stack, the form's validation and
canonicalisation, the throttle (in Redis when REDIS_URL is set), the service and the receipt
template, without a network socket. The baseline calls `report_create_public` with URLs that are
already canonicalised. `ratio` = service rate / view rate: how much the web layer costs on top.

The run uses its own database, `<name of DATABASE_URL's database>_intake_bench`, created and migrated
at the start and dropped at the end (as Django's test runner does), so real data is never touched.
It prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _bench  # first: imports come from the repository (see _bench)

REPO = Path(__file__).resolve().parent.parent
# An address from TEST-NET-1 (RFC 5737): the throttle window this run leaves behind is no real client's.
CLIENT_ADDRESS = "192.0.2.10"
KNOWN_POOL = 200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="timed reports per path (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed reports per path first (default 200)")
    parser.add_argument(
        "--query-sample", type=int, default=50, help="reports per path whose SQL queries are counted (default 50)"
    )
    parser.add_argument("--allow-sqlite", action="store_true", help="run on SQLite too (numbers mean little there)")
    return parser.parse_args(argv)


def timed(count: int, one: Callable[[int], None], start: int) -> tuple[float, list[float]]:
    """Run `one(start + i)` count times; return the wall time and each call's duration in seconds."""
    durations: list[float] = []
    gc.collect()
    began = time.perf_counter()
    for i in range(start, start + count):
        t0 = time.perf_counter()
        one(i)
        durations.append(time.perf_counter() - t0)
    return time.perf_counter() - began, durations


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _bench.setup_django()

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

    from reports.lib.urls import canonicalize_url
    from reports.models import Report, Url
    from reports.models.choices import AiSuspected, Category, WhereFound
    from reports.services.intake import UrlItem, report_create_public

    vendor = connection.vendor
    if vendor == "sqlite" and not args.allow_sqlite:
        print(
            "benchmarks/intake.py measures the production database: set DATABASE_URL to PostgreSQL "
            "(e.g. postgres://postgres@127.0.0.1:5432/test), or pass --allow-sqlite.",
            file=sys.stderr,
        )
        return 2

    # Run as production would: no debug query log growing in memory, no throttle in the way.
    settings.DEBUG = False
    settings.HOTLINE_REPORT_RATE_LIMIT = 10**9
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]

    test_settings = connection.settings_dict.setdefault("TEST", {})
    if vendor != "sqlite":
        test_settings["NAME"] = f"{connection.settings_dict['NAME']}_intake_bench"
    old_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        categories = list(Category.values)
        ai_values = list(AiSuspected.values)
        where_values = list(WhereFound.values)

        def known_url(i: int) -> str:
            return f"https://known{i % KNOWN_POOL}.example/page/{i % KNOWN_POOL}"

        def new_urls(tag: str, i: int) -> list[str]:
            return [f"https://{tag}{i % 97}.example/item/{i}?utm_source=bench", f"https://example.com/{tag}/{i}/b.jpg"]

        def form_data(i: int) -> dict[str, str]:
            return {
                "urls": "\n".join([known_url(i), *new_urls("view", i)]),
                "category": categories[i % len(categories)],
                "ai_suspected": ai_values[i % len(ai_values)],
                "where_found": where_values[i % len(where_values)],
                "description": "" if i % 4 else "Synthetic benchmark report.",
                "email": "" if i % 10 else "bench@example.org",
            }

        client = Client(REMOTE_ADDR=CLIENT_ADDRESS)

        def post_one(i: int) -> None:
            response = client.post("/report/", form_data(i))
            if response.status_code != 200 or b'data-receipt="pin"' not in response.content:
                raise RuntimeError(f"report {i}: HTTP {response.status_code}, no receipt")

        def url_items(i: int) -> list[UrlItem]:
            return [
                UrlItem(submitted=raw, canonical=canonicalize_url(raw)) for raw in [known_url(i), *new_urls("svc", i)]
            ]

        prepared: dict[int, list[UrlItem]] = {}

        def service_one(i: int) -> None:
            report_create_public(
                url_items=prepared[i],
                category=categories[i % len(categories)],
                ai_suspected=ai_values[i % len(ai_values)],
                where_found=where_values[i % len(where_values)],
                description="" if i % 4 else "Synthetic benchmark report.",
                email="" if i % 10 else "bench@example.org",
            )

        # Make the known pool known, then warm up both paths (templates, connections, caches).
        for i in range(KNOWN_POOL):
            post_one(i)
        total = args.warmup + args.n + args.query_sample
        base = KNOWN_POOL
        prepared.update({i: url_items(i) for i in range(base, base + total)})
        timed(args.warmup, post_one, base)
        timed(args.warmup, service_one, base)

        start = base + args.warmup
        view_seconds, view_durations = timed(args.n, post_one, start)
        service_seconds, service_durations = timed(args.n, service_one, start)

        start += args.n
        with CaptureQueriesContext(connection) as view_queries:
            timed(args.query_sample, post_one, start)
        with CaptureQueriesContext(connection) as service_queries:
            timed(args.query_sample, service_one, start)

        expected_reports = KNOWN_POOL + 2 * total
        if Report.objects.count() != expected_reports:
            raise RuntimeError(f"expected {expected_reports} reports, found {Report.objects.count()}")
        view_durations.sort()
        service_durations.sort()
        view_rate = args.n / view_seconds
        service_rate = args.n / service_seconds
        result = {
            "benchmark": "intake",
            "n": args.n,
            "urls_per_report": 3,
            "known_urls_per_report": 1,
            "reports_per_second_view": round(view_rate, 1),
            "reports_per_second_service": round(service_rate, 1),
            "ratio": round(service_rate / view_rate, 2),
            "p50_ms_view": round(_bench.percentile(view_durations, 0.50) * 1000, 2),
            "p99_ms_view": round(_bench.percentile(view_durations, 0.99) * 1000, 2),
            "p50_ms_service": round(_bench.percentile(service_durations, 0.50) * 1000, 2),
            "p99_ms_service": round(_bench.percentile(service_durations, 0.99) * 1000, 2),
            "mean_ms_view": round(statistics.fmean(view_durations) * 1000, 2),
            "mean_ms_service": round(statistics.fmean(service_durations) * 1000, 2),
            "queries_per_report_view": round(len(view_queries) / args.query_sample, 2),
            "queries_per_report_service": round(len(service_queries) / args.query_sample, 2),
            "database_vendor": vendor,
            "database_version": ".".join(str(part) for part in connection.get_database_version()),
            "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
            "urls_in_table": Url.objects.count(),
            "python": platform.python_version(),
        }
    finally:
        teardown_databases(old_config, verbosity=0)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
