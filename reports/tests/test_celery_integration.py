"""The pipeline with a real Celery worker on real Redis and PostgreSQL: report → fetch → match → case.

Each test starts `celery -A hotline worker` as a subprocess against this test run's PostgreSQL
database, submits public reports through the intake service (which enqueues on commit to the real
broker), and polls the database with bounded waits. Every picture is drawn in code
(`reports.lib.synthetic`) and served by a `SyntheticSite` on 127.0.0.1; the worker may fetch from
that one host:port only.

Isolation: the broker lives in a Redis database other than REDIS_URL's (every test's cache fixture
FLUSHDBs that one, in every xdist process) and under a key prefix of its own, so parallel runs never
see each other's messages. Workers run in their own process group and are SIGKILLed in `finally`.

Skipped unless REDIS_URL points at a reachable Redis and the database is PostgreSQL (a worker
subprocess cannot share pytest's SQLite database reliably).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from kombu import pools as kombu_pools

from hotline.celery import app as celery_app
from reports.lib.synthetic import VARIANTS, Response, SyntheticSite, default_routes, encode, scene
from reports.models import Capture, Case, Content, Match, Url
from reports.models.choices import CaptureError, CaseStatus, FetchStatus, ReportStatus
from reports.services.fetching import url_fetch
from reports.services.maintenance import sweep_stuck_work
from reports.tasks.maintenance import sweep_stuck
from reports.tests.factories import make_public_report

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "")
WORKER_READY_TIMEOUT = 30.0
PIPELINE_TIMEOUT = 60.0
# The kill test: a fetch that takes this long, and a visibility timeout short enough to wait for.
SLOW_SECONDS = 5.0
VISIBILITY_TIMEOUT = 8


def _broker_url() -> str:
    """REDIS_URL's server, another database: 15 (14 when REDIS_URL already uses 15)."""
    if os.environ.get("HOTLINE_TEST_BROKER_URL"):
        return os.environ["HOTLINE_TEST_BROKER_URL"]
    parts = urlsplit(REDIS_URL)
    cache_db = parts.path.strip("/") or "0"
    return urlunsplit(parts._replace(path="/14" if cache_db == "15" else "/15"))


def _skip_reason() -> str | None:
    if not REDIS_URL:
        return "REDIS_URL is not set: the Celery integration tests need a real Redis broker"
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "DATABASE_URL is not PostgreSQL: a worker subprocess cannot share the SQLite test database reliably"
    if not sys.platform.startswith("linux"):
        return "the worker process handling here reads /proc (Linux only)"
    try:
        redis.Redis.from_url(_broker_url(), socket_connect_timeout=2, socket_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis is unreachable at {_broker_url()}: {exc}"
    return None


SKIP_REASON = _skip_reason()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
    pytest.mark.django_db(transaction=True),  # rows are committed, so the worker sees them
]


# --- Broker, workers, waiting ------------------------------------------------------------------


@dataclass
class Broker:
    url: str
    prefix: str
    client: redis.Redis

    def unacked(self) -> int:
        return int(self.client.hlen(f"{self.prefix}unacked"))

    def queued(self, queue: str) -> int:
        return int(self.client.llen(f"{self.prefix}{queue}"))


def _drop_broker_connections() -> None:
    """Close and forget every pooled broker connection and producer, so that the next publish uses
    the broker settings now in `app.conf` (what Celery does after a fork). Closing only the app's
    pool would leave a closed pool in kombu's registry for the next test that publishes there."""
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker(monkeypatch) -> Iterator[Broker]:
    """This test's broker: the test process publishes to it (not eagerly) and its workers consume it."""
    url, prefix = _broker_url(), f"hotline-it-{uuid.uuid4().hex[:12]}:"
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery prefers it to app.conf
    conf = celery_app.conf
    saved = conf.broker_url, dict(conf.broker_transport_options or {}), conf.task_always_eager
    assert not conf.task_always_eager, "with a broker configured, tasks must go to it, not run in-process"
    conf.broker_url = url
    conf.broker_transport_options = {**saved[1], "global_keyprefix": prefix}
    assert conf.broker_url == url
    _drop_broker_connections()
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        yield Broker(url=url, prefix=prefix, client=client)
    finally:
        conf.broker_url, conf.broker_transport_options, conf.task_always_eager = saved
        _drop_broker_connections()
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
        client.close()


