"""Load test: the public form and the partner API against gunicorn on PostgreSQL, for a fixed time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python benchmarks/loadtest.py [--duration 60] [--form-clients 8] [--api-clients 8]

The run uses its own database, `<name of DATABASE_URL's database>_load`, dropped and created, then
migrated by `manage.py migrate`, and dropped again at the end (`--keep` keeps it). A partner and its
token are made with `manage.py create_partner`. gunicorn serves Hotline on a free port of 127.0.0.1
(`--gunicorn-workers` processes × `--gunicorn-threads` threads, DEBUG off, the test keys of
HOTLINE_TESTING). Client threads in this process, each with its own connection pool, loop without pause:

- form clients: GET /report/ (the CSRF token and cookie), then POST /report/ with two new URLs, as a
  reporter does; a POST counts as an error unless it answers 200 with a receipt;
- API clients: POST /api/v1/reports with two new URLs and one hash (201 expected), then GET the report
  back (200 expected).

What the environment changes, explicitly:
- HOTLINE_REPORT_RATE_LIMIT and HOTLINE_API_RATE_LIMIT are raised to 10^9: every client is 127.0.0.1,
  and the per-client hourly limit (30 reports) would otherwise turn the test into a throttle test;
- HOTLINE_ENQUEUE_TASKS=0: nothing is queued and nothing is fetched (the URLs are on example.com, which
  the fetcher would refuse without a lookup anyway). Intake is measured, not the pipeline;
- the cache is REDIS_URL's Redis (under a key prefix of its own) when set, as in production; else
  per-process memory.

Prints one JSON object: per endpoint requests, errors, error rate, throughput, p50/p99/max latency in
ms; totals; the settings above; PostgreSQL's version. `--output FILE` also writes it to FILE.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import _bench  # first: imports come from the repository (see _bench)
import psycopg
import urllib3  # noqa: TID251 - talks to our own gunicorn on loopback only

REPO = _bench.REPO
RATE_LIMIT = "1000000000"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring (default 5)")
    parser.add_argument("--form-clients", type=int, default=8)
    parser.add_argument("--api-clients", type=int, default=8)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--gunicorn-threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the load database afterwards")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.measuring = False

    def record(self, endpoint: str, started: float, ok: bool, status: int) -> None:
        elapsed = time.perf_counter() - started
        if not self.measuring:
            return
        with self.lock:
            self.latencies[endpoint].append(elapsed)
            self.statuses[endpoint][status] += 1
            if not ok:
                self.errors[endpoint] += 1


def form_client(base: str, recorder: Recorder, stop: threading.Event) -> None:
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60), maxsize=1)
    while not stop.is_set():
        # A reporter loads the form, then sends it: one GET (CSRF token and cookie) per POST.
        token = cookie = ""
        started = time.perf_counter()
        try:
            response = http.request("GET", base + "/report/")
            match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.data)
            found = re.search(r"csrftoken=([^;]+)", response.headers.get("Set-Cookie", ""))
            ok = response.status == 200 and bool(match and found)
            if ok:
                token, cookie = match.group(1).decode(), found.group(1)  # type: ignore[union-attr]
            recorder.record("form GET /report/", started, ok, response.status)
        except urllib3.exceptions.HTTPError:
            recorder.record("form GET /report/", started, False, 0)
            continue
        if not ok:
            continue
        body = urlencode(
            {
                "urls": "\n".join(f"https://example.com/load/{uuid.uuid4().hex}" for _ in range(2)),
                "category": "csam",
                "ai_suspected": "unknown",
                "where_found": "website",
                "description": "",
                "email": "",
                "website": "",
                "csrfmiddlewaretoken": token,
            }
        )
        started = time.perf_counter()
        try:
            response = http.request(
                "POST",
                base + "/report/",
                body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}"},
            )
            ok = response.status == 200 and b'data-receipt="code"' in response.data
            recorder.record("form POST /report/", started, ok, response.status)
        except urllib3.exceptions.HTTPError:
            recorder.record("form POST /report/", started, False, 0)


def api_client(base: str, secret: str, recorder: Recorder, stop: threading.Event) -> None:
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60), maxsize=1)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    while not stop.is_set():
        token = uuid.uuid4().hex
        body = {
            "urls": [f"https://example.com/api-load/{token}/a", f"https://example.com/api-load/{token}/b"],
            "hashes": [{"algorithm": "md5", "value": hashlib.md5(token.encode()).hexdigest()}],  # noqa: S324
            "category": "csam",
            "external_id": token,
        }
        started = time.perf_counter()
        try:
            response = http.request("POST", base + "/api/v1/reports", body=json.dumps(body), headers=headers)
            ok = response.status == 201
            recorder.record("api POST /api/v1/reports", started, ok, response.status)
        except urllib3.exceptions.HTTPError:
            recorder.record("api POST /api/v1/reports", started, False, 0)
            continue
        if not ok:
            continue
        report_id = json.loads(response.data)["id"]
        started = time.perf_counter()
        try:
            response = http.request("GET", f"{base}/api/v1/reports/{report_id}", headers=headers)
            recorder.record("api GET /api/v1/reports/{id}", started, response.status == 200, response.status)
        except urllib3.exceptions.HTTPError:
            recorder.record("api GET /api/v1/reports/{id}", started, False, 0)


def summary(recorder: Recorder, seconds: float) -> dict[str, object]:
    endpoints: dict[str, object] = {}
    total_requests = total_errors = 0
    for endpoint, values in sorted(recorder.latencies.items()):
        ordered = sorted(values)
        errors = recorder.errors.get(endpoint, 0)
        total_requests += len(ordered)
        total_errors += errors
        endpoints[endpoint] = {
            "requests": len(ordered),
            "errors": errors,
            "error_rate": round(errors / len(ordered), 5),
            "throughput_rps": round(len(ordered) / seconds, 1),
            "p50_ms": round(_bench.percentile(ordered, 0.50) * 1000, 1),
            "p99_ms": round(_bench.percentile(ordered, 0.99) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
            "statuses": {str(k): v for k, v in sorted(recorder.statuses[endpoint].items())},
        }
    return {
        "endpoints": endpoints,
        "total": {
            "requests": total_requests,
            "errors": total_errors,
            "error_rate": round(total_errors / total_requests, 5) if total_requests else None,
            "throughput_rps": round(total_requests / seconds, 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        print("loadtest: DATABASE_URL must name a PostgreSQL database (its server is used)", file=sys.stderr)
        return 2
    parts = urlsplit(database_url)
    name = f"{parts.path.strip('/') or 'postgres'}_load"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    load_url = urlunsplit(parts._replace(path=f"/{name}"))
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        print("loadtest: loopback databases only", file=sys.stderr)
        return 2
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "CELERY_BROKER_URL")},
        "DJANGO_SETTINGS_MODULE": "hotline.settings",
        "HOTLINE_TESTING": "1",
        "DATABASE_URL": load_url,
        "HOTLINE_ENQUEUE_TASKS": "0",
        "HOTLINE_REPORT_RATE_LIMIT": RATE_LIMIT,
        "HOTLINE_API_RATE_LIMIT": RATE_LIMIT,
        "HOTLINE_CACHE_PREFIX": f"loadtest-{os.getpid()}",
    }
    gunicorn = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True)
        created = subprocess.run(
            [sys.executable, "manage.py", "create_partner", "Load test partner", "--kind", "hotline"],
            cwd=REPO, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        secret = created.stdout.strip().splitlines()[-1].split()[-1]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = subprocess.Popen(  # noqa: S603
            [
                sys.executable, "-m", "gunicorn", "hotline.wsgi", "-b", f"127.0.0.1:{port}",
                "-w", str(args.gunicorn_workers), "--threads", str(args.gunicorn_threads), "--timeout", "60",
                "--log-level", "warning",
            ],
            cwd=REPO, env=env, start_new_session=True,
        )  # fmt: skip
        probe = urllib3.PoolManager(retries=False, timeout=2)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(urllib3.exceptions.HTTPError):
                if probe.request("GET", base + "/report/").status == 200:
                    break
            if time.monotonic() > deadline or gunicorn.poll() is not None:
                print("loadtest: gunicorn did not come up", file=sys.stderr)
                return 1
            time.sleep(0.2)

        recorder, stop = Recorder(), threading.Event()
        threads = [
            threading.Thread(target=form_client, args=(base, recorder, stop), daemon=True)
            for _ in range(args.form_clients)
        ] + [
            threading.Thread(target=api_client, args=(base, secret, recorder, stop), daemon=True)
            for _ in range(args.api_clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(args.warmup)
        recorder.measuring = True
        started = time.monotonic()
        time.sleep(args.duration)
        recorder.measuring = False
        measured = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
    finally:
        if gunicorn is not None and gunicorn.poll() is None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                gunicorn.wait(timeout=20)
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    result = {
        "benchmark": "loadtest",
        "duration_s": round(measured, 1),
        "warmup_s": args.warmup,
        "clients": {"form": args.form_clients, "api": args.api_clients, "kind": "threads, one connection each"},
        "gunicorn": {"workers": args.gunicorn_workers, "threads": args.gunicorn_threads},
        "environment": {
            "HOTLINE_REPORT_RATE_LIMIT": RATE_LIMIT,
            "HOTLINE_API_RATE_LIMIT": RATE_LIMIT,
            "HOTLINE_ENQUEUE_TASKS": "0 (nothing queued or fetched; URLs on example.com)",
            "cache": "redis" if os.environ.get("REDIS_URL") else "local memory",
            "DEBUG": "off",
        },
        "database": f"PostgreSQL {version}",
        "cpus": os.cpu_count(),
        **summary(recorder, measured),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
