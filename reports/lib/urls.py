"""Validate and canonicalise reported URLs. Django-free.

Canonical form (so that one piece of content at one address is one `Url` row):
lower-case scheme and host, IDNA (punycode) host, no user-info, no default port, no
fragment, dot segments resolved, percent-encoding normalised (unreserved characters
decoded, hex upper-cased, unsafe characters encoded), common tracking parameters removed
and the remaining query parameters sorted.

Validation refuses what Hotline must never fetch or cannot act on: other schemes, hosts
that are not public DNS names, and IP literals in private, loopback, link-local, reserved
or otherwise non-global ranges (in any of the spellings `inet_aton` accepts).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Collection
from dataclasses import dataclass

import idna

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048

# Query parameters that only track who clicked where; they never change what a page shows.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "s_cid",
    }
)
TRACKING_PREFIXES = ("utm_",)

# Names that never resolve to a public host, or resolve only inside a network.
NON_PUBLIC_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "invalid",
    "onion",
    "home.arpa",
    "in-addr.arpa",
    "ip6.arpa",
)

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters that may stay literal in a path segment or query component (RFC 3986 pchar plus
# "/" and "?"); everything else is percent-encoded.
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_QUERY_SAFE = _UNRESERVED | frozenset("!$'()*+,;:@/?")  # '&' and '=' delimit parameters
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD_RE = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_LEGACY_IP_RE = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")


class InvalidUrl(ValueError):
    """A reported URL that Hotline refuses. `code` is stable; `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CanonicalUrl:
    url: str  # the canonical form
    scheme: str
    host: str  # punycode, lower case; IPv6 without brackets
    port: int | None  # None for the scheme's default port
    is_ip: bool


def ip_is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses (also for IPv4 mapped into IPv6)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip_is_public(ip.ipv4_mapped)
        if ip.sixtofour is not None and not ip_is_public(ip.sixtofour):
            return False
        if ip.teredo is not None:
            return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.IPv6Address(host[1:-1].split("%", 1)[0])
        except ValueError as exc:
            raise InvalidUrl("bad_host", "The address in brackets is not a valid IPv6 address.") from exc
    if _LEGACY_IP_RE.match(host):
        # Browsers and resolvers accept 2130706433, 0x7f.1 and 0177.0.0.1 as 127.0.0.1.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError as exc:
            raise InvalidUrl("bad_host", "The host looks like an IP address but is not a valid one.") from exc
    return None


def _normalise_pct(text: str, safe: frozenset[str]) -> str:
    """Decode escapes of unreserved characters, upper-case the rest, encode unsafe characters."""

    # One pass: decoding first and re-scanning would turn "%2%41" into the escape "%2A".
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        match = _PCT_RE.match(text, i) if char == "%" else None
        if match:
            decoded = chr(int(match.group(1), 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + match.group(1).upper())
            i += 3
            continue
        if char in safe:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
            continue
        if segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
            continue
        output.append(segment)
    result = "/".join(output)
    if not result.startswith("/"):
        result = "/" + result
    return result


def _canonical_host(raw_host: str) -> tuple[str, bool]:
    host = raw_host.strip().lower()
    if not host:
        raise InvalidUrl("no_host", "The address has no host name.")
    ip = _parse_ip(host)
    if ip is not None:
        if not ip_is_public(ip):
            raise InvalidUrl("private_host", "This address points to a private, local or reserved network.")
        return (ip.compressed, True)
    host = host.rstrip(".")
    if any(char in host for char in " %\\/@[]<>\"'`{}|^"):
        raise InvalidUrl("bad_host", "The host name contains characters that are not allowed.")
    if host.isascii() and "xn--" not in host:
        ascii_host = host  # plain LDH names need no IDNA mapping; the label rules below still apply
    else:
        try:
            ascii_host = idna.encode(host, uts46=True).decode("ascii").lower()
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            raise InvalidUrl("bad_host", "The host name is not a valid domain name.") from exc
    for suffix in NON_PUBLIC_SUFFIXES:
        if ascii_host == suffix or ascii_host.endswith("." + suffix):
            raise InvalidUrl(
                "private_host", "This host name is local or internal and cannot be reached from the internet."
            )
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        raise InvalidUrl("bad_host", "The host name is not a valid public domain name.")
    if not _TLD_RE.match(labels[-1]):
        raise InvalidUrl("bad_host", "The host name does not end in a valid top-level domain.")
    return (ascii_host, False)