def _database_url() -> str:
    """The URL of the database this test uses (pytest-django's `test_…` one, not DATABASE_URL's)."""
    db = connection.settings_dict
    user, password = quote(db["USER"] or "", safe=""), quote(db["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(db["HOST"] or "localhost", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    ready_after: float = 0.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_children(self) -> list[int]:
        """SIGKILL the pool's child processes (the main worker process lives on)."""
        children = _children(self.process.pid)
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        return children

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no chance to requeue anything."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@dataclass
class Workers:
    broker: Broker
    tmp_path: Path
    started: list[Worker] = field(default_factory=list)

    def start(self, site: SyntheticSite, **env: str) -> Worker:
        """`celery -A hotline worker -Q default,fetch,match -c 2 --pool prefork`, ready to consume."""
        log_path = self.tmp_path / f"worker-{len(self.started) + 1}.log"
        worker_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "hotline.settings",
            "HOTLINE_TESTING": "1",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": REDIS_URL,  # the cache; the broker is set apart below
            "CELERY_BROKER_URL": self.broker.url,
            "CELERY_BROKER_KEY_PREFIX": self.broker.prefix,
            "HOTLINE_FETCH_ALLOW_HOSTS": site.authority,
            "HOTLINE_ENQUEUE_TASKS": "1",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        command = [
            sys.executable, "-m", "celery", "-A", "hotline", "worker",
            "-Q", "default,fetch,match", "-c", "2", "--pool", "prefork", "-l", "info",
            "-n", f"it-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, cwd=REPO, env=worker_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(process=process, log_path=log_path, started_at=time.monotonic())
        self.started.append(worker)
        deadline = worker.started_at + WORKER_READY_TIMEOUT
        while time.monotonic() < deadline:
            if " ready." in worker.log():
                worker.ready_after = time.monotonic() - worker.started_at
                return worker
            if process.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"the worker did not become ready:\n{worker.log()[-4000:]}")

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()[-3000:]}" for w in self.started)


@pytest.fixture
def workers(transactional_db, broker: Broker, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(broker=broker, tmp_path=tmp_path)
    try:
        yield running
    finally:
        for worker in running.started:
            worker.kill()


@pytest.fixture
def site_settings(settings):
    """The test process's side: enqueue for real, accept the synthetic site's loopback URLs."""

    def configure(site: SyntheticSite) -> None:
        settings.HOTLINE_ENQUEUE_TASKS = True
        settings.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]

    return configure


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, workers: Workers) -> float:
    """Poll `predicate` until true; fail with the workers' logs after `timeout` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{workers.logs()}")


def pipeline_done() -> bool:
    """Every URL fetched (or failed) and every content matched. Content rows commit together with
    their URL's fetch, so no content can still be on its way once no URL is pending."""
    return (
        not Url.objects.filter(fetch_status=FetchStatus.PENDING).exists()
        and not Content.objects.filter(matched_at__isnull=True).exists()
    )


def url_of(site: SyntheticSite, path: str) -> Url:
    return Url.objects.get(canonical_url=site.url(path))


def sha256_of(path: str, routes: dict[str, Callable[[], Response]]) -> str:
    return hashlib.sha256(routes[path]().body).hexdigest()


def linked(a: Content, b: Content) -> bool:
    return Match.objects.filter(Q(content=a, matched_content=b) | Q(content=b, matched_content=a)).exists()


def assert_one_successful_capture(url: Url) -> Capture:
    captures = list(Capture.objects.filter(url=url))
    assert len(captures) == 1, captures
    assert captures[0].error == ""
    assert captures[0].content_id is not None
    assert url.fetch_attempts == 1
    return captures[0]


# --- Tests -------------------------------------------------------------------------------------


