"""Fetch a reported URL without letting the URL choose where Hotline's workers connect. Django-free.

Every outgoing request for reported content goes through `safe_fetch()`; ruff's banned-api rule keeps
`requests`, `httpx`, `urllib3`, `urllib.request` and `http.client` out of every other module.

How an address is checked (each hop, redirects included):
1. The URL: http or https only; the host as written must not be a private literal in any spelling
   (dotted, decimal, octal, hex, IPv6, IPv4-mapped IPv6); ssrfguard's policy refuses the rest of what
   can be decided without DNS (odd ports from the fetch standard's bad-port list, malformed hosts).
2. The connection: ssrfguard resolves the name once, refuses it if *any* answer is not public, and
   connects to the address it validated (no second lookup, so no DNS-rebinding window), then checks
   the socket's peer. `ip_is_public` from `reports.lib.urls` is applied to every answer and to the
   peer as well, so neither address table alone decides.
3. `allow_hosts` ("host:port", for tests and the demo) lets exactly those pairs through both checks.
   The pair is compared with the host *as written* in the URL: "127.0.0.1:8765" does not admit
   "2130706433:8765" or "localhost:8765", which stay refused like any other private address.

Limits: connect, read and total time (a watchdog shuts the socket down at the deadline, so a server
that drips one byte at a time cannot hold a worker past `total_timeout`); bytes on the wire and
bytes after decoding (gzip/deflate, so a small bomb cannot inflate past `max_bytes`).

Every outcome is a `FetchResult`; network and server misbehaviour never raises. The body lives in
memory only and is kept out of the dataclass's repr so that it cannot end up in a log line.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import ssrfguard
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    DecodeError,
    HTTPError,
    LocationParseError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.response import HTTPResponse
from urllib3.util import parse_url
from urllib3.util.request import ACCEPT_ENCODING

from reports.lib.imaging import detect_type
from reports.lib.urls import ip_is_public

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "HotlineFetcher/1.0 (+report intake of an internet hotline; contact via the operator)"
DEFAULT_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8,text/html;q=0.7,*/*;q=0.5"
DEFAULT_MAX_BYTES = 20 * 2**20

# The values of `reports.models.choices.CaptureError` that a fetch can produce (lib/ never imports models).
BLOCKED_ADDRESS = "blocked_address"
DNS = "dns"
CONNECT = "connect"
TIMEOUT = "timeout"
TLS = "tls"
HTTP_4XX = "http_4xx"
HTTP_5XX = "http_5xx"
TOO_MANY_REDIRECTS = "too_many_redirects"
TOO_BIG = "too_big"
OTHER = "other"
ERROR_KINDS = frozenset(
    {BLOCKED_ADDRESS, DNS, CONNECT, TIMEOUT, TLS, HTTP_4XX, HTTP_5XX, TOO_MANY_REDIRECTS, TOO_BIG, OTHER}
)
TRANSIENT_ERRORS = frozenset({TIMEOUT, CONNECT, DNS, HTTP_5XX})

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 8192
# Ports browsers refuse to fetch from (the fetch standard's "bad port" list): mail, shell, DNS and other
# line protocols that an HTTP request can be smuggled into. Everything else is fair game for a hotline:
# reported sites often sit on 8080, 8443 or stranger ports.
BAD_PORTS = frozenset(
    {
        1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103,
        104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513,
        514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720,
        1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
    }
)  # fmt: skip

_CHUNK = 64 * 1024
# Names reserved by RFC 2606/6761 for documentation and tests. Callers may pass them as
# `unresolvable_suffixes` so that no resolver is ever asked about the demo's and tests' hosts.
RESERVED_SUFFIXES = frozenset({"example", "test", "invalid", "example.com", "example.net", "example.org"})
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Hosts that inet_aton reads as IPv4 although they are not dotted quads: 2130706433, 0x7f.1, 0177.0.0.1.
_LEGACY_IP_RE = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
_DECODABLE = frozenset({"identity", *(token.strip() for token in ACCEPT_ENCODING.split(","))})

# Two connection attempts per name keep dual-stack failover; each is bounded by the remaining time.
_POLICY = ssrfguard.Policy(
    allowed_ports=frozenset(range(1, 65536)) - BAD_PORTS,
    max_connection_attempts=2,
)

# getaddrinfo takes no timeout, so lookups run on a small pool and are abandoned at the deadline. A
# lookup that hangs keeps its worker until the system resolver gives up; the fetch does not wait.
_DNS_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="safe-fetch-dns")
_getaddrinfo = socket.getaddrinfo  # indirection so tests can map names without touching real DNS


@dataclass
class FetchResult:
    """What one fetch attempt produced, failed or not: the material of one `Capture` row."""

    requested_url: str
    final_url: str = ""
    ip: str | None = None  # the peer address actually connected to on the last hop
    http_status: int | None = None
    declared_type: str = ""  # the Content-Type header, as the server claims
    detected_type: str = ""  # from the magic bytes; "" when unknown or not fetched
    body: bytes | None = field(default=None, repr=False)  # in memory only, and never in a log line
    byte_count: int = 0  # decoded bytes read (also when a limit stopped the read)
    error: str = ""  # "" or one of ERROR_KINDS
    error_detail: str = ""
    redirects: list[str] = field(default_factory=list)  # every redirect target tried, in order
    elapsed: float = 0.0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def transient(self) -> bool:
        return is_transient(self.error, self.http_status)


def is_transient(error: str, http_status: int | None = None) -> bool:
    """True if trying again later may succeed (timeouts, refused connections, DNS, 5xx, 429)."""
    if not error:
        return False
    return error in TRANSIENT_ERRORS or http_status == 429


class _Failure(Exception):
    """A classified failure. Deliberately not an OSError, so urllib3 passes it through unwrapped."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class _Hop:
    scheme: str
    host: str  # as urllib3 will connect to it: lower case, IDNA, IPv6 without brackets
    port: int
    target: str  # path and query