def _canonical_query(query: str) -> str:
    params: list[tuple[str, str, bool]] = []
    for part in query.split("&"):
        if not part:
            continue
        key, has_value, value = part.partition("=")
        key_n = _normalise_pct(key, _QUERY_SAFE)
        lowered = key_n.lower()
        if lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES):
            continue
        params.append((key_n, _normalise_pct(value, _QUERY_SAFE | {"="}), bool(has_value)))
    params.sort()  # by key, value, then bare key before 'key=': the order given never matters
    return "&".join(f"{key}={value}" if has_value else key for key, value, has_value in params)


def canonicalize_url(
    raw: str,
    *,
    allow_hosts: Collection[str] = (),
    max_length: int = MAX_URL_LENGTH,
) -> CanonicalUrl:
    """Return the canonical form of `raw` or raise `InvalidUrl`.

    `allow_hosts` holds "host:port" pairs that may be private (tests and the demo only).
    A line without a scheme ("example.com/page") is read as http, as browsers do.
    """
    text = raw.strip()
    if not text:
        raise InvalidUrl("empty", "The line is empty.")
    if len(text) > max_length:
        raise InvalidUrl("too_long", f"The address is longer than {max_length} characters.")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise InvalidUrl("bad_characters", "The address contains control characters.")

    scheme_match = _SCHEME_RE.match(text)
    if scheme_match and "://" not in text[: scheme_match.end() + 2]:
        # "host:8080/x" has a port, not a scheme; "javascript:alert(1)" has a scheme.
        rest = text[scheme_match.end() :]
        if not re.match(r"^\d+(?:[/?#]|$)", rest):
            raise InvalidUrl("bad_scheme", "Only web addresses starting with http:// or https:// can be reported.")
        scheme_match = None
    if scheme_match is None:
        text = ("http:" if text.startswith("//") else "http://") + text
        scheme_match = _SCHEME_RE.match(text)
        if scheme_match is None:  # pragma: no cover - "http:" always matches
            raise InvalidUrl("bad_scheme", "Only web addresses starting with http:// or https:// can be reported.")
    scheme = scheme_match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidUrl("bad_scheme", "Only web addresses starting with http:// or https:// can be reported.")
    rest = text[scheme_match.end() :]
    if not rest.startswith("//"):
        raise InvalidUrl("bad_scheme", "Only web addresses starting with http:// or https:// can be reported.")
    rest = rest[2:].replace("\\", "/")

    # Split authority from path/query/fragment: the first "/", "?" or "#" ends the authority.
    end = len(rest)
    for delimiter in "/?#":
        position = rest.find(delimiter)
        if position != -1:
            end = min(end, position)
    authority, remainder = rest[:end], rest[end:]
    remainder = remainder.split("#", 1)[0]
    path, _, query = remainder.partition("?")

    hostport = authority.rpartition("@")[2]  # user-info never identifies content
    if hostport.startswith("["):
        close = hostport.find("]")
        if close == -1:
            raise InvalidUrl("bad_host", "The IPv6 address is missing its closing bracket.")
        host_part, port_part = hostport[: close + 1], hostport[close + 1 :]
        if port_part and not port_part.startswith(":"):
            raise InvalidUrl("bad_host", "Unexpected characters after the IPv6 address.")
        port_text = port_part[1:]
    else:
        host_part, _, port_text = hostport.partition(":")
    port: int | None = None
    if port_text:
        # ASCII digits only: str.isdigit() also accepts "²" and "٨", which int() rejects or reads.
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise InvalidUrl("bad_port", "The port number is not valid.")
        port = int(port_text)
    if port == DEFAULT_PORTS[scheme]:
        port = None

    raw_host = host_part.strip().lower()
    effective_port = port or DEFAULT_PORTS[scheme]
    bare = raw_host[1:-1] if raw_host.startswith("[") else raw_host
    allowed = {entry.strip().lower() for entry in allow_hosts}
    if f"{bare}:{effective_port}" in allowed or f"{raw_host}:{effective_port}" in allowed:
        # Explicitly allowed for tests or the demo: skip the public-address rules, keep the form.
        parsed = _parse_ip(raw_host)
        host, is_ip = (parsed.compressed, True) if parsed is not None else (bare, False)
    else:
        host, is_ip = _canonical_host(raw_host)

    path = _remove_dot_segments(_normalise_pct(path or "/", _PATH_SAFE))
    query_c = _canonical_query(query)
    netloc = f"[{host}]" if is_ip and ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    url = f"{scheme}://{netloc}{path}" + (f"?{query_c}" if query_c else "")
    if len(url) > max_length:
        raise InvalidUrl("too_long", f"The address is longer than {max_length} characters.")
    return CanonicalUrl(url=url, scheme=scheme, host=host, port=port, is_ip=is_ip)