def test_reports_become_contents_matches_and_cases(workers: Workers, site_settings, capsys) -> None:
    routes = default_routes()
    with SyntheticSite(routes=routes) as site:
        site_settings(site)
        worker = workers.start(site)
        originals = make_public_report(urls=[site.url(f"/img/{seed}.jpg") for seed in (1, 2, 6)])
        variants = make_public_report(
            urls=[
                site.url(path)
                for path in (
                    "/img/1/reencoded.jpg",
                    "/img/1/resized.jpg",
                    "/img/2/greyscale.jpg",
                    "/img/2/cropped.jpg",
                    "/img/6/brightened.jpg",
                )
            ]
        )
        # A gallery (3, 4, 5 and a mirrored 1), a new image, a dead link, and /img/1.jpg again.
        mixed = make_public_report(
            urls=[site.url(p) for p in ("/gallery/1.html", "/img/7.jpg", "/dead.jpg", "/img/1.jpg")]
        )
        took = wait_until(pipeline_done, timeout=PIPELINE_TIMEOUT, what="fetch and match", workers=workers)
        hits = dict(site.hits)

    # Each page and image was fetched once: no lost message, no duplicate delivery. The URL named
    # again by the third report was known already, so it created no new work.
    image_paths = [
        "/img/1.jpg", "/img/2.jpg", "/img/6.jpg", "/img/7.jpg", "/img/3.jpg", "/img/4.jpg", "/img/5.jpg",
        "/img/1/reencoded.jpg", "/img/1/resized.jpg", "/img/1/mirrored.jpg",
        "/img/2/greyscale.jpg", "/img/2/cropped.jpg", "/img/6/brightened.jpg",
    ]  # fmt: skip
    assert hits == dict.fromkeys([*image_paths, "/gallery/1.html", "/dead.jpg"], 1)

    assert Url.objects.count() == 11
    dead = url_of(site, "/dead.jpg")
    assert (dead.fetch_status, dead.fetch_error) == (FetchStatus.ERROR, CaptureError.HTTP_4XX)
    assert set(Url.objects.exclude(pk=dead.pk).values_list("fetch_status", flat=True)) == {FetchStatus.FETCHED}
    assert set(Url.objects.values_list("fetch_attempts", flat=True)) == {1}

    # One top-level capture per URL; the gallery's page capture holds its four images.
    tops = Capture.objects.filter(parent__isnull=True)
    assert sorted(tops.values_list("url_id", flat=True)) == sorted(Url.objects.values_list("pk", flat=True))
    gallery = tops.get(url=url_of(site, "/gallery/1.html"))
    assert gallery.content_id is None
    assert gallery.detected_type == "text/html"
    assert sorted(gallery.children.values_list("content__sha256", flat=True)) == sorted(
        sha256_of(p, routes) for p in ("/img/3.jpg", "/img/4.jpg", "/img/5.jpg", "/img/1/mirrored.jpg")
    )
    assert tops.get(url=dead).content_id is None
    assert tops.get(url=dead).http_status == 404
    assert Capture.objects.filter(content__isnull=False).count() == 13  # the page and the dead link hold none

    # One content per distinct file, exactly the bytes served; all matched, in one commit order.
    contents = {content.sha256: content for content in Content.objects.all()}
    assert set(contents) == {sha256_of(p, routes) for p in image_paths}
    assert all(content.matched_at and content.preview for content in contents.values())
    assert len({content.match_seq for content in contents.values()}) == len(contents)

    # Variants link to their originals (either direction: whichever was matched later finds the
    # other), and nothing links pictures of different scenes.
    by_path = {path: contents[sha256_of(path, routes)] for path in image_paths}
    for path in image_paths:
        seed, _, name = path.removeprefix("/img/").removesuffix(".jpg").partition("/")
        if name in VARIANTS:
            assert linked(by_path[path], by_path[f"/img/{seed}.jpg"]), path
    family = {content.pk: path.removeprefix("/img/").split("/")[0].split(".")[0] for path, content in by_path.items()}
    for content_id, matched_id in Match.objects.values_list("content_id", "matched_content_id"):
        assert family[content_id] == family[matched_id]
    assert not Match.objects.filter(known_hash__isnull=False).exists()

    # One open case per URL, holding what was found there; every report is now being assessed.
    assert Case.objects.count() == 11
    assert set(Case.objects.values_list("status", flat=True)) == {CaseStatus.OPEN}
    for case in Case.objects.annotate(n=Count("contents")):
        expected = 4 if case.url.canonical_url.endswith("/gallery/1.html") else int(case.url_id != dead.pk)
        assert case.n == expected, case.url
    for report in (originals, variants, mixed):
        report.refresh_from_db()
        assert report.status == ReportStatus.IN_ASSESSMENT
    with capsys.disabled():
        print(
            f"\n[celery-it] worker ready in {worker.ready_after:.1f} s; 3 reports, 11 URLs, 13 images: "
            f"fetched, matched and cased in {took:.1f} s"
        )


def _slow(seed: int) -> Callable[[], Response]:
    """A server that takes SLOW_SECONDS before it answers (the hit is counted on arrival)."""

    def route() -> Response:
        time.sleep(SLOW_SECONDS)
        return Response(body=encode(scene(seed)))

    return route


