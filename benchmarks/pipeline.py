"""Pipeline throughput: images per second per Celery worker process, end to end from report to case.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python benchmarks/pipeline.py [--images 480] [--variants 120] [--profile]

What runs: a `SyntheticSite` in a child process on 127.0.0.1 serves generated 1024 x 768 JPEGs
(collages of generated, grainy tiles: every image distinct, each decoded like a photo) and variants
of some of them (resized, greyscale, brightened, cropped, mirrored, re-encoded). Public reports of
`--per-report` URLs each go through `report_create_public`, which enqueues the fetches on commit to a
real Redis broker; ONE real worker (`celery -A hotline worker -Q default,fetch,match -c 1`) fetches,
hashes, previews, records, matches and cases them in PostgreSQL. The clock runs from the first report
to the moment every URL is fetched and every content matched (its case refreshed). A warm-up batch
goes through first, so imports, connections and the match index are already loaded.

Where the time goes, measured in the same run:
- `in_process_stage_ms`: each stage alone, in this process without Celery, on other images from the
  same site (wall median and mean, and this process's CPU): `safe_fetch`, `digest_image` (decode and
  hashes), `make_preview`, `encrypt_preview`, `read_provenance`, `inspect_image` (the last four
  together, as the fetch runs them), `record_db` (`fetching._record` of one URL alone: content, capture, URL,
  case; the worker records `--per-report` URLs per transaction)
  and `contents_match` (in batches of MATCH_BATCH contents, per content), with their queries counted.
- `worker_task_ms_per_image`: time inside the worker's tasks, from its "succeeded in" log lines; the
  rest of the wall clock (`worker_between_tasks_ms_per_image`) is Celery handing over the next task.
- `cpu_ms_per_image`: CPU from /proc of the pool child, the worker's main process, the site, this
  process, PostgreSQL and Redis (processes alive at the end: with a connection per task, exited
  backends are missed), and the whole machine; `..._other_processes` is whatever else ran meanwhile.
- `--profile`: py-spy samples the pool child's task thread (idle included) and splits its wall time
  into stages (`profile.ms_per_image`), with the share spent inside psycopg (database round trips).

`--worker-env NAME=VALUE` changes the worker's environment, e.g. `CELERY_DB_REUSE_MAX=0` (Celery's
own reconnect-per-task) or `PGOPTIONS=-c synchronous_commit=off`, for comparisons.

The run uses its own database, `<DATABASE_URL's database>_pipeline_bench` (created, migrated and dropped),
and its own Redis database and key prefix for the broker. Every server and request stays on loopback.
It prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import multiprocessing
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import _bench  # first: imports come from the repository (see _bench)
import numpy as np
from PIL import Image

REPO = _bench.REPO

from reports.lib.synthetic import VARIANTS, Response, SyntheticSite, encode, scene, variant  # noqa: E402

WIDTH, HEIGHT = 1024, 768
TILE_W, TILE_H, GRID = 256, 192, 4
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROFILE_RATE = 250
# Contents per matching batch in the in-process stages (the worker's batches are whatever its
# HOTLINE_MATCH_BATCH_DELAY collects).
MATCH_BATCH = 10
# Where the pool child's wall time goes, from py-spy samples (idle ones included) of its task thread:
# each sample counts for the first bucket whose function is on its stack; the rest is the child
# waiting for its next task (Celery's dispatch from the main process, acknowledgements, BRPOP).
PROFILE_BUCKETS = (
    ("fetch_network_safe_fetch", "safe_fetch"),
    ("fetch_decode_and_hashes_digest_image", "digest_image"),
    ("fetch_preview_make_preview", "make_preview"),
    ("fetch_preview_encryption", "encrypt_preview"),
    ("fetch_provenance", "read_provenance"),
    ("fetch_db_case_for_url", "cases_for_urls"),
    ("fetch_db_content_capture_url", "_record"),
    ("fetch_db_read_url_and_rest", "urls_fetch"),
    ("match_index_catch_up", "catch_up"),
    ("match_db_cases_refresh", "cases_refresh"),
    ("match_db_lookups_and_writes", "contents_match"),
    ("celery_task_bookkeeping_in_child", "trace_task"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=480, help="distinct timed images (default 480)")
    parser.add_argument("--variants", type=int, default=120, help="timed variants of those images (default 120)")
    parser.add_argument("--per-report", type=int, default=5, help="URLs per public report (default 5)")
    parser.add_argument("--warmup", type=int, default=20, help="images through the worker before timing (20)")
    parser.add_argument("--baseline", type=int, default=100, help="images for the in-process stages (100)")
    parser.add_argument("--concurrency", type=int, default=1, help="worker pool processes (default 1)")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds (600)")
    parser.add_argument("--broker-url", default="", help="default: REDIS_URL's server, database 15 (14)")
    parser.add_argument("--loglevel", default="info", help="worker log level (default info, as in production)")
    parser.add_argument("--profile", action="store_true", help="sample the worker's pool child with py-spy")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help='extra environment for the worker, e.g. PGOPTIONS="-c synchronous_commit=off" (repeatable)',
    )
    return parser.parse_args(argv)


# --- Images ----------------------------------------------------------------------------------


def tile_bank(count: int = 48) -> list[Image.Image]:
    """Generated tiles (gradients and shapes, with grain so the JPEG entropy decoder has work)."""
    rng = np.random.default_rng(2024)
    tiles = []
    for seed in range(count):
        tile = np.asarray(scene(10_000 + seed, TILE_W, TILE_H), dtype=np.int16)
        grain = rng.integers(-10, 11, tile.shape, dtype=np.int16)
        tiles.append(Image.fromarray(np.clip(tile + grain, 0, 255).astype(np.uint8), "RGB"))
    return tiles


def collage(index: int, tiles: list[Image.Image]) -> Image.Image:
    """Image `index`: a 4 x 4 arrangement of tiles drawn without replacement, some mirrored."""
    rng = random.Random(index)
    picks = rng.sample(range(len(tiles)), GRID * GRID)
    image = Image.new("RGB", (WIDTH, HEIGHT))
    for slot, pick in enumerate(picks):
        tile = tiles[pick]
        if rng.random() < 0.5:
            tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image.paste(tile, ((slot % GRID) * TILE_W, (slot // GRID) * TILE_H))
    return image


def make_images(first: int, count: int, tiles: list[Image.Image]) -> list[Image.Image]:
    return [collage(first + i, tiles) for i in range(count)]


def jpeg(image: Image.Image) -> bytes:
    return encode(image, "JPEG", quality=85)


# --- The site, in a process of its own ---------------------------------------------------------


def _serve(bodies: dict[str, bytes], conn: Any) -> None:
    routes = {path: (lambda body=body: Response(body=body)) for path, body in bodies.items()}
    with SyntheticSite(routes=routes) as site:
        conn.send(site.port)
        conn.recv()  # until told to stop


class SiteProcess:
    def __init__(self, bodies: dict[str, bytes]) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_serve, args=(bodies, child_conn), daemon=True)
        self.process.start()
        if not self.conn.poll(30):
            raise RuntimeError("the synthetic site did not start")
        self.port = self.conn.recv()
        self.authority = f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.authority}{path}"

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


# --- Processes, CPU ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def cpu_by_pid_named(*names: str) -> dict[int, float]:
    """CPU seconds of each process whose command name is one of `names` (PostgreSQL, Redis)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                name = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if name in names:
                found[int(entry)] = cpu_seconds(int(entry))
    return found


