"""Faults: Redis and PostgreSQL restarted while reports arrive, a worker SIGKILLed mid-task, a fetch
target that times out. Accepted reports are never lost, nothing is recorded twice, and the pipeline
catches up by itself.

The restart tests run a whole private stack that nothing else uses, all on loopback:
- a PostgreSQL cluster of its own (`initdb` into a temporary directory, run as the `postgres` user),
  migrated by `manage.py migrate`;
- two Redis servers of their own: the Celery broker (restarted here, without persistence, so its
  queued messages are really lost) and the cache (rate limits);
- gunicorn serving Hotline, a Celery worker with an embedded beat (the sweeper every 2 s, for work
  pending longer than 4 s), and a `SyntheticSite` in this process that the worker may fetch from.
A reporter thread posts the public form over HTTP (GET for the CSRF token, then POST) while the fault
happens. The test then reads the private database: every report answered with a receipt must be
there exactly once, and every URL fetched, with no second successful capture.

Skipped, with the reason, where `initdb`/`pg_ctl`/`redis-server` are missing or we are not root
(PostgreSQL runs as `postgres` through `runuser`). The shared PostgreSQL and Redis are never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
import urllib3  # noqa: TID251 - talks to our own gunicorn on loopback, never to a reported URL
from django.db import OperationalError
from django.test import Client

from reports.lib.synthetic import Response, SyntheticSite, encode, scene
from reports.models import Capture, Content, Report, Url
from reports.models.choices import CaptureError, FetchStatus
from reports.services.fetching import url_fetch
from reports.tests.factories import make_url_items, report_form_data
from reports.tests.hardening import figures

REPO = Path(__file__).resolve().parents[3]
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:] or [""]
INITDB = shutil.which("initdb") or shutil.which("initdb", path=PG_BIN[0])
PG_CTL = shutil.which("pg_ctl") or shutil.which("pg_ctl", path=PG_BIN[0])
REDIS_SERVER = shutil.which("redis-server")
PIPELINE_TIMEOUT = 90.0


def _stack_skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the private stack is started the Linux way (runuser, process groups)"
    if not (INITDB and PG_CTL):
        return "initdb/pg_ctl not found (apt-get install postgresql): no private PostgreSQL to restart"
    if not REDIS_SERVER:
        return "redis-server not found (apt-get install redis-server): no private Redis to restart"
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return "PostgreSQL refuses root and only root can runuser to `postgres`"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` user to run the private cluster as"
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return "gunicorn is not installed"
    return None


STACK_SKIP = _stack_skip_reason()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, logs: Callable[[], str] = str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with contextlib.suppress(Exception):
            if predicate():
                return time.monotonic() - start
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs()}")


# --- The private stack ----------------------------------------------------------------------------


class Postgres:
    def __init__(self, root: Path) -> None:
        self.root, self.data, self.port = root, root / "data", free_port()
        self.log = root / "postgres.log"
        postgres = pwd.getpwnam("postgres")
        os.chown(root, postgres.pw_uid, postgres.pw_gid)
        self._as_postgres([INITDB, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"])
        self.start()

    @staticmethod
    def _as_postgres(command: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)  # noqa: S603, S607

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres([PG_CTL, "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start"])

    def stop(self) -> None:
        self._as_postgres([PG_CTL, "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url("hotline"), connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


class Redis:
    def __init__(self, root: Path, name: str) -> None:
        self.port, self.log, self.process = free_port(), root / f"redis-{name}.log", None
        self.start()

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
        wait_for(self._up, timeout=10, what=f"redis on {self.port}")

    def _up(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # a crash, not a clean shutdown; without persistence the queues are gone
            self.process.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass
class Stack:
    root: Path
    pg: Postgres
    broker: Redis
    cache: Redis
    site: SyntheticSite
    env: dict[str, str]
    web_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker: subprocess.Popen[bytes] | None = None
    worker_logs: list[Path] = field(default_factory=list)
    worker_crashes: int = 0
    worker_restarts: int = 0
    crashes_reported: int = 0
    killing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def spawn(self, command: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log_path = self.root / log_name
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append(process)
        return process

    def _spawn_worker(self) -> None:
        number = len(self.worker_logs) + 1
        log = f"worker-{number}.log"
        self.worker_logs.append(self.root / log)
        self.worker = self.spawn(
            [
                sys.executable, "-m", "celery", "-A", "hotline", "worker", "-B",
                "-s", str(self.root / f"beat-{number}"), "-Q", "default,fetch,match", "-c", "2",
                "--pool", "prefork", "-l", "info", "-n", f"faults-{number}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            log,
        )  # fmt: skip

    def start_worker(self) -> None:
        """The first worker, and a supervisor that starts a new one whenever it exits, as systemd's
        Restart=always or a container's restart policy does in production."""
        with self.lock:
            self._spawn_worker()
        wait_for(lambda: " ready." in self.worker_logs[-1].read_text(errors="replace"), timeout=40,
                 what="the worker", logs=self.logs)  # fmt: skip
        threading.Thread(target=self._supervise, daemon=True).start()

    def _supervise(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                if self.worker is not None and self.worker.poll() is not None:
                    if self.killing:
                        self.killing = False
                    else:
                        # It exited by itself: Celery gave up (see test_broker_restarted_while_reports_arrive).
                        self.worker_crashes += 1
                    self.worker_restarts += 1
                    self._spawn_worker()
            time.sleep(0.3)

    def kill_worker(self) -> None:
        """SIGKILL the worker's whole process group (pool children, embedded beat); the supervisor
        starts a new one."""
        with self.lock:
            assert self.worker is not None
            self.killing = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for path in [*self.worker_logs, self.root / "gunicorn.log"]:
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _slow_route() -> Response:
    time.sleep(3)
    return Response(body=encode(scene(5)))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if STACK_SKIP:
        pytest.skip(STACK_SKIP)
    root = Path(tempfile.mkdtemp(prefix="hotline-faults-"))
    pg = broker = cache = running = None
    site = SyntheticSite(routes={"/img.jpg": lambda: Response(body=encode(scene(3))), "/slow.jpg": _slow_route})
    site.start()
    try:
        pg = Postgres(root)
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE hotline")
        broker, cache = Redis(root, "broker"), Redis(root, "cache")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))},
            "DJANGO_SETTINGS_MODULE": "hotline.settings",
            "HOTLINE_TESTING": "1",
            "DATABASE_URL": pg.url("hotline"),
            "REDIS_URL": cache.url,
            "CELERY_BROKER_URL": broker.url,
            "CELERY_VISIBILITY_TIMEOUT": "8",
            "HOTLINE_FETCH_ALLOW_HOSTS": site.authority,
            "HOTLINE_REPORT_RATE_LIMIT": "1000000",
            "HOTLINE_SWEEP_AFTER_SECONDS": "4",
            "HOTLINE_SWEEP_INTERVAL_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
        running = Stack(root=root, pg=pg, broker=broker, cache=cache, site=site, env=env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        running.web_port = free_port()
        running.spawn(
            [sys.executable, "-m", "gunicorn", "hotline.wsgi", "-b", f"127.0.0.1:{running.web_port}",
             "-w", "2", "--threads", "4", "--timeout", "60"],
            "gunicorn.log",
        )  # fmt: skip
        http = urllib3.PoolManager(retries=False, timeout=5)
        wait_for(lambda: http.request("GET", running.base + "/report/").status == 200, timeout=30, what="gunicorn",
                 logs=running.logs)  # fmt: skip
        running.start_worker()
        yield running
    finally:
        if running is not None:
            running.stopping.set()
            with running.lock:
                pass  # the supervisor has finished its round and starts nothing more
        for process in running.processes if running is not None else []:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for server in (broker, cache):
            if server is not None:
                server.stop()
        if pg is not None:
            with contextlib.suppress(subprocess.CalledProcessError):
                pg.stop()
        site.stop()
        if not os.environ.get("HOTLINE_FAULTS_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


# --- A reporter, and what the database says afterwards ------------------------------------------------


@dataclass
class Reporter:
    """Posts the public form over HTTP, one report after another, each naming one new URL."""

    stack: Stack
    tag: str
    sent: list[tuple[str, int]] = field(default_factory=list)  # (reported URL, status)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=20))
        self.token, self.cookie = "", ""

    def _csrf(self) -> None:
        response = self.http.request("GET", self.stack.base + "/report/")
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.data)
        cookie = re.search(r"csrftoken=([^;]+)", response.headers.get("Set-Cookie", ""))
        if response.status == 200 and match and cookie:
            self.token, self.cookie = match.group(1).decode(), cookie.group(1)

    def submit_one(self) -> int:
        url = self.stack.site.url(f"/img.jpg?{self.tag}={len(self.sent)}")
        try:
            if not self.token:
                self._csrf()
            body = urlencode({**report_form_data([url]), "csrfmiddlewaretoken": self.token})
            response = self.http.request(
                "POST", self.stack.base + "/report/", body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={self.cookie}"},
            )  # fmt: skip
            status = response.status
            if status == 200 and b'data-receipt="code"' not in response.data:
                status = 299  # a 200 without a receipt: not an accepted report
        except urllib3.exceptions.HTTPError:
            status = 0  # no answer at all
        self.sent.append((url, status))
        return status

    def run(self, interval: float = 0.1) -> None:
        while not self._stop.is_set():
            self.submit_one()
            time.sleep(interval)

    def __enter__(self) -> Reporter:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    @property
    def accepted(self) -> list[str]:
        return [url for url, status in self.sent if status == 200]


def pipeline_settled(stack: Stack, urls: list[str]) -> bool:
    rows = stack.pg.query(
        "SELECT count(*) FROM reports_url u JOIN reports_reportedurl r ON r.url_id = u.id "
        "WHERE r.submitted_url = ANY(%s) AND u.fetch_status = %s",
        (urls, FetchStatus.PENDING.value),
    )
    return rows[0][0] == 0


def audit(stack: Stack, reporter: Reporter, suite: str, recovered: float) -> dict[str, int]:
    """Lost and duplicated rows for the reporter's accepted reports; adds the figures."""
    accepted = reporter.accepted
    stored = dict(
        stack.pg.query(
            "SELECT submitted_url, count(*) FROM reports_reportedurl WHERE submitted_url = ANY(%s) GROUP BY 1",
            (accepted,),
        )
    )
    lost = sum(1 for url in accepted if url not in stored)
    duplicate_reports = sum(count - 1 for count in stored.values() if count > 1)
    duplicate_captures = stack.pg.query(
        "SELECT count(*) FROM (SELECT c.url_id FROM reports_capture c JOIN reports_url u ON u.id = c.url_id "
        "WHERE c.parent_id IS NULL GROUP BY c.url_id, u.fetch_attempts "
        "HAVING count(*) FILTER (WHERE c.error = '') > 1 OR count(*) > u.fetch_attempts) AS twice"
    )[0][0]
    unfetched = stack.pg.query(
        "SELECT count(*) FROM reports_url u JOIN reports_reportedurl r ON r.url_id = u.id "
        "WHERE r.submitted_url = ANY(%s) AND u.fetch_status <> 'fetched'",
        (accepted,),
    )[0][0]
    statuses = [status for _, status in reporter.sent]
    counts = {
        "reports_sent": len(statuses),
        "accepted": len(accepted),
        "refused_503": statuses.count(503),
        "server_errors": sum(1 for s in statuses if s >= 500 and s != 503),
        "no_answer": statuses.count(0),
        "lost_reports": lost,
        "duplicate_rows": duplicate_reports + duplicate_captures,
        "unfetched": unfetched,
        # Worker exits nobody asked for; the supervisor restarted them (see the broker restart test).
        "worker_crashes": stack.worker_crashes - stack.crashes_reported,
    }
    stack.crashes_reported = stack.worker_crashes
    figures.add("faults", **counts)
    figures.add(f"faults.{suite}", **counts, recovered_in_seconds=round(recovered))
    return counts


# --- The faults ---------------------------------------------------------------------------------------


@pytest.mark.hardening
@pytest.mark.integration
def test_broker_restarted_while_reports_arrive(stack: Stack) -> None:
    """Reports posted while the broker is down are stored (the enqueue on commit fails and is logged);
    the sweeper queues them once the broker is back. The restart also empties the queues.

    Celery 5.7/kombu 5.7 sometimes *exits* here ("Unrecoverable error: AttributeError: 'NoneType'
    object has no attribute 'hostname'": the channel, closing after the lost connection, tries to
    restore its unacknowledged messages through a connection that is already gone). Then only a
    supervisor brings the pipeline back, as it must in production; the figures count those exits
    (`worker_crashes`)."""
    with Reporter(stack, "broker") as reporter:
        time.sleep(1.5)
        stack.broker.stop()
        time.sleep(3)
        during = len(reporter.sent)
        stack.broker.start()
        time.sleep(1.5)
    assert len(reporter.sent) > during > 5
    recovered = wait_for(lambda: pipeline_settled(stack, reporter.accepted), timeout=PIPELINE_TIMEOUT,
                         what="the pipeline to catch up after the broker restart", logs=stack.logs)  # fmt: skip
    counts = audit(stack, reporter, "broker_restart", recovered)
    assert counts["accepted"] == counts["reports_sent"], reporter.sent  # the broker is not needed to accept
    assert counts["lost_reports"] == counts["duplicate_rows"] == counts["unfetched"] == 0, counts


@pytest.mark.hardening
@pytest.mark.integration
def test_cache_redis_down_is_503_not_500(stack: Stack) -> None:
    """The rate-limit cache is down: the form answers 503 (nothing stored), then works again."""
    reporter = Reporter(stack, "cache")
    reporter.submit_one()
    stack.cache.stop()
    try:
        for _ in range(3):
            reporter.submit_one()
    finally:
        stack.cache.start()
    wait_for(lambda: reporter.submit_one() == 200, timeout=20, what="the form to work again", logs=stack.logs)
    statuses = [status for _, status in reporter.sent]
    assert statuses[0] == 200
    assert statuses[1:4] == [503, 503, 503], statuses
    recovered = wait_for(lambda: pipeline_settled(stack, reporter.accepted), timeout=PIPELINE_TIMEOUT,
                         what="the pipeline", logs=stack.logs)  # fmt: skip
    counts = audit(stack, reporter, "cache_outage", recovered)
    stored_refused = stack.pg.query(
        "SELECT count(*) FROM reports_reportedurl WHERE submitted_url = ANY(%s)",
        ([url for url, status in reporter.sent if status == 503],),
    )[0][0]
    assert stored_refused == 0
    assert counts["lost_reports"] == counts["duplicate_rows"] == counts["server_errors"] == 0, counts


@pytest.mark.hardening
@pytest.mark.integration
def test_worker_killed_mid_task(stack: Stack) -> None:
    """SIGKILL the whole worker (and its beat) while it fetches; a new worker finishes the job once."""
    reporter = Reporter(stack, "kill")
    url = stack.site.url("/slow.jpg?kill=1")
    before = stack.site.hits.get("/slow.jpg", 0)
    status = _submit_url(reporter, url)
    assert status == 200
    wait_for(lambda: stack.site.hits.get("/slow.jpg", 0) > before, timeout=30, what="the slow fetch to start",
             logs=stack.logs)  # fmt: skip
    restarts = stack.worker_restarts
    stack.kill_worker()
    killed_at = time.monotonic()
    wait_for(lambda: stack.worker_restarts > restarts, timeout=10, what="the supervisor to start a new worker",
             logs=stack.logs)  # fmt: skip
    wait_for(lambda: pipeline_settled(stack, [url]), timeout=PIPELINE_TIMEOUT, what="a new worker to take over",
             logs=stack.logs)  # fmt: skip
    counts = audit(stack, reporter, "worker_sigkill", time.monotonic() - killed_at)
    assert counts["lost_reports"] == counts["duplicate_rows"] == counts["unfetched"] == 0, counts


def _submit_url(reporter: Reporter, url: str) -> int:
    reporter._csrf()
    body = urlencode({**report_form_data([url]), "csrfmiddlewaretoken": reporter.token})
    response = reporter.http.request(
        "POST", reporter.stack.base + "/report/", body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={reporter.cookie}"},
    )  # fmt: skip
    status = response.status if b'data-receipt="code"' in response.data or response.status != 200 else 299
    reporter.sent.append((url, status))
    return status


@pytest.mark.hardening
@pytest.mark.integration
def test_postgres_restarted_while_reports_arrive(stack: Stack) -> None:
    """During the outage the form answers 503 (nothing stored, the reporter is told to retry), never 500
    and never a receipt for a report that is then missing; afterwards everything works again."""
    with Reporter(stack, "pg") as reporter:
        time.sleep(1.5)
        stack.pg.stop()
        time.sleep(2)
        stack.pg.start()
        restarted = len(reporter.sent)
        time.sleep(2.5)
    after = [status for _, status in reporter.sent[restarted + 2 :]]
    assert after, reporter.sent
    assert set(after) == {200}, reporter.sent  # working again without anyone restarting the web
    recovered = wait_for(lambda: pipeline_settled(stack, reporter.accepted), timeout=PIPELINE_TIMEOUT,
                         what="the pipeline to catch up after the database restart", logs=stack.logs)  # fmt: skip
    counts = audit(stack, reporter, "postgres_restart", recovered)
    assert counts["refused_503"] > 0, reporter.sent  # the outage was seen, and answered clearly
    assert counts["server_errors"] == counts["lost_reports"] == counts["duplicate_rows"] == 0, counts
    assert counts["unfetched"] == 0, counts


# --- In-process: the fetch target times out; an outage inside a request --------------------------------


@pytest.mark.hardening
@pytest.mark.django_db
def test_a_fetch_target_that_times_out_is_recorded_and_retried(pipeline) -> None:
    hanging = {"on": True}

    def route() -> Response:
        if hanging["on"]:
            time.sleep(2)
        return Response(body=encode(scene(4)))

    with SyntheticSite(routes={"/hang.jpg": route}) as site:
        pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
        pipeline.HOTLINE_ENQUEUE_TASKS = False
        pipeline.HOTLINE_FETCH_READ_TIMEOUT = 0.5
        pipeline.HOTLINE_FETCH_TOTAL_TIMEOUT = 1
        from reports.services.intake import report_create_public

        report_create_public(
            url_items=make_url_items([site.url("/hang.jpg")]), category="csam", ai_suspected="unknown",
            where_found="website",
        )  # fmt: skip
        url = Url.objects.get()
        first = url_fetch(url_id=url.pk, final_attempt=False)
        url.refresh_from_db()
        assert (first.state, first.error) == ("retry", CaptureError.TIMEOUT)
        assert url.fetch_status == FetchStatus.PENDING
        assert url.next_fetch_at is not None  # the sweeper's safety net if the retry message is lost
        hanging["on"] = False
        second = url_fetch(url_id=url.pk, final_attempt=False)
    url.refresh_from_db()
    assert second.state == "fetched"
    assert url.fetch_attempts == 2
    assert list(Capture.objects.filter(url=url).values_list("error", flat=True).order_by("pk")) == ["timeout", ""]
    assert Content.objects.count() == 1
    figures.add("faults", fetch_timeouts=1, fetch_timeouts_recovered=1)


@pytest.mark.hardening
@pytest.mark.django_db
def test_a_database_error_inside_a_request_is_503(client: Client, monkeypatch, settings) -> None:
    from reports.views import api as api_views
    from reports.views import public

    def down(**_kwargs: object) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(public, "report_create_public", down)
    monkeypatch.setattr(api_views, "partner_reports_submit", down)
    client.raise_request_exception = False
    response = client.post("/report/", report_form_data())
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    from reports.services.partners import partner_create

    _partner, token = partner_create(name="Outage partner", kind="hotline")
    response = client.post(
        "/api/v1/reports", {"urls": ["https://example.com/outage"], "category": "csam"},
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token.secret}",
    )  # fmt: skip
    assert response.status_code == 503
    assert response.json()["detail"].startswith("The service is briefly unavailable")
    assert not Report.objects.exists()
