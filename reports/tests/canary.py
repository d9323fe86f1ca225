"""A loopback listener that SSRF tests use as a tripwire: any connection to it is a failure."""

from __future__ import annotations

import socket
import threading
import time


class Canary:
    """A raw TCP listener that must never be reached: it accepts, counts and hangs up."""

    def __init__(self, host: str, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.host = host
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"canary-{host}", daemon=True)
        self._thread.start()

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self, path: str = "/secret.jpg") -> str:
        return f"http://{self.authority}{path}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def count(self) -> int:
        time.sleep(0.06)  # let the accept loop see anything the kernel already completed
        return self.connections

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
