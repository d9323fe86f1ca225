"""The production shape, for real: `check --deploy` with production settings, gunicorn serving a page,
a static file, /healthz and /metrics on a loopback port, multiprocess metrics, and the deployment
files (docker-compose.yml, systemd units) in a shape that runs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from http.client import HTTPConnection  # noqa: TID251 - the test talks to its own gunicorn, on loopback
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
HOST = "hotline.example.org"
METRICS_TOKEN = "deploy-test-metrics-token-0123456789"


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What an operator sets (README "Running it for real"), and nothing from the test run."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HOTLINE_", "DJANGO_", "CELERY_", "PROMETHEUS_", "SECURE_", "GUNICORN_"))
        and key not in {"DEBUG", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "PYTEST_CURRENT_TEST"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "hotline.settings",
            "DEBUG": "0",
            "SECRET_KEY": "deploy-test-" + "k" * 50,
            "ALLOWED_HOSTS": HOST,
            "HOTLINE_FIELD_KEYS": Fernet.generate_key().decode(),
            "HOTLINE_PREVIEW_KEYS": Fernet.generate_key().decode(),
            "HOTLINE_VAR_DIR": str(tmp_path / "var"),
            "HOTLINE_STATIC_ROOT": str(tmp_path / "static"),
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path) -> None:
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_with_hsts_preload_opted_in(tmp_path) -> None:
    result = manage(production_env(tmp_path, SECURE_HSTS_PRELOAD="1"), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_its_keys(tmp_path) -> None:
    env = production_env(tmp_path)
    del env["HOTLINE_PREVIEW_KEYS"]

    result = manage(env, "check")

    assert result.returncode != 0
    assert "HOTLINE_PREVIEW_KEYS must be set" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET to the server on loopback, redirects not followed."""
    host, port = base.rsplit(":", 1)
    connection = HTTPConnection(host.removeprefix("http://"), int(port), timeout=10)
    try:
        connection.request("GET", path, headers={"Host": HOST, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def gunicorn_server(tmp_path):
    """gunicorn with hotline/gunicorn.conf.py, two workers, on a free loopback port, after collectstatic."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = production_env(
        tmp_path,
        HOTLINE_BEHIND_PROXY="1",
        HOTLINE_METRICS_TOKEN=METRICS_TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        HOTLINE_LOG_FORMAT="json",
    )
    collected = manage(env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    env.update({"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"})
    log = (tmp_path / "gunicorn.log").open("w+")
    process = subprocess.Popen(  # noqa: S603 - our own gunicorn and config
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "hotline/gunicorn.conf.py", "hotline.wsgi"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail("gunicorn did not start:\n" + log.read())
                time.sleep(0.2)
        yield base, log, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


HTTPS = {"X-Forwarded-Proto": "https"}


def test_gunicorn_serves_pages_static_files_health_and_metrics(gunicorn_server) -> None:
    base, log, tmp_path = gunicorn_server

    # Plain http is redirected to https, except the machine endpoints.
    status, headers, _body = get(base, "/")
    assert status == 301
    assert headers["Location"] == f"https://{HOST}/"

    status, headers, body = get(base, "/?email=someone%40example.org", {**HTTPS, "X-Request-ID": "deploy-test-0001"})
    assert status == 200
    assert b"<html" in body.lower()
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"  # no preload by default
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Request-ID"] == "deploy-test-0001"

    # The page links the stylesheet under its hashed name; WhiteNoise serves it, compressed on request
    # and cached for good.
    stylesheet = re.search(rb'href="(/static/css/hotline\.[0-9a-f]{12}\.css)"', body)
    assert stylesheet is not None, body[:500]
    status, headers, css = get(base, stylesheet.group(1).decode(), HTTPS)
    assert status == 200
    assert css == (BASE_DIR / "static/css/hotline.css").read_bytes()
    assert "immutable" in headers["Cache-Control"]
    status, headers, _gz = get(base, stylesheet.group(1).decode(), {**HTTPS, "Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip"

    status, _headers, body = get(base, "/healthz")  # over plain http: not redirected
    assert status == 200
    assert b'"database": "ok"' in body
    assert b'"broker": "not used"' in body

    assert get(base, "/metrics")[0] == 404
    status, _headers, body = get(base, "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200
    assert b"hotline_reveals_total" in body

    # The access log: one line per request, with the request id, without any query string.
    time.sleep(0.5)
    log.flush()
    written = (tmp_path / "gunicorn.log").read_text()
    assert "request_id=deploy-test-0001" in written
    assert "GET / 200" in written
    assert "someone" not in written
    assert "example.org" not in written.replace(HOST, "")


def test_metrics_of_several_processes_add_up(tmp_path) -> None:
    """Multiprocess mode: counters from separate processes (gunicorn workers, Celery children) are summed."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    bump = "from reports.lib.metrics import REVEALS, MATCHES; REVEALS.inc(); MATCHES.labels(kind='pdq').inc(2)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", bump], cwd=BASE_DIR, env=env, check=True, timeout=60)  # noqa: S603
    read = "from reports.lib.metrics import render_latest; print(render_latest().decode())"
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", read], cwd=BASE_DIR, env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert re.search(r"^hotline_reveals_total 2\.0$", out, re.MULTILINE), out
    assert re.search(r'^hotline_matches_total\{kind="pdq"\} 4\.0$', out, re.MULTILINE), out


def test_docker_compose_defines_every_service_of_the_production_shape() -> None:
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    services = compose["services"]

    assert {"web", "worker-default", "worker-fetch", "worker-match", "beat", "postgres", "redis"} <= set(services)
    # One worker per queue, each consuming exactly its queue.
    for queue in ("default", "fetch", "match"):
        command = services[f"worker-{queue}"]["command"]
        assert command[command.index("-Q") + 1] == queue
    assert services["worker-match"]["environment"]["HOTLINE_WARM_MATCH_INDEX"] == "1"
    assert "beat" in services["beat"]["command"]
    assert services["web"]["command"][:3] == ["gunicorn", "-c", "hotline/gunicorn.conf.py"]
    # The app waits for its database, broker and migrations; the web port is published on loopback only.
    assert set(services["web"]["depends_on"]) >= {"postgres", "redis", "migrate"}
    assert all(port.startswith("127.0.0.1:") for port in services["web"]["ports"])
    # No secret in the file itself: they come from .env.
    text = (BASE_DIR / "docker-compose.yml").read_text()
    assert "SECRET_KEY" not in text
    assert "HOTLINE_FIELD_KEYS" not in text


def test_systemd_units_cover_web_each_queue_and_beat() -> None:
    units = BASE_DIR / "deploy/systemd"
    web = (units / "hotline-web.service").read_text()
    worker = (units / "hotline-worker@.service").read_text()
    beat = (units / "hotline-beat.service").read_text()

    assert "gunicorn -c hotline/gunicorn.conf.py hotline.wsgi" in web
    assert "worker -Q %i" in worker
    assert "celery -A hotline beat" in beat
    for unit in (web, worker, beat):
        assert "EnvironmentFile=/etc/hotline/hotline.env" in unit
        assert "User=hotline" in unit
