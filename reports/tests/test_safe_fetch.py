"""The SSRF-safe fetcher against real servers on loopback, and the image-link extractor.

Every server, canary and request here is on a loopback address. Names never reach real DNS: an autouse
fixture replaces the fetcher's resolver with a table, and a tripwire fails the test if the fetcher ever
tries to connect to an address outside 127.0.0.0/8 and ::1.
"""

from __future__ import annotations

import datetime
import gzip
import http.server
import io
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image, ImageDraw

from reports.lib import safe_fetch as sf
from reports.lib.image_links import extract_image_links, parse_srcset
from reports.lib.safe_fetch import DEFAULT_USER_AGENT, FetchResult, is_transient, safe_fetch
from reports.models.choices import CaptureError
from reports.tests.canary import Canary

MiB = 2**20


def _png() -> bytes:
    image = Image.new("RGB", (64, 48))
    image.putdata([(x * 4, y * 5, (x + y) * 2) for y in range(48) for x in range(64)])
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, 40, 40), fill=(250, 200, 0))
    draw.rectangle((44, 4, 60, 44), outline=(0, 0, 255), width=3)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


PNG = _png()
HTML = b"<!DOCTYPE html><html><body><img src='/a.png'></body></html>"


def _gzip_bomb(decoded_size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MiB)
    parts = [compressor.compress(zeros) for _ in range(decoded_size // MiB)]
    return b"".join(parts) + compressor.flush()


BOMB = _gzip_bomb(64 * MiB)


@dataclass
class ServerLog:
    paths: list[str] = field(default_factory=list)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    finished: dict[str, threading.Event] = field(default_factory=dict)

    def done(self, path: str) -> threading.Event:
        return self.finished.setdefault(path, threading.Event())


class _Handler(http.server.BaseHTTPRequestHandler):
    log: ServerLog  # set on the per-server subclass

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "text/plain", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, path: str, piece: bytes, *, interval: float = 0.0, limit: float = 10.0) -> None:
        """Write `piece` until the client goes away (or `limit` seconds), counting what was written."""
        sent = 0
        stop = time.monotonic() + limit
        try:
            while time.monotonic() < stop:
                self.wfile.write(piece)
                self.wfile.flush()
                sent += len(piece)
                if interval:
                    time.sleep(interval)
        except OSError:
            pass
        finally:
            self.log.bytes_sent[path] = sent
            self.log.done(path).set()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        self.log.paths.append(self.path)
        self.log.headers[self.path] = dict(self.headers.items())
        if path == "/image.png":
            self._send(200, PNG, "image/png")
        elif path == "/gzipped.png":
            self._send(200, gzip.compress(PNG), "image/png", Content_Encoding="gzip")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"nope")
        elif path.startswith("/redirect/"):
            remaining = int(path.rsplit("/", 1)[1])
            target = f"/redirect/{remaining - 1}" if remaining else "/image.png"
            self._send(302, b"", Location=target)
        elif path == "/redirect-to":
            self._send(int(query.get("status", ["302"])[0]), b"", Location=query["url"][0])
        elif path == "/big-length":
            self.send_response(200)
            self.send_header("Content-Length", str(512 * MiB))
            self.end_headers()
            self._stream(path, bytes(64 * 1024))
        elif path == "/big-no-length":
            self.send_response(200)
            self.end_headers()
            self._stream(path, bytes(64 * 1024))
        elif path == "/bomb":
            self._send(200, BOMB, "image/png", Content_Encoding="gzip")
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self._stream(path, b"\xff", interval=0.2)
        elif path == "/drip-headers":
            self.wfile.write(b"HTTP/1.0 200 OK\r\n")
            self._stream(path, b"X", interval=0.2)
        elif path == "/html-as-jpeg":
            self._send(200, HTML, "image/jpeg")
        else:
            self._send(404, b"not here")


