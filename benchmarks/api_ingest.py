"""Partner API ingest throughput: batches of reports through the real view, and hash-list imports.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python benchmarks/api_ingest.py [--batches 5] [--hashes 1000000] [--no-command] \\
        [--enqueue-broker redis://127.0.0.1:6379/15]

Reports: a partner with a bearer token POSTs batches of reports to /api/v1/reports/batch through
django.test.Client (the whole middleware stack, token authentication, the rate limit in Redis when
REDIS_URL is set, per-item validation and URL canonicalisation, the service, the response summaries
and JSON rendering; no network socket). Each report has an external id, 2 URLs (about 30% of them
already known, some with tracking parameters to strip) and 2 hashes (MD5 + SHA-256, about 1% of the
MD5s on a known hash list). The baseline calls `partner_reports_submit` alone with inputs validated
and canonicalised beforehand; `ratio` = service rate / view rate: what the web layer costs on top.

Hashes: `hashlist_import` of N generated entries (MD5, SHA-1, SHA-256 and PDQ, random hex, some in
upper case, ~1% repeated, a few invalid) into a new list; then the same through
`manage.py import_hashes` on a temporary CSV file (writing the file is not timed).

The process pins itself to one CPU when the OS allows it (PostgreSQL and Redis are separate
processes and are not pinned). The run uses its own database, `<DATABASE_URL's database>_api_bench`,
created and migrated at the start and dropped at the end, and its own cache key prefix, so real data
and real partners' rate-limit counters are never touched. HOTLINE_ENQUEUE_TASKS is switched off:
this measures intake, and no task naming this database's ids reaches a real worker.
`--enqueue-broker` adds a measurement with tasks queued, to a throwaway Redis database. Wall times depend
on what else the machine runs; the *_cpu_* figures (this process's CPU time) are steadier.
It prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _bench  # first: imports come from the repository (see _bench)

REPO = Path(__file__).resolve().parent.parent
TARGET_REPORTS_PER_SECOND = 1000
TARGET_HASHES = 1_000_000
TARGET_HASH_SECONDS = 60.0
KNOWN_URL_POOL = 5000
KNOWN_URL_SHARE = 0.30
KNOWN_HASH_POOL = 10_000
KNOWN_HASH_SHARE = 0.01
HASH_ALGORITHMS = (("md5", 16), ("sha1", 20), ("sha256", 32), ("pdq", 32))  # (name, bytes)
CATEGORIES = ("csam", "ai_csam", "sextortion", "other")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=5, help="timed batches per path (default 5)")
    parser.add_argument("--batch-size", type=int, default=1000, help="reports per batch (default 1000)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches per path first (default 2)")
    parser.add_argument(
        "--hashes", type=int, default=TARGET_HASHES, help=f"entries to import (default {TARGET_HASHES:,}; 0 skips)"
    )
    parser.add_argument("--no-command", action="store_true", help="skip the import_hashes command timing")
    parser.add_argument("--seed", type=int, default=20250101, help="random seed for the generated data")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    parser.add_argument(
        "--enqueue-broker",
        metavar="REDIS_URL",
        help="also time batches with pipeline tasks queued, to this Redis database (e.g. "
        "redis://127.0.0.1:6379/15) under a key prefix of the run's own, deleted at the end. "
        "Never the real broker's database.",
    )
    parser.add_argument("--allow-sqlite", action="store_true", help="run on SQLite too (numbers mean little there)")
    return parser.parse_args(argv)


def pin_to_one_cpu(disabled: bool) -> dict[str, Any]:
    if disabled:
        return {"pinned": False, "reason": "--no-pin"}
    if not hasattr(os, "sched_setaffinity"):
        return {"pinned": False, "reason": "os.sched_setaffinity is not available on this OS"}
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1]
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return {"pinned": False, "reason": str(exc)}
    return {
        "pinned": True,
        "cpu": cpu,
        "cpus_available": len(allowed),
        "note": "this Python process only; the PostgreSQL and Redis servers run unpinned",
    }


def hex_value(rng: random.Random, size: int) -> str:
    return rng.randbytes(size).hex()


class ReportFactory:
    """Deterministic, unique report payloads: 2 URLs (some known), MD5 + SHA-256 (some known)."""

    def __init__(self, rng: random.Random, known_urls: list[str], known_md5s: list[str]) -> None:
        self.rng = rng
        self.known_urls = known_urls
        self.known_md5s = known_md5s
        self.counter = 0
        self.known_url_count = 0
        self.url_count = 0

    def url(self, n: int, position: int) -> str:
        self.url_count += 1
        if self.rng.random() < KNOWN_URL_SHARE:
            self.known_url_count += 1
            # Known URLs are drawn from disjoint halves of the pool, so a report never names one twice.
            half = len(self.known_urls) // 2
            return self.known_urls[position * half + self.rng.randrange(half)]
        host = f"host{n % 997}.example"
        if position == 0:
            return f"https://{host}/gallery/{n}/index.html?utm_source=bench&page=2"
        return f"https://cdn.example.com/{n}/{hex_value(self.rng, 6)}.jpg"

    def report(self) -> dict[str, Any]:
        self.counter += 1
        n = self.counter
        rng = self.rng
        md5 = rng.choice(self.known_md5s) if rng.random() < KNOWN_HASH_SHARE else hex_value(rng, 16)
        return {
            "external_id": f"bench-{n}",
            "urls": [self.url(n, 0), self.url(n, 1)],
            "hashes": [{"algorithm": "md5", "value": md5}, {"algorithm": "sha256", "value": hex_value(rng, 32)}],
            "category": CATEGORIES[n % len(CATEGORIES)],
            "ai_suspected": (None, False, True)[n % 3],
            "note": "" if n % 5 else "Synthetic benchmark report.",
        }

    def batch(self, size: int) -> list[dict[str, Any]]:
        return [self.report() for _ in range(size)]


def generate_hash_entries(count: int, rng: random.Random) -> tuple[list[tuple[str, str, str]], int, int]:
    """`count` entries: ~1% repeats of earlier ones (some in other case), a few invalid ones.
    Returns the entries, how many are repeats and how many are invalid."""
    invalid_rows = [
        ("md5", "z" * 32, ""),  # not hex
        ("sha1", "ab" * 10 + "0", ""),  # wrong length
        ("crc32", "deadbeef" * 4, ""),  # unknown algorithm
        ("sha256", "", ""),  # empty
        ("pdq", "0" * 64, "not-a-category"),  # unknown category
    ]
    invalid = min(len(invalid_rows) * 2, count // 1000) if count >= 1000 else 0
    duplicates = count // 100
    unique = count - duplicates - invalid
    entries: list[tuple[str, str, str]] = []
    for i in range(unique):
        algorithm, size = HASH_ALGORITHMS[i % len(HASH_ALGORITHMS)]
        value = hex_value(rng, size)
        if i % 10 == 0:
            value = value.upper()
        category = "" if i % 7 else CATEGORIES[i % 2]  # mostly the list's default, some explicit
        entries.append((algorithm, value, category))
    for _ in range(duplicates):
        algorithm, value, category = entries[rng.randrange(unique)]
        entries.append((algorithm.upper() if rng.random() < 0.1 else algorithm, value.lower(), category))
    entries.extend(invalid_rows[i % len(invalid_rows)] for i in range(invalid))
    rng.shuffle(entries)
    return entries, duplicates, invalid


def measure_with_enqueue(
    args: argparse.Namespace, post_batch: Callable[[str], dict[str, Any]], batch_body: Callable[[], str]
) -> dict[str, Any]:
    """Time batches with HOTLINE_ENQUEUE_TASKS on, publishing to `--enqueue-broker` under a key prefix of
    this run's own. No worker listens there, so no task ever runs against this benchmark's database, and
    only this run's keys are deleted at the end: others using the same Redis database are left alone."""
    import redis
    from django.conf import settings

    from hotline.celery import app

    prefix = f"hotline-api-bench-{os.getpid()}:"
    broker = redis.Redis.from_url(args.enqueue_broker)
    old = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.task_always_eager = args.enqueue_broker, False
    app.conf.broker_transport_options = {**(old[2] or {}), "global_keyprefix": prefix}
    settings.HOTLINE_ENQUEUE_TASKS = True
    try:
        bodies = [batch_body() for _ in range(args.batches)]
        post_batch(batch_body())  # warm up the broker connection
        durations: list[float] = []
        cpu: list[float] = []
        for body in bodies:
            t0, c0 = time.perf_counter(), time.process_time()
            post_batch(body)
            durations.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        queued = {queue: broker.llen(prefix + queue) for queue in ("fetch", "match")}
    finally:
        settings.HOTLINE_ENQUEUE_TASKS = False
        app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options = old
        app.pool.force_close_all()
        for key in broker.scan_iter(match=prefix + "*"):
            broker.delete(key)
    if not any(queued.values()):
        raise RuntimeError(f"no task reached {args.enqueue_broker} under {prefix}: the measurement is void")
    return {
        "broker": args.enqueue_broker,
        "batches_timed": args.batches,
        "reports_per_second_view": round(args.batches * args.batch_size / sum(durations), 1),
        "mean_seconds_per_batch_view": round(statistics.fmean(durations), 3),
        "mean_cpu_seconds_per_batch_view": round(statistics.fmean(cpu), 3),
        "tasks_queued_per_batch": {queue: round(n / (args.batches + 1)) for queue, n in queued.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    affinity = pin_to_one_cpu(args.no_pin)
    load_average = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    # Rate-limit counters are keyed by partner id: keep this run's apart from real partners'.
    _bench.setup_django(HOTLINE_CACHE_PREFIX=os.environ.get("HOTLINE_CACHE_PREFIX", "hotline") + "-api-bench")

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

    from reports.lib.urls import canonicalize_url
    from reports.models import KnownHash, Report, ReportedUrl, SubmittedHash, Url
    from reports.selectors.partners import report_submit_summaries
    from reports.services.intake import UrlItem
    from reports.services.matching import hashlist_create, hashlist_import
    from reports.services.partners import PartnerReportInput, partner_create, partner_reports_submit

    vendor = connection.vendor
    if vendor == "sqlite" and not args.allow_sqlite:
        print(
            "benchmarks/api_ingest.py measures the production database: set DATABASE_URL to PostgreSQL "
            "(e.g. postgres://postgres@127.0.0.1:5432/test), or pass --allow-sqlite.",
            file=sys.stderr,
        )
        return 2

    # Run as production would: no debug query log growing in memory, no rate limit in the way.
    settings.DEBUG = False
    settings.HOTLINE_API_RATE_LIMIT = 10**9
    # Measure intake alone, and never hand this database's ids to a real pipeline worker: no tasks queued.
    settings.HOTLINE_ENQUEUE_TASKS = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]

    test_settings = connection.settings_dict.setdefault("TEST", {})
    if vendor != "sqlite":
        test_settings["NAME"] = f"{connection.settings_dict['NAME']}_api_bench"
    old_config = setup_databases(verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set())
    try:
        rng = random.Random(args.seed)
        partner, issued = partner_create(name="Benchmark hotline", kind="hotline", country="NL")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

        # Known URLs (reported before) and a known hash list, so both "known" paths are exercised.
        known_urls = [f"https://known{i % 211}.example/album/{i}/photo.jpg" for i in range(KNOWN_URL_POOL)]
        seed_inputs = [
            PartnerReportInput(
                url_items=[UrlItem(submitted=u, canonical=canonicalize_url(u)) for u in known_urls[i : i + 2]],
                hashes=[],
                category="csam",
                ai_suspected="unknown",
                external_id=f"seed-{i}",
            )
            for i in range(0, KNOWN_URL_POOL, 2)
        ]
        partner_reports_submit(partner=partner, items=seed_inputs)
        known_list = hashlist_create(name="Benchmark known hashes", source=partner)
        known_md5s = [hex_value(rng, 16) for _ in range(KNOWN_HASH_POOL)]
        hashlist_import(hash_list=known_list, entries=(("md5", v, "") for v in known_md5s))
        factory = ReportFactory(rng, known_urls, known_md5s)

        # ---- View: POST /api/v1/reports/batch --------------------------------------------------
        def post_batch(body: str) -> dict[str, Any]:
            response = client.post("/api/v1/reports/batch", body, content_type="application/json")
            if response.status_code != 200:
                raise RuntimeError(f"batch: HTTP {response.status_code}: {response.content[:500]!r}")
            return response.json()

        def batch_body() -> str:
            return json.dumps({"reports": factory.batch(args.batch_size)})

        for _ in range(args.warmup):
            post_batch(batch_body())
        factory.known_url_count = factory.url_count = 0
        view_bodies = [batch_body() for _ in range(args.batches)]
        view_durations: list[float] = []
        view_cpu: list[float] = []
        created = 0
        gc.collect()
        for body in view_bodies:
            t0, c0 = time.perf_counter(), time.process_time()
            answer = post_batch(body)
            view_durations.append(time.perf_counter() - t0)
            view_cpu.append(time.process_time() - c0)
            created += answer["created"]
            if answer["created"] != args.batch_size:
                raise RuntimeError(f"batch: expected {args.batch_size} created, got {answer}")
        known_url_share = factory.known_url_count / max(1, factory.url_count)
        with CaptureQueriesContext(connection) as view_queries:
            post_batch(batch_body())
        view_query_count = len(view_queries)  # now: the next request's request_started clears the log
        replay = post_batch(view_bodies[0])  # the same batch again: all replays, nothing stored
        if replay["replayed"] != args.batch_size:
            raise RuntimeError(f"replay: expected {args.batch_size} replayed, got {replay['replayed']}")
        replay_durations: list[float] = []
        for body in view_bodies[:2]:
            t0 = time.perf_counter()
            post_batch(body)
            replay_durations.append(time.perf_counter() - t0)

        enqueue_result = measure_with_enqueue(args, post_batch, batch_body) if args.enqueue_broker else None

        # ---- Service alone: partner_reports_submit on pre-validated inputs --------------------
        def service_inputs() -> list[PartnerReportInput]:
            inputs = []
            for raw in factory.batch(args.batch_size):
                inputs.append(
                    PartnerReportInput(
                        url_items=[UrlItem(submitted=u, canonical=canonicalize_url(u)) for u in raw["urls"]],
                        hashes=[(h["algorithm"], h["value"]) for h in raw["hashes"]],
                        category=raw["category"],
                        ai_suspected={True: "yes", False: "no", None: "unknown"}[raw["ai_suspected"]],
                        note=raw["note"],
                        external_id=raw["external_id"],
                    )
                )
            return inputs

        for _ in range(args.warmup):
            partner_reports_submit(partner=partner, items=service_inputs())
        service_batches = [service_inputs() for _ in range(args.batches)]
        service_durations: list[float] = []
        service_cpu: list[float] = []
        summary_durations: list[float] = []
        gc.collect()
        for inputs in service_batches:
            t0, c0 = time.perf_counter(), time.process_time()
            stored = partner_reports_submit(partner=partner, items=inputs)
            t1 = time.perf_counter()
            service_cpu.append(time.process_time() - c0)
            report_submit_summaries([result.report for result in stored])
            summary_durations.append(time.perf_counter() - t1)
            service_durations.append(t1 - t0)
        with CaptureQueriesContext(connection) as service_queries:
            partner_reports_submit(partner=partner, items=service_inputs())
        service_query_count = len(service_queries)

        view_durations.sort()
        service_durations.sort()
        view_rate = args.batches * args.batch_size / sum(view_durations)
        service_rate = args.batches * args.batch_size / sum(service_durations)
        reports_result: dict[str, Any] = {
            "batch_size": args.batch_size,
            "batches_timed": args.batches,
            "warmup_batches": args.warmup,
            "urls_per_report": 2,
            "hashes_per_report": 2,
            "known_url_share": round(known_url_share, 3),
            "reports_per_second_view": round(view_rate, 1),
            "reports_per_second_service": round(service_rate, 1),
            "ratio_service_to_view": round(service_rate / view_rate, 2),
            # What one core could do with the machine to itself: batch size / this process's CPU per batch.
            "reports_per_cpu_second_view": round(args.batch_size / statistics.fmean(view_cpu), 1),
            "p50_seconds_per_batch_view": round(_bench.percentile(view_durations, 0.50), 3),
            "p99_seconds_per_batch_view": round(_bench.percentile(view_durations, 0.99), 3),
            "p50_seconds_per_batch_service": round(_bench.percentile(service_durations, 0.50), 3),
            "p99_seconds_per_batch_service": round(_bench.percentile(service_durations, 0.99), 3),
            "mean_cpu_seconds_per_batch_view": round(statistics.fmean(view_cpu), 3),
            "mean_cpu_seconds_per_batch_service": round(statistics.fmean(service_cpu), 3),
            "mean_seconds_per_batch_summaries": round(statistics.fmean(summary_durations), 3),
            "mean_seconds_per_batch_replayed_view": round(statistics.fmean(replay_durations), 3),
            "queries_per_batch_view": view_query_count,
            "queries_per_batch_service": service_query_count,
            "reports_in_table": Report.objects.count(),
            "urls_in_table": Url.objects.count(),
            "sightings_in_table": ReportedUrl.objects.count(),
            "submitted_hashes_in_table": SubmittedHash.objects.count(),
        }

        # ---- Hash-list import --------------------------------------------------------------------
        hashes_result: dict[str, Any] = {"entries": args.hashes}
        if args.hashes > 0:
            entries, duplicates, invalid = generate_hash_entries(args.hashes, random.Random(args.seed + 1))
            hash_list = hashlist_create(name="Benchmark import", source=partner)
            gc.collect()
            t0 = time.perf_counter()
            imported = hashlist_import(hash_list=hash_list, entries=entries)
            service_seconds = time.perf_counter() - t0
            expected_added = args.hashes - duplicates - invalid
            if (imported.added, imported.duplicates, imported.invalid) != (expected_added, duplicates, invalid):
                raise RuntimeError(f"import: expected {expected_added}/{duplicates}/{invalid}, got {imported}")
            hashes_result.update(
                {
                    "algorithms": [name for name, _ in HASH_ALGORITHMS],
                    "added": imported.added,
                    "duplicates": imported.duplicates,
                    "invalid": imported.invalid,
                    "seconds_service": round(service_seconds, 2),
                    "hashes_per_second_service": round(args.hashes / service_seconds),
                }
            )
            if not args.no_command:
                with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
                    path = Path(tmp) / "hashes.csv"
                    with path.open("w", encoding="utf-8") as handle:
                        handle.write("algorithm,value,category\n")
                        handle.writelines(f"{a},{v},{c}\n" for a, v, c in entries)
                    del entries
                    gc.collect()
                    with open(os.devnull, "w") as out:
                        t0 = time.perf_counter()
                        call_command("import_hashes", "Benchmark import via command", str(path), stdout=out, stderr=out)
                        command_seconds = time.perf_counter() - t0
                added = KnownHash.objects.filter(hash_list__name="Benchmark import via command").count()
                if added != expected_added:
                    raise RuntimeError(f"import_hashes: expected {expected_added} entries, found {added}")
                hashes_result.update(
                    {
                        "seconds_command": round(command_seconds, 2),
                        "hashes_per_second_command": round(args.hashes / command_seconds),
                    }
                )
            hashes_result["known_hashes_in_table"] = KnownHash.objects.count()

        hash_seconds = hashes_result.get("seconds_service")
        hash_target_seconds = TARGET_HASH_SECONDS * args.hashes / TARGET_HASHES
        hash_target = f"{TARGET_HASHES:,} hashes < {TARGET_HASH_SECONDS:.0f} s through hashlist_import"
        if args.hashes != TARGET_HASHES:
            hash_target += f" (scaled to this run: {args.hashes:,} < {hash_target_seconds:.1f} s)"
        result = {
            "benchmark": "api_ingest",
            "reports": reports_result,
            "hashes": hashes_result,
            "targets": {
                "reports_per_second_view": {
                    "target": f">= {TARGET_REPORTS_PER_SECOND} reports/s on one core",
                    "measured": reports_result["reports_per_second_view"],
                    "met": view_rate >= TARGET_REPORTS_PER_SECOND,
                },
                "hash_import": {
                    "target": hash_target,
                    "measured_seconds": hash_seconds,
                    "met": None if hash_seconds is None else hash_seconds < hash_target_seconds,
                },
            },
            "pipeline_tasks_enqueued": False,
            "with_enqueue": enqueue_result,
            "cpu_affinity": affinity,
            "load_average_at_start": load_average,
            "database_vendor": vendor,
            "database_version": ".".join(str(part) for part in connection.get_database_version()),
            "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
            "python": platform.python_version(),
        }
    finally:
        teardown_databases(old_config, verbosity=0)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