def _parse_allow_hosts(entries: Iterable[str]) -> frozenset[tuple[str, int]]:
    pairs: set[tuple[str, int]] = set()
    for entry in entries:
        host, _, port = entry.strip().lower().rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if host and port.isdigit():
            pairs.add((host, int(port)))
    return frozenset(pairs)


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host spells, in any form a resolver would accept as a literal."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IP_RE.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def _check_hop(
    url: str, allowed_pairs: frozenset[tuple[str, int]], unresolvable_suffixes: Collection[str] = ()
) -> _Hop:
    """Everything decidable about one hop's URL without the network."""
    if len(url) > MAX_URL_LENGTH:
        raise _Failure(OTHER, f"URL longer than {MAX_URL_LENGTH} characters")
    if _CONTROL_RE.search(url):
        raise _Failure(OTHER, "URL contains control characters")
    try:
        parsed = parse_url(url)
    except LocationParseError as exc:
        raise _Failure(OTHER, f"malformed URL: {exc}") from exc
    scheme = (parsed.scheme or "").lower()
    if scheme not in DEFAULT_PORTS:
        raise _Failure(BLOCKED_ADDRESS, f"scheme {scheme or '(none)'!r} is not http or https")
    if not parsed.host:
        raise _Failure(OTHER, "URL has no host")
    host = parsed.host[1:-1] if parsed.host.startswith("[") else parsed.host
    port = parsed.port or DEFAULT_PORTS[scheme]
    if (host, port) not in allowed_pairs:
        bare = host.rstrip(".")
        if any(bare == suffix or bare.endswith("." + suffix) for suffix in unresolvable_suffixes):
            # Names reserved for documentation and testing (RFC 2606/6761): no resolver is asked.
            raise _Failure(DNS, f"{host} is a reserved example name and is not fetched")
        literal = _literal_ip(host)
        if literal is not None and not ip_is_public(literal):
            raise _Failure(BLOCKED_ADDRESS, f"{host} is not a public address")
        netloc = f"[{host}]" if ":" in host else host
        try:
            _POLICY.check_url(f"{scheme}://{netloc}:{port}/")
        except ssrfguard.SSRFGuardError as exc:
            raise _Failure(BLOCKED_ADDRESS, _reason(exc)) from exc
    return _Hop(scheme=scheme, host=host, port=port, target=parsed.request_uri)


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc)