@dataclass
class Server:
    host: str
    port: int
    log: ServerLog

    @property
    def pair(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"


def _start_server(context: ssl.SSLContext | None = None) -> tuple[http.server.ThreadingHTTPServer, Server]:
    log = ServerLog()
    handler = type("Handler", (_Handler,), {"log": log})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd, Server("127.0.0.1", httpd.server_address[1], log)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    httpd, srv = _start_server()
    yield srv
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    httpd, srv = _start_server(context)
    yield srv
    httpd.shutdown()
    httpd.server_close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _ipv6_loopback()


@dataclass
class Canaries:
    v4: Canary  # 127.0.0.2
    loopback: Canary  # 127.0.0.1, on a port that is never allowed
    v6: Canary | None  # ::1

    def total(self) -> int:
        time.sleep(0.02)  # let the accept loops see anything the kernel already completed
        return sum(c.connections for c in (self.v4, self.loopback, self.v6) if c is not None)


@pytest.fixture(scope="module")
def _canaries() -> Iterator[Canaries]:
    found = Canaries(Canary("127.0.0.2"), Canary("127.0.0.1"), Canary("::1", socket.AF_INET6) if HAS_IPV6 else None)
    yield found
    for canary in (found.v4, found.loopback, found.v6):
        if canary is not None:
            canary.close()


@pytest.fixture
def canaries(_canaries: Canaries) -> Canaries:
    """The canaries, with their counts at zero for this test."""
    _canaries.total()
    for canary in (_canaries.v4, _canaries.loopback, _canaries.v6):
        if canary is not None:
            canary.connections = 0
    return _canaries


FAKE_DNS = {"localhost": "127.0.0.1", "rebind.example": "127.0.0.1", "evil.example": "127.0.0.2"}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names resolve from FAKE_DNS only; anything else fails as an unknown name would."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            if host.rstrip(".").lower() not in FAKE_DNS:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            host = FAKE_DNS[host.rstrip(".").lower()]
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(sf, "_getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def loopback_tripwire(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test if the fetcher ever tries to connect outside loopback."""
    real = sf.ssrfguard.connect
    violations: list[str] = []

    def connect(addresses, **kwargs):
        for address in addresses:
            ip = (address.ip.ipv4_mapped or address.ip) if address.ip.version == 6 else address.ip
            if not ip.is_loopback:
                violations.append(str(address.ip))
                raise AssertionError(f"tried to connect to {address.ip}")
        return real(addresses, **kwargs)

    monkeypatch.setattr(sf.ssrfguard, "connect", connect)
    yield violations
    assert violations == []


def fetch(url: str, server: Server, **kwargs) -> FetchResult:
    return safe_fetch(url, allow_hosts=[server.pair], **kwargs)


# --- The happy path -------------------------------------------------------------------------------


def test_fetches_an_image_and_records_the_capture_fields(server: Server) -> None:
    result = fetch(server.url("/image.png?case=ok"), server)

    assert result.ok
    assert result.error == ""
    assert result.body == PNG
    assert result.byte_count == len(PNG)
    assert result.http_status == 200
    assert result.ip == "127.0.0.1"
    assert result.declared_type == "image/png"
    assert result.detected_type == "image/png"
    assert result.final_url == result.requested_url == server.url("/image.png?case=ok")
    assert result.redirects == []
    assert 0 < result.elapsed < 5
    assert result.started_at.tzinfo is not None
    assert "body" not in repr(result)  # the content never reaches a log line through repr()


def test_sends_the_fixed_user_agent_and_only_encodings_it_can_decode(server: Server) -> None:
    fetch(server.url("/image.png?case=ua"), server)

    headers = server.log.headers["/image.png?case=ua"]
    assert headers["User-Agent"] == DEFAULT_USER_AGENT
    assert set(headers["Accept-Encoding"].split(",")) <= {"gzip", "deflate", "br", "zstd"}
    assert "Cookie" not in headers
    assert "Authorization" not in headers


def test_user_info_in_the_url_is_never_sent(server: Server) -> None:
    result = fetch(f"http://alice:secret@{server.pair}/image.png?case=userinfo", server)

    assert result.ok
    assert "Authorization" not in server.log.headers["/image.png?case=userinfo"]


def test_gzip_content_is_decoded(server: Server) -> None:
    result = fetch(server.url("/gzipped.png"), server)

    assert result.ok
    assert result.body == PNG
    assert result.detected_type == "image/png"


def test_html_served_as_jpeg_is_detected_as_html(server: Server) -> None:
    result = fetch(server.url("/html-as-jpeg"), server)

    assert result.ok
    assert result.declared_type == "image/jpeg"
    assert result.detected_type == "text/html"


def test_a_name_listed_in_allow_hosts_may_be_private(server: Server) -> None:
    result = safe_fetch(f"http://localhost:{server.port}/image.png", allow_hosts=[f"localhost:{server.port}"])

    assert result.ok
    assert result.ip == "127.0.0.1"


# --- Status codes and retry classification --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [(404, "http_4xx", False), (403, "http_4xx", False), (429, "http_4xx", True), (500, "http_5xx", True)],
)
def test_error_statuses_are_classified(server: Server, status: int, error: str, transient: bool) -> None:
    result = fetch(server.url(f"/status/{status}"), server)

    assert result.error == error
    assert result.http_status == status
    assert result.transient is transient
    assert result.body is None


def test_every_error_kind_is_a_capture_error_value() -> None:
    assert set(sf.ERROR_KINDS) <= set(CaptureError.values)


def test_is_transient() -> None:
    assert [is_transient(kind) for kind in ("timeout", "connect", "dns", "http_5xx")] == [True] * 4
    assert not any(
        is_transient(kind) for kind in ("blocked_address", "tls", "http_4xx", "too_big", "too_many_redirects", "other")
    )
    assert is_transient("http_4xx", 429)
    assert not is_transient("", 200)


def test_refused_connection_is_a_transient_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there

    result = safe_fetch(f"http://127.0.0.1:{port}/", allow_hosts=[f"127.0.0.1:{port}"])

    assert result.error == "connect"
    assert result.transient


def test_unknown_name_is_a_transient_dns_error() -> None:
    result = safe_fetch("http://nxdomain.example/image.png")

    assert result.error == "dns"
    assert result.transient


def test_untrusted_certificate_is_a_tls_error(tls_server: Server) -> None:
    result = safe_fetch(tls_server.url("/image.png", "https"), allow_hosts=[tls_server.pair])

    assert result.error == "tls"
    assert not result.transient
    assert result.ip == "127.0.0.1"  # the connection was made; the certificate was refused
    assert tls_server.log.paths == []


# --- Redirects ------------------------------------------------------------------------------------


def test_follows_a_three_hop_redirect_chain(server: Server) -> None:
    result = fetch(server.url("/redirect/2"), server)

    assert result.ok
    assert result.body == PNG
    assert result.redirects == [server.url("/redirect/1"), server.url("/redirect/0"), server.url("/image.png")]
    assert result.final_url == server.url("/image.png")


def test_six_redirects_are_too_many(server: Server) -> None:
    result = fetch(server.url("/redirect/5"), server)  # 6 redirects before the image

    assert result.error == "too_many_redirects"
    assert not result.transient
    assert len(result.redirects) == 5
    assert result.http_status == 302


def test_redirect_to_a_loopback_port_that_is_not_allowed_is_blocked(server: Server, canaries: Canaries) -> None:
    target = f"http://127.0.0.1:{canaries.loopback.port}/"
    result = fetch(server.url(f"/redirect-to?url={quote(target)}"), server)

    assert result.error == "blocked_address"
    assert not result.transient
    assert result.final_url == target
    assert result.redirects == [target]
    assert result.ip is None
    assert result.http_status is None
    assert canaries.total() == 0


def test_redirect_to_another_loopback_address_is_blocked(server: Server, canaries: Canaries) -> None:
    target = f"http://127.0.0.2:{canaries.v4.port}/"
    result = fetch(server.url(f"/redirect-to?status=307&url={quote(target)}"), server)

    assert result.error == "blocked_address"
    assert canaries.total() == 0


# --- Addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "0177.0.0.1", "0x7f000001", "127.1", "127.0.0.1."])
def test_other_spellings_of_an_allowed_address_are_not_allowed(server: Server, host: str) -> None:
    # The allow-list compares the host as written: "127.0.0.1:PORT" admits that spelling only.
    marker = f"/image.png?spelling={host}"
    result = fetch(f"http://{host}:{server.port}{marker}", server)

    assert result.error == "blocked_address"
    assert marker not in server.log.paths


def test_a_name_resolving_to_loopback_is_blocked(server: Server) -> None:
    result = fetch(f"http://rebind.example:{server.port}/image.png?case=dns", server)

    assert result.error == "blocked_address"
    assert "/image.png?case=dns" not in server.log.paths


def test_direct_urls_to_unlisted_loopback_listeners_are_blocked(canaries: Canaries) -> None:
    urls = [f"http://127.0.0.2:{canaries.v4.port}/", f"http://127.0.0.1:{canaries.loopback.port}/"]
    if canaries.v6 is not None:
        urls.append(f"http://[::1]:{canaries.v6.port}/")
    for url in urls:
        assert safe_fetch(url).error == "blocked_address", url
    assert canaries.total() == 0


# 30+ payloads: private and special ranges, encoded IPv4, IPv6 forms, names, schemes, and redirect
# chains that end in private space. {v4} is a canary on 127.0.0.2, {lo} one on 127.0.0.1, {v6} one on
# ::1 (or {lo}'s port when the machine has no IPv6 loopback); {srv} is the allowed test server.
SSRF_CORPUS = [
    "http://127.0.0.2:{v4}/",
    "http://127.0.0.1:{lo}/",
    "http://[::1]:{v6}/",
    "http://2130706434:{v4}/",
    "http://2130706433:{lo}/",
    "http://0x7f000002:{v4}/",
    "http://0x7f.0.0.2:{v4}/",
    "http://0177.0.0.2:{v4}/",
    "http://0177.0.0.01:{lo}/",
    "http://127.1:{lo}/",
    "http://127.0.2:{v4}/",
    "http://[::ffff:127.0.0.2]:{v4}/",
    "http://[::ffff:7f00:1]:{lo}/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{lo}/",
    "http://[::127.0.0.1]:{lo}/",
    "http://[64:ff9b::7f00:1]:{lo}/",
    "http://[2002:7f00:1::]:{lo}/",
    "http://0.0.0.0:{lo}/",
    "http://0:{lo}/",
    "http://[::]:{v6}/",
    "http://localhost:{lo}/",
    "http://LOCALHOST.:{lo}/",
    "http://evil.example:{v4}/",
    "http://user:pass@127.0.0.2:{v4}/",
    "http://127.0.0.2.:{v4}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://198.18.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[ff02::1]/",
    "file:///etc/passwd",
    "ftp://127.0.0.2:{v4}/",
    "gopher://127.0.0.2:{v4}/_GET",
    "dict://127.0.0.2:{v4}/",
    "redirect:http://127.0.0.2:{v4}/",
    "redirect:http://[::1]:{v6}/",
    "redirect:http://2130706433:{lo}/",
    "redirect:http://169.254.169.254/latest/meta-data/",
    "redirect:file:///etc/passwd",
    "redirect://127.0.0.2:{v4}/",
    "redirect:http://evil.example:{v4}/",
    "redirect:redirect:http://0.0.0.0:{lo}/",
]


def _via_redirects(server: Server, template: str) -> str:
    """ "redirect:X" is the allowed server redirecting to X (nested for a chain)."""
    if not template.startswith("redirect:"):
        return template
    target = _via_redirects(server, template.removeprefix("redirect:"))
    return server.url("/redirect-to?url=" + quote(target, safe=""))


@pytest.mark.parametrize("template", SSRF_CORPUS)
def test_ssrf_corpus_is_refused_without_connecting(template: str, server: Server, canaries: Canaries) -> None:
    v6 = canaries.v6.port if canaries.v6 is not None else canaries.loopback.port
    url = _via_redirects(server, template.format(v4=canaries.v4.port, lo=canaries.loopback.port, v6=v6))

    result = safe_fetch(url, allow_hosts=[server.pair], total_timeout=5)

    assert result.error == "blocked_address", (url, result.error, result.error_detail)
    assert not result.transient
    assert result.body is None
    assert canaries.total() == 0


# --- Limits ---------------------------------------------------------------------------------------


def test_declared_length_over_the_limit_is_refused_before_reading(server: Server) -> None:
    result = fetch(server.url("/big-length"), server, max_bytes=MiB)

    assert result.error == "too_big"
    assert not result.transient
    assert result.byte_count == 0
    assert result.body is None
    assert server.log.done("/big-length").wait(3)
    assert server.log.bytes_sent["/big-length"] < 64 * MiB  # the server was cut off, not read to the end


def test_undeclared_length_is_cut_off_at_the_limit(server: Server) -> None:
    started = time.monotonic()
    result = fetch(server.url("/big-no-length"), server, max_bytes=MiB)

    assert result.error == "too_big"
    assert MiB < result.byte_count <= MiB + 64 * 1024
    assert time.monotonic() - started < 3
    assert server.log.done("/big-no-length").wait(3)
    assert server.log.bytes_sent["/big-no-length"] < 64 * MiB


def test_gzip_bomb_is_stopped_by_the_decoded_byte_limit(server: Server) -> None:
    assert len(BOMB) < MiB  # small on the wire: only the decoded limit can catch it

    result = fetch(server.url("/bomb"), server)  # the default limit, 20 MiB

    assert result.error == "too_big"
    assert "decoding" in result.error_detail
    assert 20 * MiB < result.byte_count <= 20 * MiB + 64 * 1024
    assert result.body is None


@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_slow_drip_is_stopped_by_the_total_deadline(server: Server, path: str) -> None:
    # Each byte arrives well within the read timeout: only the total deadline can end this.
    result = fetch(server.url(path), server, read_timeout=0.5, total_timeout=1.0)

    assert result.error == "timeout"
    assert result.transient
    assert 0.9 < result.elapsed < 1.5


# --- Image links in HTML --------------------------------------------------------------------------

MESSY_HTML = b"""<!DOCTYPE html>
<HTML><head>
<base href="/gallery/">
<meta property="og:image" content="https://cdn.example.net/og.jpg">
<meta name="twitter:image" content="/tw.png">
<link rel="image_src" href="thumb.webp">
<title>broken & messy</title></head>
<body><div class=x><p>unclosed
<IMG SRC=first.jpg alt=unquoted>
<img src="data:image/png;base64,iVBORw0KGgo=">
<img src="  /space.gif  " srcset="small.jpg 480w, large.jpg?a=1&amp;b=2 1080w,
   https://img.example.org/x,y.png 2x">
<picture><source srcset="pic.avif 1x, pic-2x.avif 2x" type="image/avif"><img data-src="lazy.png"></picture>
<img src="javascript:alert(1)"><img src="first.jpg#frag"><img src="">
<a href="photo.JPG?size=big">photo</a> <a href="page.html">not an image</a> <a href="mailto:x@example.org">m</a>
<a href="//other.example.com/pic.jpeg">scheme-relative</a>
<video poster="poster.png"></video><input type=image src=button.gif><input type=text src=nope.gif>
<img src="first.jpg"><table><tr><td><img src='in
side.png'></td></div></body>
<img src="after-body.jpg
"""


def test_extract_image_links_from_messy_html() -> None:
    links = extract_image_links(MESSY_HTML, "http://site.example/path/page.html")

    assert links == [
        "https://cdn.example.net/og.jpg",
        "http://site.example/tw.png",
        "http://site.example/gallery/thumb.webp",
        "http://site.example/gallery/first.jpg",
        "http://site.example/space.gif",
        "http://site.example/gallery/small.jpg",
        "http://site.example/gallery/large.jpg?a=1&b=2",
        "https://img.example.org/x,y.png",
        "http://site.example/gallery/pic.avif",
        "http://site.example/gallery/pic-2x.avif",
        "http://site.example/gallery/lazy.png",
        "http://site.example/gallery/photo.JPG?size=big",
        "http://other.example.com/pic.jpeg",
        "http://site.example/gallery/poster.png",
        "http://site.example/gallery/button.gif",
        "http://site.example/gallery/inside.png",
    ]


def test_extract_image_links_respects_the_limit_and_document_order() -> None:
    page = b"".join(b'<img src="/%d.png">' % i for i in range(100))

    links = extract_image_links(page, "https://site.example/", limit=5)

    assert links == [f"https://site.example/{i}.png" for i in range(5)]
    assert extract_image_links(page, "https://site.example/", limit=0) == []


def test_extract_image_links_survives_garbage() -> None:
    garbage = (
        b'\x00\xff\xfe<img src=a.png><!--<img src=c.png>--><p <img src="b.png"<<<>>></p></p></div>'
        b'<img src=d.png><img src="http://[::1"><![CDATA[<img src=e.png>]]><img src=f.png><!-- open <img src=g.png>'
    )

    links = extract_image_links(garbage, "http://site.example/")

    # Commented-out markup is not an image; what follows broken markup still counts.
    assert links == ["http://site.example/a.png", "http://site.example/d.png", "http://site.example/f.png"]


def test_parse_srcset_keeps_commas_inside_urls() -> None:
    assert parse_srcset("a.jpg 1x,b.jpg 2x , https://x.example/c,d.jpg 3x,,") == [
        "a.jpg",
        "b.jpg",
        "https://x.example/c,d.jpg",
    ]
