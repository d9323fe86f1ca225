"""`manage.py serve_synthetic_site [--host 127.0.0.1] [--port 8765]`: the demo's image web site.

Serves `reports.lib.synthetic.default_routes()` — pictures generated in code (originals,
near-duplicate variants, a gallery page, an AI-tagged PNG, a dead link, hostile answers) — on a
loopback address until interrupted (Ctrl-C or SIGTERM). It never listens on any other address.
Hotline fetches it only where HOTLINE_FETCH_ALLOW_HOSTS names the same host:port (the demo's
environment does; production never should).
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.lib.synthetic import SyntheticSite, default_routes

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def loopback_host(host: str) -> str:
    """`host` if it is an IPv4 loopback literal (127.0.0.0/8), else CommandError."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise CommandError(
            f"--host {host!r} refused: the synthetic site listens only on an IPv4 loopback address "
            "(127.0.0.1 or another 127.x.x.x), never on a network."
        )
    return str(address)


class Command(BaseCommand):
    help = "Serve the synthetic demo images on a loopback address until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=DEFAULT_HOST, help=f"Loopback address (default {DEFAULT_HOST}).")
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Port (default {DEFAULT_PORT}).")

    def handle(self, *args: Any, **options: Any) -> None:
        host = loopback_host(options["host"])
        port: int = options["port"]
        if not 1 <= port <= 65535:
            raise CommandError("--port must be between 1 and 65535.")
        try:
            # ThreadingHTTPServer sets SO_REUSEADDR (allow_reuse_address), so a port left in
            # TIME_WAIT by the previous run can be bound again at once.
            site = SyntheticSite(host=host, port=port, routes=default_routes())
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"{host}:{port} is already in use (a synthetic site left running? seed_demo uses one that "
                    "serves the synthetic images, and refuses anything else)."
                ) from exc
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc

        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        site.start()
        self.stdout.write(f"Synthetic site (generated images only) on http://{site.authority}/ — stop with Ctrl-C.")
        self.stdout.flush()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            site.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Synthetic site stopped.")