def test_a_fetch_killed_mid_flight_is_redelivered_and_recorded_once(
    workers: Workers, broker: Broker, site_settings, capsys
) -> None:
    routes = {**default_routes(), "/slow/1.jpg": _slow(31), "/slow/2.jpg": _slow(32)}
    timeout = str(VISIBILITY_TIMEOUT)
    with SyntheticSite(routes=routes) as site:
        site_settings(site)
        worker = workers.start(site, CELERY_VISIBILITY_TIMEOUT=timeout)

        # 1. The pool child running the fetch dies (OOM killer, segfault): the main process sees the
        #    child lost and, with acks_late + reject_on_worker_lost, puts the message back at once.
        make_public_report(urls=[site.url("/slow/1.jpg")])
        wait_until(lambda: site.hits.get("/slow/1.jpg") == 1, timeout=20, what="the first fetch", workers=workers)
        assert worker.kill_children()
        first = url_of(site, "/slow/1.jpg")
        assert first.fetch_status == FetchStatus.PENDING
        child_redelivery = wait_until(
            lambda: pipeline_done() and Url.objects.filter(fetch_status=FetchStatus.FETCHED).count() == 1,
            timeout=30,
            what="the fetch to be redelivered after its pool child was killed",
            workers=workers,
        )
        assert site.hits["/slow/1.jpg"] == 2
        assert "WorkerLostError" in worker.log()
        first.refresh_from_db()
        assert_one_successful_capture(first)

        # 2. The whole worker dies (SIGKILL, the machine goes away): the message stays unacknowledged
        #    in Redis, and a new worker takes it once the visibility timeout has passed.
        make_public_report(urls=[site.url("/slow/2.jpg")])
        wait_until(lambda: site.hits.get("/slow/2.jpg") == 1, timeout=20, what="the second fetch", workers=workers)
        killed_at = time.monotonic()
        worker.kill()
        second = url_of(site, "/slow/2.jpg")
        assert second.fetch_status == FetchStatus.PENDING
        assert broker.unacked() == 1, "the message in flight must still be held by the broker"
        workers.start(site, CELERY_VISIBILITY_TIMEOUT=timeout)
        wait_until(
            lambda: pipeline_done() and Url.objects.filter(fetch_status=FetchStatus.FETCHED).count() == 2,
            timeout=VISIBILITY_TIMEOUT + 2 * SLOW_SECONDS + 20,
            what="a new worker to take over the message of the killed one",
            workers=workers,
        )
        worker_redelivery = time.monotonic() - killed_at
        assert site.hits["/slow/2.jpg"] == 2
        second.refresh_from_db()
        assert_one_successful_capture(second)
        wait_until(lambda: broker.unacked() == 0, timeout=5, what="the message to be acknowledged", workers=workers)

    # Nothing lost, nothing twice: two URLs, two contents, two cases.
    assert Content.objects.count() == 2
    assert Case.objects.count() == 2
    assert Capture.objects.count() == 2
    with capsys.disabled():
        print(
            f"\n[celery-it] killed pool child: fetched {child_redelivery:.1f} s later; killed worker: fetched by "
            f"a new worker {worker_redelivery:.1f} s later (visibility timeout {VISIBILITY_TIMEOUT} s)"
        )


def test_the_sweeper_requeues_work_whose_message_was_lost(
    workers: Workers, broker: Broker, site_settings, settings, capsys
) -> None:
    with SyntheticSite() as site:
        site_settings(site)
        # Committed but never enqueued: as if the broker lost the messages (restart without
        # persistence, a crash between commit and publish).
        settings.HOTLINE_ENQUEUE_TASKS = False
        make_public_report(urls=[site.url("/img/4.jpg"), site.url("/img/4/cropped.jpg")])
        fetched = make_public_report(urls=[site.url("/img/5.jpg")])
        # This one was fetched, but its content's match message was lost.
        assert url_fetch(url_id=fetched.reported_urls.get().url_id).state == "fetched"
        worker = workers.start(site, HOTLINE_SWEEP_AFTER_SECONDS="0")
        time.sleep(1.0)
        assert Url.objects.filter(fetch_status=FetchStatus.PENDING).count() == 2, "nothing should be queued"
        assert Content.objects.filter(matched_at__isnull=True).count() == 1

        settings.HOTLINE_ENQUEUE_TASKS = True
        settings.HOTLINE_SWEEP_AFTER_SECONDS = 0
        assert sweep_stuck_work() == {"urls": 2, "contents": 1, "reports": 0}
        sweep_stuck.delay()  # and the periodic task in the worker: it queues the same work again
        took = wait_until(pipeline_done, timeout=PIPELINE_TIMEOUT, what="the swept work", workers=workers)
        wait_until(
            lambda: broker.queued("fetch") + broker.queued("match") + broker.queued("default") + broker.unacked() == 0,
            timeout=20,
            what="the duplicate deliveries to drain",
            workers=workers,
        )

    # Duplicate deliveries cost work, never rows.
    for path in ("/img/4.jpg", "/img/4/cropped.jpg", "/img/5.jpg"):
        assert Capture.objects.filter(url=url_of(site, path)).count() == 1
    assert Content.objects.count() == 3
    assert Case.objects.count() == 3
    original = Content.objects.get(captures__url=url_of(site, "/img/4.jpg"))
    cropped = Content.objects.get(captures__url=url_of(site, "/img/4/cropped.jpg"))
    assert linked(original, cropped)
    assert sweep_stuck_work() == {"urls": 0, "contents": 0, "reports": 0}
    assert worker.process.poll() is None
    with capsys.disabled():
        print(f"\n[celery-it] sweeper: 2 lost fetches and 1 lost match done {took:.1f} s after the sweep")