class _Guard:
    """Per-fetch state shared with the connections: the deadline, the peer and the watchdog.

    The watchdog holds a duplicate of each connected socket and shuts the connection down when the
    deadline passes. That unblocks any read in progress (urllib3 and http.client loop over short reads
    inside one call), which per-read timeouts alone cannot do against a server that drips bytes.
    """

    def __init__(self, *, allowed_pairs: frozenset[tuple[str, int]], deadline: float, connect_timeout: float) -> None:
        self.allowed_pairs = allowed_pairs
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self.peer_ip: str | None = None
        self.expired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for watched in self._watched:
                with contextlib.suppress(OSError):  # already closed by the fetch itself
                    watched.shutdown(socket.SHUT_RDWR)

    def release(self) -> None:
        """Drop the duplicates of finished connections (so their sockets really close)."""
        with self._lock:
            for watched in self._watched:
                watched.close()
            self._watched.clear()

    def close(self) -> None:
        self._timer.cancel()
        self.release()

    def _resolver(self, host: str, port: int, family: int, type_: int, proto: int, flags: int) -> Any:
        if flags & socket.AI_NUMERICHOST:
            return _getaddrinfo(host, port, family, type_, proto, flags)
        future = _DNS_POOL.submit(_getaddrinfo, host, port, family, type_, proto, flags)
        try:
            return future.result(timeout=max(0.0, self.remaining()))
        except TimeoutError as exc:
            future.cancel()
            raise _Failure(TIMEOUT, f"name lookup for {host} did not finish in time") from exc

    def open_socket(self, host: str, port: int, scheme: str) -> socket.socket:
        """Resolve, validate every answer, connect to a validated one, and check the peer."""
        allowed = (host, port) in self.allowed_pairs
        policy = _allow_policy(port) if allowed else _POLICY
        netloc = f"[{host}]" if ":" in host else host
        try:
            target = policy.check_url(f"{scheme}://{netloc}:{port}/")
            addresses = ssrfguard.resolve(target, policy=policy, resolver=self._resolver)
        except ssrfguard.SSRFGuardError as exc:
            raise _Failure(BLOCKED_ADDRESS, _reason(exc)) from exc
        except socket.gaierror as exc:
            raise _Failure(DNS, f"{host} did not resolve: {exc.strerror or exc}") from exc
        if not allowed:  # our own rule as well, so that neither table alone decides
            for address in addresses:
                if not ip_is_public(address.ip):
                    raise _Failure(BLOCKED_ADDRESS, f"{host} resolves to {address.ip}, which is not public")
        sock = self._connect_first(addresses, policy)
        try:
            peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
            if not allowed and not ip_is_public(peer):
                raise _Failure(BLOCKED_ADDRESS, f"connected peer {peer} is not a public address")
            with self._lock:
                if self.expired:
                    raise _Failure(TIMEOUT, "total time limit reached while connecting")
                self._watched.append(sock.dup())
        except BaseException:
            sock.close()
            raise
        self.peer_ip = str(peer)
        return sock

    def _connect_first(self, addresses: tuple[ssrfguard.Address, ...], policy: ssrfguard.Policy) -> socket.socket:
        failures: list[OSError] = []
        for address in addresses[: policy.max_connection_attempts]:
            remaining = self.remaining()
            if remaining <= 0:
                break
            try:
                return ssrfguard.connect([address], policy=policy, timeout=min(self.connect_timeout, remaining))
            except ssrfguard.SSRFGuardError as exc:
                raise _Failure(BLOCKED_ADDRESS, _reason(exc)) from exc
            except OSError as exc:
                failures.append(exc)
        if not failures:
            raise _Failure(TIMEOUT, "total time limit reached before connecting")
        if all(isinstance(failure, TimeoutError) for failure in failures):
            raise _Failure(TIMEOUT, f"connect timed out: {failures[-1]}")
        raise _Failure(CONNECT, f"connect failed: {failures[-1]}")


