"""gunicorn settings for Hotline's web process: `gunicorn -c hotline/gunicorn.conf.py hotline.wsgi`.

Every value can be changed from the environment (GUNICORN_* below, or gunicorn's own
GUNICORN_CMD_ARGS). Static files are served by WhiteNoise inside the app, so no separate server is
needed for them.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

# Loopback by default: a reverse proxy (TLS) sits in front. Containers set GUNICORN_BIND=0.0.0.0:8000.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("GUNICORN_WORKERS", str(min(2 * multiprocessing.cpu_count() + 1, 9))))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Requests are short (fetching happens in workers); a request this slow is stuck.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then, so a slow leak never becomes an outage.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# Only the proxy may say which scheme the client used (settings: HOTLINE_BEHIND_PROXY).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# gunicorn 27's control socket (a management interface in $HOME or $XDG_RUNTIME_DIR) is not used here:
# off, so nothing is written to the service user's home.
control_socket_disable = os.environ.get("GUNICORN_CONTROL_SOCKET", "") != "1"

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# The path without its query string (%(U)s, not the request line %(r)s): a status look-up or a
# reported URL's parameters must not end up in access logs. No client address either (a reporter's
# IP address is never stored, logs included), no referrer. The request id ties a line to the app's logs.
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT", "%(m)s %(U)s %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s"
)


if os.environ.get("HOTLINE_LOG_FORMAT", "text").strip().lower() == "json":
    # gunicorn's own lines (start-up, worker deaths, the access log) as JSON too, like the app's.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "reports.lib.logcontext.JsonFormatter"}},
        "handlers": {
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }

# PROMETHEUS_MULTIPROC_DIR (metrics of all processes on the machine, docs/operations.md) must be an
# empty directory when the processes that share it start: a fresh tmpfs or systemd RuntimeDirectory,
# or emptied by whoever starts them (deploy/, docker-compose.yml). It is not emptied here, because
# Celery workers on the same machine may share it and have started first.


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges must not be reported any more (counters are kept, as they should be)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
