"""Statistics dashboard render time at 10^4, 10^5 and 10^6 reports (about 3 URL sightings each) on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_stats .venv/bin/python benchmarks/stats.py \\
        [--sizes 10000,100000,1000000] [--renders 30]

Per size, in a fresh database `<DATABASE_URL's database>_stats_bench` (created, migrated, dropped):
the synthetic history of `seed_demo --reports N` (reports.services.demo_history: two years, more reports
recently) is written in bulk, the rollups are built once in full (`stats_refresh(full=True)`, what the
first beat run does), and then a few reports arrive today (live figures) and one incremental refresh runs.

Measured with django.test.Client as a verified coordinator (the whole middleware stack, permission
checks, template, SVG charts), `--renders` times each:
- `default`: the dashboard as it opens (last 90 days, per week);
- `year`: 365 days per month;
- `filtered`: 365 days, public reports only, hosting country NL, category CSAM.

Today's figures are computed live and reused for HOTLINE_STATS_LIVE_SECONDS (60 s), so most renders reuse
them; `live_today_compute` is what one such computation costs (at most one render a minute pays it).

Baseline, in the same run on the same data: the same figures for the default 90 days computed straight
from the source tables (`stats_compute` over the period, which is what the page would do on every view
without rollups), `--baseline-runs` times. `growth_1e5_to_1e6` is p50(10^6) / p50(10^5) of the default
view; linear growth would be 10. It prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

import _bench  # first: imports come from the repository (see _bench)

TARGET_P50_MS = 300.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="report counts, comma-separated")
    parser.add_argument("--renders", type=int, default=30, help="timed renders per view and size (default 30)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="timed full-scan computations (default 3)")
    return parser.parse_args(argv)


def timings(fn: Any, runs: int) -> dict[str, float]:
    fn()  # warm-up: connections, template compilation, caches
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(_bench.percentile(samples, 0.95), 1),
        "max_ms": round(samples[-1], 1),
        "runs": runs,
    }


def measure(size: int, args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from reports.models import Report, ReportedUrl, StatsDay, Url
    from reports.selectors.stats import default_filters
    from reports.services.demo_history import seed_history
    from reports.services.staff import staff_create
    from reports.services.stats import stats_compute, stats_refresh
    from reports.tests.factories import login_verified
    from reports.tests.stats_helpers import make_report, make_url

    began = time.perf_counter()
    seeded = seed_history(reports=size)
    seed_seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    began = time.perf_counter()
    stats_refresh(full=True)
    rollup_seconds = time.perf_counter() - began
    # Today's arrivals, counted live; then the incremental refresh beat would run.
    for _ in range(20):
        make_report(when=timezone.now(), urls=[make_url(country="NL")])
    began = time.perf_counter()
    incremental = stats_refresh()
    incremental_seconds = time.perf_counter() - began

    user, _password, _uri = staff_create(username=f"bench-coordinator-{size}", role="coordinator")
    client = login_verified(Client(), user)
    today = timezone.localdate()
    year = {"first": (today - timedelta(days=364)).isoformat(), "grain": "month"}
    views = {
        "default": {},
        "year": year,
        "filtered": {**year, "source": "public", "country": "NL", "category": "csam"},
    }

    def render(params: dict[str, str]) -> None:
        response = client.get("/staff/statistics/", params)
        assert response.status_code == 200, response.status_code

    result: dict[str, Any] = {
        "reports": Report.objects.count(),
        "url_sightings": ReportedUrl.objects.count(),
        "urls": Url.objects.count(),
        "contents": seeded.contents,
        "cases": seeded.cases,
        "assessments": seeded.assessments,
        "referrals": seeded.referrals,
        "rollup_rows": StatsDay.objects.count(),
        "seed_seconds": round(seed_seconds, 1),
        "rollup_full_seconds": round(rollup_seconds, 1),
        "rollup_incremental_seconds": round(incremental_seconds, 2),
        "rollup_incremental_days": incremental["days"],
    }
    for name, params in views.items():
        result[name] = timings(lambda params=params: render(params), args.renders)
    # Today's figures are computed live and cached for HOTLINE_STATS_LIVE_SECONDS: the renders above mostly
    # reuse them; what one computation costs (a cache miss, once a minute) is measured on its own.
    result["live_today_compute"] = timings(lambda: stats_compute(first=today, last=today), 5)
    result["reports_today"] = Report.objects.filter(created_at__date=today).count()
    filters = default_filters(days=90)
    baseline = timings(lambda: stats_compute(first=filters.first, last=filters.last), args.baseline_runs)
    result["baseline_full_scan_default"] = baseline
    result["speedup_vs_full_scan"] = round(baseline["p50_ms"] / result["default"]["p50_ms"], 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _bench.setup_django()

    from django.conf import settings
    from django.db import connection, connections
    from django.test.utils import setup_databases, teardown_databases

    if connection.vendor != "postgresql":
        print("benchmarks/stats.py measures PostgreSQL: set DATABASE_URL.", file=sys.stderr)
        return 2
    settings.DEBUG = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.HOTLINE_ENQUEUE_TASKS = False
    base_name = connection.settings_dict["NAME"]
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[str, Any] = {}
    for size in sizes:
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{base_name}_stats_bench"
        old_config = setup_databases(verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set())
        try:
            results[str(size)] = measure(size, args)
            print(json.dumps({str(size): results[str(size)]}), file=sys.stderr)
        finally:
            connections.close_all()
            teardown_databases(old_config, verbosity=0)
    output: dict[str, Any] = {
        "benchmark": "stats",
        "target_p50_ms_at_1e6": TARGET_P50_MS,
        "sizes": results,
    }
    if "100000" in results and "1000000" in results:
        small, large = results["100000"]["default"]["p50_ms"], results["1000000"]["default"]["p50_ms"]
        output["growth_1e5_to_1e6"] = round(large / small, 2)
        output["meets_target"] = large < TARGET_P50_MS and all(
            results["1000000"][view]["p50_ms"] < TARGET_P50_MS for view in ("default", "year", "filtered")
        )
    output.update(
        {
            "database_version": ".".join(str(part) for part in connection.get_database_version()),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }
    )
    print(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