@functools.lru_cache(maxsize=64)
def _allow_policy(port: int) -> ssrfguard.Policy:
    """The policy for an explicitly allowed host:port pair: any address, that port only."""
    return ssrfguard.Policy(
        allowed_networks=("0.0.0.0/0", "::/0"), allowed_ports=frozenset({port}), max_connection_attempts=2
    )


class _PinnedHTTPConnection(HTTPConnection):
    """urllib3's connection with its one name-to-socket step replaced by the guarded one."""

    def __init__(self, *args: Any, guard: _Guard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    def _new_conn(self) -> socket.socket:
        return self._guard.open_socket(self.host, self.port, "http")


class _PinnedHTTPSConnection(HTTPSConnection):
    """Same for TLS. `.host` keeps the name, so SNI and the certificate check use the name."""

    def __init__(self, *args: Any, guard: _Guard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    def _new_conn(self) -> socket.socket:
        return self._guard.open_socket(self.host, self.port, "https")


def safe_fetch(
    url: str,
    *,
    allow_hosts: Collection[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    connect_timeout: float = 5,
    read_timeout: float = 10,
    total_timeout: float = 30,
    max_redirects: int = 5,
    accept: str = DEFAULT_ACCEPT,
    user_agent: str = DEFAULT_USER_AGENT,
    unresolvable_suffixes: Collection[str] = (),
) -> FetchResult:
    """GET `url` under Hotline's fetch rules and return what happened. Never raises for the network.

    `allow_hosts` holds "host:port" pairs that may be private (tests and the demo only; see the module
    docstring for how they match). Redirects are followed up to `max_redirects`, each hop re-checked.
    `total_timeout` bounds the whole call: lookups, connects, redirects and reads.
    """
    started = time.monotonic()
    result = FetchResult(requested_url=url, final_url=url)
    guard = _Guard(
        allowed_pairs=_parse_allow_hosts(allow_hosts),
        deadline=started + total_timeout,
        connect_timeout=connect_timeout,
    )
    headers = {
        "User-Agent": user_agent,
        "Accept": accept,
        "Accept-Encoding": ACCEPT_ENCODING,
        "Connection": "close",
    }
    current = url.strip()
    try:
        while True:
            result.final_url = current
            result.http_status = guard.peer_ip = None
            result.declared_type = ""
            hop = _check_hop(current, guard.allowed_pairs, unresolvable_suffixes)
            sent, response = _send(hop, guard, headers=headers, read_timeout=read_timeout)
            try:
                result.http_status = response.status
                result.declared_type = (response.headers.get("Content-Type") or "")[:100]
                location = response.headers.get("Location")
                if response.status in REDIRECT_STATUSES and location:
                    if len(result.redirects) >= max_redirects:
                        raise _Failure(TOO_MANY_REDIRECTS, f"more than {max_redirects} redirects")
                    current = urljoin(current, location.strip()).partition("#")[0]
                    result.redirects.append(current)
                    continue
                _check_status(response.status)
                body = _read_body(
                    response, sent.sock, guard, max_bytes=max_bytes, read_timeout=read_timeout, result=result
                )
            finally:
                response.close()
                sent.close()
                guard.release()
            result.body = body
            result.byte_count = len(body)
            result.detected_type = detect_type(body) or ""
            break
    except _Failure as failure:
        result.error, result.error_detail = failure.kind, failure.detail
    except Exception as exc:  # a fetch reports every failure instead of raising it
        result.error, result.error_detail = _classify(exc, guard)
    finally:
        guard.close()
        result.ip = guard.peer_ip  # also when TLS or the read failed after the connection was made
        result.elapsed = time.monotonic() - started
    result.error_detail = result.error_detail[:300]
    if result.error:
        result.body = None
    return result


class _Sent:
    """A connection whose response is being read, and the socket it reads from."""

    def __init__(self, connection: HTTPConnection) -> None:
        # Captured before getresponse(): http.client drops `connection.sock` when the server
        # says "Connection: close", while the response keeps reading from this socket.
        self.sock: socket.socket | None = connection.sock
        self._connection = connection

    def close(self) -> None:
        self._connection.close()


def _send(hop: _Hop, guard: _Guard, *, headers: dict[str, str], read_timeout: float) -> tuple[_Sent, HTTPResponse]:
    remaining = guard.remaining()
    if remaining <= 0:
        raise _Failure(TIMEOUT, "total time limit reached")
    connection_class = _PinnedHTTPSConnection if hop.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(
        host=hop.host, port=hop.port, timeout=min(guard.connect_timeout, remaining), guard=guard
    )
    try:
        # User-info in the URL is never sent: only the path and query given here go on the wire.
        connection.request("GET", hop.target, headers=headers, preload_content=False, decode_content=True)
        sent = _Sent(connection)
        connection.timeout = max(0.001, min(read_timeout, guard.remaining()))
        return sent, connection.getresponse()
    except BaseException:
        connection.close()
        raise


def _check_status(status: int) -> None:
    if 400 <= status < 500:
        raise _Failure(HTTP_4XX, f"HTTP {status}")
    if status >= 500:
        raise _Failure(HTTP_5XX, f"HTTP {status}")
    if not 200 <= status < 300:
        raise _Failure(OTHER, f"unexpected HTTP {status}")


def _read_body(
    response: HTTPResponse,
    sock: socket.socket | None,
    guard: _Guard,
    *,
    max_bytes: int,
    read_timeout: float,
    result: FetchResult,
) -> bytes:
    length = response.headers.get("Content-Length", "")
    if length.strip().isdigit() and int(length) > max_bytes:
        raise _Failure(TOO_BIG, f"Content-Length {int(length)} exceeds the {max_bytes}-byte limit")
    encodings = [token.strip().lower() for token in response.headers.get("Content-Encoding", "").split(",")]
    unsupported = [token for token in encodings if token and token not in _DECODABLE]
    if unsupported:
        raise _Failure(OTHER, f"unsupported Content-Encoding {', '.join(unsupported)}")
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = guard.remaining()
        if remaining <= 0 or guard.expired:
            raise _Failure(TIMEOUT, "total time limit reached while reading")
        if sock is not None and sock.fileno() != -1:  # http.client closes it once the body is complete
            sock.settimeout(min(read_timeout, remaining))
        # read1 returns after at most one read from the socket, and at most _CHUNK decoded bytes, so the
        # limits below are checked while a bomb is still being inflated, not after.
        data = response.read1(_CHUNK, decode_content=True)
        if not data:
            break
        total += len(data)
        result.byte_count = total
        if total > max_bytes:
            raise _Failure(TOO_BIG, f"more than {max_bytes} bytes after decoding")
        if response.tell() > max_bytes:
            raise _Failure(TOO_BIG, f"more than {max_bytes} bytes on the wire")
        chunks.append(data)
    if guard.expired:  # the watchdog's shutdown reads as end-of-body on a close-delimited response
        raise _Failure(TIMEOUT, "total time limit reached while reading")
    return b"".join(chunks)


def _classify(exc: BaseException, guard: _Guard) -> tuple[str, str]:
    detail = f"{type(exc).__name__}: {exc}"
    if guard.expired:
        return TIMEOUT, f"total time limit reached ({detail})"
    if isinstance(exc, SSLError | ssl.SSLError | ssl.CertificateError):
        return TLS, detail
    if isinstance(exc, Urllib3TimeoutError | TimeoutError):
        return TIMEOUT, detail
    if isinstance(exc, DecodeError):
        return OTHER, f"content could not be decoded: {exc}"
    if isinstance(exc, ProtocolError | ConnectionError):
        return CONNECT, detail
    if isinstance(exc, HTTPError | OSError):
        return OTHER, detail
    logger.exception("safe_fetch: unexpected error")
    return OTHER, detail
