"""Request ids and JSON logs: one id follows a request through the app's logs and its tasks, and the logs
never carry what reporters sent."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from hotline.celery import REQUEST_ID_HEADER, carry_request_id, task_started
from reports.lib.logcontext import JsonFormatter, RequestIdFilter, request_id_var, sane_request_id

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_request_id(client) -> None:
    first = client.get("/")
    second = client.get("/")

    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_sane_incoming_id_is_kept_and_anything_else_replaced(client) -> None:
    assert client.get("/", HTTP_X_REQUEST_ID="proxy-1234abcd").headers["X-Request-ID"] == "proxy-1234abcd"
    for hostile in ("short", "x" * 65, "abc\nforged log line", "<script>alert(1)</script>", "a b c d e f g h"):
        answered = client.get("/", HTTP_X_REQUEST_ID=hostile).headers["X-Request-ID"]
        assert answered != hostile
        assert sane_request_id(answered) == answered


def json_line(record: logging.LogRecord) -> dict:
    RequestIdFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_log_records_of_a_request_carry_its_id(client, caplog) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/no-such-page/?email=someone@example.org&token=secret", HTTP_X_REQUEST_ID="req-0001abcd")

    assert response.status_code == 404
    record = next(r for r in caplog.records if r.name == "django.request")
    line = json_line(record)
    assert line["request_id"] == "req-0001abcd"
    assert line["level"] == "WARNING"
    assert line["status_code"] == 404
    # Django logs the path only; the query string (reporters' data, tokens) is nowhere in the line.
    text = json.dumps(line)
    assert "/no-such-page/" in text
    assert "someone@example.org" not in text
    assert "secret" not in text


def test_the_json_formatter_writes_one_object_per_line_with_extra_fields_and_exceptions() -> None:
    token = request_id_var.set("ctx-0001abcd")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            record = logging.getLogger("reports.test").makeRecord(
                "reports.test", logging.ERROR, __file__, 1, "failed %s", ("once",), exc_info=True, extra={"url_id": 7}
            )
            record.exc_info = sys.exc_info()
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)

    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "failed once"
    assert parsed["request_id"] == "ctx-0001abcd"
    assert parsed["url_id"] == 7
    assert "ValueError: boom" in parsed["exc_info"]
    assert parsed["time"].endswith("+00:00")


def test_tasks_queued_by_a_request_log_under_its_id() -> None:
    headers: dict = {}
    token = request_id_var.set("req-0002abcd")
    try:
        carry_request_id(headers=headers)  # as Celery does when the request publishes a task
    finally:
        request_id_var.reset(token)
    assert headers[REQUEST_ID_HEADER] == "req-0002abcd"

    # In the worker, the task's request holds the message's headers.
    task = SimpleNamespace(name="t", request=SimpleNamespace(is_eager=False, headers={}, **headers))
    task_started(task_id="5e0c7a4e-0000-4000-8000-000000000000", task=task)
    assert request_id_var.get() == "req-0002abcd"

    # A task from beat (no request) logs under an id of its own: its task id.
    beat_task = SimpleNamespace(name="t", request=SimpleNamespace(is_eager=False, headers={}))
    task_started(task_id="5e0c7a4e-0000-4000-8000-000000000001", task=beat_task)
    assert request_id_var.get() == "5e0c7a4e000040008000000000000001"
    request_id_var.set("")


def test_the_log_format_is_chosen_by_the_environment(tmp_path, settings) -> None:
    env = {**os.environ, "DEBUG": "1", "HOTLINE_LOG_FORMAT": "json", "HOTLINE_VAR_DIR": str(tmp_path)}
    env["DJANGO_SETTINGS_MODULE"] = "hotline.settings"
    env.pop("DATABASE_URL", None)
    code = "import django, logging; django.setup(); logging.getLogger('reports.x').warning('hello %s', 'there')"
    result = run_python(code, env, cwd=settings.BASE_DIR)
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello there"
    assert line["logger"] == "reports.x"

    env["HOTLINE_LOG_FORMAT"] = "xml"
    refused = run_python("import django; django.setup()", env, cwd=settings.BASE_DIR)
    assert refused.returncode != 0
    assert "HOTLINE_LOG_FORMAT" in refused.stderr


def run_python(code: str, env: dict[str, str], *, cwd: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], env=env, cwd=str(cwd), capture_output=True, text=True, timeout=60, check=False
    )