def cpu_used_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used in between by the processes alive at the end (ones that exited meanwhile are missed)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def task_runtimes(log: str) -> dict[str, list[float]]:
    """Seconds each task took in the pool, from the worker's "succeeded in" log lines."""
    found: dict[str, list[float]] = collections.defaultdict(list)
    for match in re.finditer(r"Task reports\.tasks\.\w+\.(\w+)\[[^\]]+\] succeeded in ([0-9.]+)s", log):
        found[match.group(1)].append(float(match.group(2)))
    return found


def machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def broker_url_for(redis_url: str) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path="/14" if parts.path.strip("/") == "15" else "/15"))


def database_url(settings_dict: dict[str, Any]) -> str:
    user, password = quote(settings_dict["USER"] or "", safe=""), quote(settings_dict["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(settings_dict["HOST"] or "localhost", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgres://{auth}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


class Stages:
    """Wall and CPU (this process's) seconds of each call, by stage name."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = collections.defaultdict(list)
        self.cpu: dict[str, list[float]] = collections.defaultdict(list)

    def run(self, name: str, function: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        value = function()
        self.cpu[name].append(time.process_time() - cpu)
        self.wall[name].append(time.perf_counter() - wall)
        return value

    def mean_ms(self, name: str) -> float:
        return statistics.fmean(self.wall[name]) * 1000

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "median": round(statistics.median(values) * 1000, 3),
                "mean": round(statistics.fmean(values) * 1000, 3),
                "cpu_mean": round(statistics.fmean(self.cpu[name]) * 1000, 3),
            }
            for name, values in self.wall.items()
        }


def _function(frame: str) -> str:
    return frame.split(" (", 1)[0].rsplit(".", 1)[-1]


def summarise_profile(path: Path, *, elapsed: float, images: int) -> dict[str, Any]:
    """Milliseconds per image of the pool child's wall time in each PROFILE_BUCKETS stage, from
    py-spy's raw output; samples are 1/PROFILE_RATE s each. Sampling starts a little before the
    timed run and stops a little after it: that surplus is taken off the waiting bucket."""
    counts: collections.Counter[str] = collections.Counter()
    in_psycopg = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        functions = {_function(frame) for frame in frames}
        if "workloop" not in functions:
            continue  # not the thread that runs tasks (resolver pool, fetch watchdogs)
        bucket = next((label for label, name in PROFILE_BUCKETS if name in functions), "celery_waiting_for_next_task")
        counts[bucket] += int(count)
        if any("psycopg/" in frame for frame in frames):
            in_psycopg += int(count)
    sampled = sum(counts.values()) / PROFILE_RATE
    counts["celery_waiting_for_next_task"] -= round(max(0.0, sampled - elapsed) * PROFILE_RATE)
    per_image = {
        label: round(1000 * counts[label] / PROFILE_RATE / images, 2)
        for label in [*(label for label, _ in PROFILE_BUCKETS), "celery_waiting_for_next_task"]
    }
    return {
        "ms_per_image": per_image,
        "sum_ms_per_image": round(sum(per_image.values()), 2),
        "of_which_in_psycopg_ms_per_image": round(1000 * in_psycopg / PROFILE_RATE / images, 2),
        "samples": sum(counts.values()),
    }


# --- The run -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    redis_url = os.environ.get("REDIS_URL", "")
    broker_url = args.broker_url or (broker_url_for(redis_url) if redis_url else "")
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) or not broker_url:
        print(
            "benchmarks/pipeline.py needs PostgreSQL and Redis: set DATABASE_URL=postgres://… and REDIS_URL=redis://…",
            file=sys.stderr,
        )
        return 2
    prefix = f"hotline-bench-{uuid.uuid4().hex[:12]}:"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hotline.settings")
    os.environ.setdefault("HOTLINE_TESTING", "1")  # dev fallbacks for keys; DEBUG stays off
    os.environ["CELERY_BROKER_URL"] = broker_url
    os.environ["CELERY_BROKER_KEY_PREFIX"] = prefix

    # Images first, and the site's process forked before Django opens any connection.
    began = time.perf_counter()
    tiles = tile_bank()
    total_timed = args.images + args.variants
    originals = make_images(0, args.images + args.warmup + args.baseline, tiles)
    bodies: dict[str, bytes] = {}
    for i, image in enumerate(originals):
        bodies[f"/img/{i}.jpg"] = jpeg(image)
    variant_paths = []
    for j in range(args.variants):
        name = VARIANTS[j % len(VARIANTS)]
        source = j % max(1, args.images)
        path = f"/img/{source}/{name}.jpg"
        bodies[path] = encode(variant(originals[source], name), "JPEG", quality=70 if name == "reencoded" else 85)
        variant_paths.append(path)
    del originals
    generate_seconds = time.perf_counter() - began
    timed_paths = [f"/img/{i}.jpg" for i in range(args.images)] + variant_paths
    warmup_paths = [f"/img/{args.images + i}.jpg" for i in range(args.warmup)]
    baseline_paths = [f"/img/{args.images + args.warmup + i}.jpg" for i in range(args.baseline)]
    site = SiteProcess(bodies)

    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.db import connection
    from django.db.models import Q
    from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

    from hotline.celery import app as celery_app
    from reports.lib.imaging import digest_image, encrypt_preview, make_preview
    from reports.lib.provenance import read_provenance
    from reports.lib.safe_fetch import safe_fetch
    from reports.lib.urls import canonicalize_url
    from reports.models import Case, Content, Match, Url
    from reports.models.choices import FetchStatus
    from reports.services import fetching
    from reports.services.intake import UrlItem, report_create_public
    from reports.services.matching import contents_match

    settings.DEBUG = False
    settings.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    assert celery_app.conf.broker_url == broker_url
    assert not celery_app.conf.task_always_eager
    broker = redis.Redis.from_url(broker_url, socket_timeout=10)
    broker.ping()

    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{connection.settings_dict['NAME']}_pipeline_bench"
    old_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    worker: subprocess.Popen[bytes] | None = None
    spy: subprocess.Popen[bytes] | None = None
    log_file = tempfile.NamedTemporaryFile(prefix="pipeline-bench-worker-", suffix=".log", delete=False)  # noqa: SIM115
    try:

        def submit(paths: list[str]) -> None:
            for start in range(0, len(paths), args.per_report):
                items = [
                    UrlItem(submitted=url, canonical=canonicalize_url(url, allow_hosts=[site.authority]))
                    for url in (site.url(p) for p in paths[start : start + args.per_report])
                ]
                report_create_public(url_items=items, category="csam", ai_suspected="unknown", where_found="website")

        def done(expected_urls: int) -> bool:
            return (
                Url.objects.count() == expected_urls
                and not Url.objects.filter(fetch_status=FetchStatus.PENDING).exists()
                and not Content.objects.filter(matched_at__isnull=True).exists()
            )

        # 1. Stages alone, in this process (no Celery, nothing enqueued).
        settings.HOTLINE_ENQUEUE_TASKS = False
        stages = Stages()
        queries: dict[str, list[int]] = collections.defaultdict(list)
        submit(baseline_paths)
        options = fetching.fetch_options()
        keys = settings.HOTLINE_PREVIEW_KEYS
        pending: list[int] = []
        for path in baseline_paths:
            url = site.url(path)
            result = stages.run("safe_fetch", lambda url=url: safe_fetch(url, **options))
            body = result.body
            _digest, image = stages.run("digest_image", lambda body=body: digest_image(body, max_pixels=50_000_000))
            preview = stages.run("make_preview", lambda image=image: make_preview(image))
            stages.run("encrypt_preview", lambda preview=preview: encrypt_preview(preview, keys))
            stages.run("read_provenance", lambda body=body, image=image: read_provenance(body, image))
            inspected = stages.run("inspect_image", lambda result=result: fetching.inspect_image(result))
            url_id = Url.objects.only("pk").get(canonical_url=url).pk
            with CaptureQueriesContext(connection) as captured:
                (outcome,) = stages.run(
                    "record_db",
                    lambda url_id=url_id, inspected=inspected: fetching._record(
                        [(url_id, inspected)], final_attempt=True
                    ),
                )
            queries["record_db"].append(len(captured))
            pending.extend(outcome.new_content_ids)
            if len(pending) == MATCH_BATCH:
                # Matching in batches, as the worker's match_pending_contents does; per content below.
                with CaptureQueriesContext(connection) as captured:
                    stages.run("contents_match_batch", lambda ids=tuple(pending): contents_match(content_ids=ids))
                queries["contents_match_per_content"].append(len(captured) / MATCH_BATCH)
                pending.clear()
        in_process = stages.summary()
        in_process["contents_match_per_content"] = {
            key: round(value / MATCH_BATCH, 3) for key, value in in_process["contents_match_batch"].items()
        }
        parts = ("safe_fetch", "inspect_image", "record_db")
        match_ms = stages.mean_ms("contents_match_batch") / MATCH_BATCH
        in_process_ms = sum(stages.mean_ms(name) for name in parts) + match_ms

        # 2. One real worker.
        settings.HOTLINE_ENQUEUE_TASKS = True
        worker_env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": redis_url,
            "HOTLINE_FETCH_ALLOW_HOSTS": site.authority,
            "HOTLINE_ENQUEUE_TASKS": "1",
        }
        worker_env.update(item.split("=", 1) for item in args.worker_env)
        command = [
            sys.executable, "-m", "celery", "-A", "hotline", "worker", "-Q", "default,fetch,match",
            "-c", str(args.concurrency), "--pool", "prefork", "-l", args.loglevel, "-n", f"bench-{prefix[14:-1]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        worker = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
            command, cwd=REPO, env=worker_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while " ready." not in Path(log_file.name).read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start:\n" + Path(log_file.name).read_text()[-3000:])
            time.sleep(0.1)
        expected = args.baseline + args.warmup
        submit(warmup_paths)
        deadline = time.monotonic() + args.timeout
        while not done(expected):
            if time.monotonic() > deadline:
                raise RuntimeError("warm-up did not finish:\n" + Path(log_file.name).read_text()[-3000:])
            time.sleep(0.2)

        pool = children_of(worker.pid)
        if args.profile:
            spy = subprocess.Popen(  # noqa: S603
                [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pool[0]), "--idle",
                 "--rate", str(PROFILE_RATE), "--format", "raw", "--output", f"{log_file.name}.spy", "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
        cpu_before = {
            "pool": sum(cpu_seconds(pid) for pid in pool),
            "main": cpu_seconds(worker.pid),
            "site": cpu_seconds(site.process.pid),
            "bench": cpu_seconds(os.getpid()),
            "machine": machine_busy_seconds(),
        }
        services_before = cpu_by_pid_named("postgres", "redis-server")
        log_offset = len(Path(log_file.name).read_text(errors="replace"))
        matches_before = Match.objects.count()
        expected += total_timed
        start = time.perf_counter()
        submit(timed_paths)
        submitted = time.perf_counter() - start
        deadline = time.monotonic() + args.timeout
        while not done(expected):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("timed run did not finish:\n" + Path(log_file.name).read_text()[-3000:])
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
        cpu = {
            "pool": sum(cpu_seconds(pid) for pid in pool) - cpu_before["pool"],
            "main": cpu_seconds(worker.pid) - cpu_before["main"],
            "site": cpu_seconds(site.process.pid) - cpu_before["site"],
            "bench": cpu_seconds(os.getpid()) - cpu_before["bench"],
            "postgres_redis": cpu_used_since(services_before, cpu_by_pid_named("postgres", "redis-server")),
            "machine": machine_busy_seconds() - cpu_before["machine"],
        }
        time.sleep(0.5)  # the last "succeeded" line
        runtimes = task_runtimes(Path(log_file.name).read_text(errors="replace")[log_offset:])
        profile = None
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
            profile = summarise_profile(Path(f"{log_file.name}.spy"), elapsed=elapsed, images=total_timed)

        timed_urls = Url.objects.filter(canonical_url__in=[site.url(p) for p in timed_paths])
        variant_contents = Content.objects.filter(captures__url__canonical_url__in=[site.url(p) for p in variant_paths])
        linked_variants = (
            variant_contents.filter(Q(matches__isnull=False) | Q(matched_by__isnull=False)).distinct().count()
        )
        per_image_ms = 1000 * elapsed / total_timed
        result = {
            "benchmark": "pipeline",
            "images": total_timed,
            "distinct": args.images,
            "variants": args.variants,
            "image_size": f"{WIDTH}x{HEIGHT}",
            "mean_bytes": round(statistics.fmean(len(bodies[p]) for p in timed_paths)),
            "worker": {
                "processes": args.concurrency,
                "pool": "prefork",
                "queues": "default,fetch,match",
                "extra_env": args.worker_env,
            },
            "images_per_second": round(total_timed / elapsed, 2),
            "images_per_second_per_process": round(total_timed / elapsed / args.concurrency, 2),
            "target_per_process": 60,
            "met_target": total_timed / elapsed / args.concurrency >= 60,
            "elapsed_seconds": round(elapsed, 2),
            "submit_seconds": round(submitted, 2),
            "ms_per_image_end_to_end": round(per_image_ms, 2),
            "in_process_stage_ms": in_process,
            "in_process_queries_per_image": {name: statistics.fmean(q) for name, q in queries.items()},
            "in_process_sum_ms": round(in_process_ms, 2),
            "celery_and_contention_ms": round(per_image_ms * args.concurrency - in_process_ms, 2),
            "worker_task_ms_per_image": {
                name: round(1000 * sum(values) / total_timed, 2) for name, values in sorted(runtimes.items())
            },
            "worker_between_tasks_ms_per_image": round(
                per_image_ms * args.concurrency - 1000 * sum(map(sum, runtimes.values())) / total_timed, 2
            ),
            "cpu_ms_per_image": {name: round(1000 * seconds / total_timed, 2) for name, seconds in cpu.items()},
            "cpu_ms_per_image_other_processes": round(
                1000 * (cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine")) / total_timed, 2
            ),
            "load_average": os.getloadavg(),
            "check": {
                "urls_fetched": timed_urls.filter(fetch_status=FetchStatus.FETCHED).count(),
                "contents": Content.objects.filter(captures__url__in=timed_urls).distinct().count(),
                "cases": Case.objects.filter(url__in=timed_urls).count(),
                "variants_linked": linked_variants,
                "new_matches": Match.objects.count() - matches_before,
            },
            "profile": profile,
            "generate_seconds": round(generate_seconds, 1),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "database": connection.vendor,
        }
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        site.stop()
        connection.close()
        teardown_databases(old_config, verbosity=0)
        for key in broker.scan_iter(match=f"{prefix}*", count=500):
            broker.delete(key)
        log_file.close()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
