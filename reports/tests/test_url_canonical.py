"""URL canonicalisation and validation (reports/lib/urls.py).

One piece of content at one address must become one `Url` row however the reporter spelt the
address, and nothing Hotline must never fetch (other schemes, private networks) may get in.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.lib.urls import InvalidUrl, canonicalize_url

# (what the reporter typed, the exact canonical form)
CANONICAL_CASES = [
    # scheme and host case; the path keeps its case
    ("HTTP://EXAMPLE.COM/Path", "http://example.com/Path"),
    ("hTtPs://WWW.Example.ORG/A/b", "https://www.example.org/A/b"),
    ("http://example.com", "http://example.com/"),
    # default ports dropped, other ports kept
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/", "https://example.com/"),
    ("http://example.com:00080/", "http://example.com/"),
    ("http://example.com:8080/a", "http://example.com:8080/a"),
    ("http://example.com:443/", "http://example.com:443/"),
    ("https://example.com:80/a", "https://example.com:80/a"),
    ("http://example.com:/", "http://example.com/"),
    # fragment dropped
    ("http://example.com/a#section-2", "http://example.com/a"),
    ("http://example.com/#", "http://example.com/"),
    ("http://example.com/a?b#c?d", "http://example.com/a?b"),
    # dot segments (RFC 3986 section 5.2.4 and 5.4)
    ("http://a.example/a/b/c/./../../g", "http://a.example/a/g"),
    ("http://a.example/mid/content=5/../6", "http://a.example/mid/6"),
    ("http://a.example/b/c/./../../g", "http://a.example/g"),
    ("http://a.example/./g", "http://a.example/g"),
    ("http://a.example/b/c/g/..", "http://a.example/b/c/"),
    ("http://a.example/b/c/g/.", "http://a.example/b/c/g/"),
    ("http://a.example/../../../g", "http://a.example/g"),
    ("http://a.example/b/c/d;p?q=1", "http://a.example/b/c/d;p?q=1"),
    ("http://example.com/a/%2E%2E/%2e/c", "http://example.com/c"),
    # percent-encoding: unreserved decoded, hex upper-cased, unsafe encoded, %2F kept
    ("http://example.com/%7Euser", "http://example.com/~user"),
    ("http://example.com/%7euser/%41%62%2d%5F", "http://example.com/~user/Ab-_"),
    ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com/ümlaut", "http://example.com/%C3%BCmlaut"),
    ("http://example.com/?q=%e2%82%ac", "http://example.com/?q=%E2%82%AC"),
    ("http://example.com/?q=€ x", "http://example.com/?q=%E2%82%AC%20x"),
    ("http://example.com/?a=%2b&b=a+b", "http://example.com/?a=%2B&b=a+b"),
    ("http://example.com/100%", "http://example.com/100%25"),
    # an escape is decoded once: "%2" followed by "%41" is not the escape "%2A"
    ("http://example.com/%2%41", "http://example.com/%252A"),
    ("http://example.com\\path\\x", "http://example.com/path/x"),
    # tracking parameters dropped, remaining parameters sorted, empty query removed
    ("http://example.com/?utm_source=x&b=2&a=1", "http://example.com/?a=1&b=2"),
    ("http://example.com/?UTM_Campaign=x&q=1", "http://example.com/?q=1"),
    ("http://example.com/?utm%5Fmedium=x&q=1", "http://example.com/?q=1"),
    ("http://example.com/?fbclid=1&gclid=2&msclkid=3", "http://example.com/"),
    ("http://example.com/p?id=7&_ga=1.2&mc_eid=z&yclid=9", "http://example.com/p?id=7"),
    ("http://example.com/?b=2&a=1&a=0", "http://example.com/?a=0&a=1&b=2"),
    ("http://example.com/?a=&a&a=1", "http://example.com/?a&a=&a=1"),
    ("http://example.com/?", "http://example.com/"),
    ("http://example.com/?&&", "http://example.com/"),
    ("http://example.com/a?x=1=2", "http://example.com/a?x=1=2"),
    # user-info dropped
    ("http://user:secret@example.com/", "http://example.com/"),
    ("http://a@b@example.com/x", "http://example.com/x"),
    # IDNA hosts
    ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ("http://BÜCHER.example/", "http://xn--bcher-kva.example/"),
    ("http://xn--bcher-kva.example/", "http://xn--bcher-kva.example/"),
    ("http://ＥＸＡＭＰＬＥ.com/", "http://example.com/"),
    ("http://example。com/", "http://example.com/"),
    # trailing dot of the host
    ("http://example.com./", "http://example.com/"),
    ("https://www.example.org.:443/x", "https://www.example.org/x"),
    # scheme-less input is read as http
    ("example.com/page", "http://example.com/page"),
    ("//example.com/page", "http://example.com/page"),
    ("example.com:8080/x", "http://example.com:8080/x"),
    ("  www.example.org  ", "http://www.example.org/"),
    # IPv6 literals
    ("http://[2001:4860:4860::8888]/", "http://[2001:4860:4860::8888]/"),
    ("http://[2001:4860:4860:0:0:0:0:8888]:8443/x", "http://[2001:4860:4860::8888]:8443/x"),
    ("http://[2001:4860:4860::8888]:80/", "http://[2001:4860:4860::8888]/"),
    ("http://[2001:4860:4860::8888%25eth0]/", "http://[2001:4860:4860::8888]/"),
    # public IPv4 literals, also in the spellings inet_aton accepts
    ("http://8.8.8.8/", "http://8.8.8.8/"),
    ("http://8.8.8.8:80/", "http://8.8.8.8/"),
    ("http://134744072/", "http://8.8.8.8/"),
    ("http://0x8.0x8.0x8.0x8/", "http://8.8.8.8/"),
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL_CASES)
def test_canonical_form(raw: str, expected: str) -> None:
    assert canonicalize_url(raw).url == expected


def test_canonical_parts() -> None:
    result = canonicalize_url("HTTPS://Bücher.Example:8443/x")
    assert (result.scheme, result.host, result.port, result.is_ip) == ("https", "xn--bcher-kva.example", 8443, False)
    ip6 = canonicalize_url("http://[2001:4860:4860::8888]/")
    assert (ip6.host, ip6.port, ip6.is_ip) == ("2001:4860:4860::8888", None, True)


# (what the reporter typed, InvalidUrl.code)
REFUSED_CASES = [
    # other schemes
    ("javascript:alert(1)", "bad_scheme"),
    ("JavaScript:alert(document.cookie)", "bad_scheme"),
    ("data:text/html,<script>alert(1)</script>", "bad_scheme"),
    ("file:///etc/passwd", "bad_scheme"),
    ("ftp://example.com/file", "bad_scheme"),
    ("mailto:someone@example.com", "bad_scheme"),
    ("http:example.com", "bad_scheme"),
    ("https:/example.com", "bad_scheme"),
    # names that are not public
    ("http://localhost/", "private_host"),
    ("localhost:8000/admin", "private_host"),
    ("http://foo.localhost/", "private_host"),
    ("http://printer.local/", "private_host"),
    ("http://db.internal/", "private_host"),
    ("http://example/", "bad_host"),
    ("http://example.123/", "bad_host"),
    ("http://ex_ample.com/", "bad_host"),
    ("http://exa%41mple.com/", "bad_host"),
    # private, loopback, link-local and reserved IPv4, in every spelling
    ("http://127.0.0.1/", "private_host"),
    ("http://2130706433/", "private_host"),
    ("http://0x7f.1/", "private_host"),
    ("http://0177.0.0.1/", "private_host"),
    ("http://127.1/", "private_host"),
    ("http://10.0.0.1/", "private_host"),
    ("http://172.16.0.1/", "private_host"),
    ("http://192.168.1.1:8080/", "private_host"),
    ("http://169.254.169.254/latest/meta-data/", "private_host"),
    ("http://100.64.0.1/", "private_host"),
    ("http://0.0.0.0/", "private_host"),
    ("http://192.0.2.1/", "private_host"),
    ("http://224.0.0.1/", "private_host"),
    ("http://240.0.0.1/", "private_host"),
    ("http://255.255.255.255/", "private_host"),
    ("http://999.1.1.1/", "bad_host"),
    # private, loopback, link-local and mapped IPv6
    ("http://[::1]/", "private_host"),
    ("http://[::]/", "private_host"),
    ("http://[fe80::1]/", "private_host"),
    ("http://[fe80::1%25eth0]/", "private_host"),
    ("http://[fc00::1]/", "private_host"),
    ("http://[::ffff:127.0.0.1]/", "private_host"),
    ("http://[::ffff:10.0.0.1]/", "private_host"),
    ("http://[2002:7f00:1::]/", "private_host"),
    ("http://[2001:db8::1]/", "private_host"),
    ("http://[::1/", "bad_host"),
    ("http://[not-an-ip]/", "bad_host"),
    ("http://[2001:4860:4860::8888]x/", "bad_host"),
    # user-info does not hide the real host
    ("http://example.com@127.0.0.1/", "private_host"),
    ("http://example.com:80@[::1]/", "private_host"),
    # length, port, characters, host
    ("http://example.com/" + "a" * 2048, "too_long"),
    ("http://example.com:99999/", "bad_port"),
    ("http://example.com:0/", "bad_port"),
    ("http://example.com:abc/", "bad_port"),
    ("http://example.com:²/", "bad_port"),
    ("http://example.com:٨٠/", "bad_port"),
    ("http://exa\tmple.com/", "bad_characters"),
    ("http://example.com/a\x00b", "bad_characters"),
    ("http://example.com/\x7f", "bad_characters"),
    ("http:///path", "no_host"),
    ("http://", "no_host"),
    ("http://user@/x", "no_host"),
    ("   ", "empty"),
]


@pytest.mark.parametrize(("raw", "code"), REFUSED_CASES)
def test_refused(raw: str, code: str) -> None:
    with pytest.raises(InvalidUrl) as caught:
        canonicalize_url(raw)
    assert caught.value.code == code
    assert caught.value.message  # people are told why


def test_length_limit_is_configurable() -> None:
    url = "http://example.com/" + "a" * 50
    assert canonicalize_url(url, max_length=100).url == url
    with pytest.raises(InvalidUrl) as caught:
        canonicalize_url(url, max_length=40)
    assert caught.value.code == "too_long"


def test_canonical_form_longer_than_limit_is_refused() -> None:
    # Encoding can make a URL longer than the reporter's text; the stored form must still fit.
    raw = "http://example.com/" + "ü" * 60
    assert len(raw) < 100
    with pytest.raises(InvalidUrl) as caught:
        canonicalize_url(raw, max_length=100)
    assert caught.value.code == "too_long"


def test_allow_hosts_admits_exactly_the_listed_host_and_port() -> None:
    allow = ["127.0.0.1:8765"]
    assert canonicalize_url("http://127.0.0.1:8765/x?b=1&a=2#f", allow_hosts=allow).url == (
        "http://127.0.0.1:8765/x?a=2&b=1"
    )
    for other in ("http://127.0.0.1:8766/x", "http://127.0.0.1/x", "https://127.0.0.1/x", "http://localhost:8765/"):
        with pytest.raises(InvalidUrl) as caught:
            canonicalize_url(other, allow_hosts=allow)
        assert caught.value.code == "private_host"


def test_allow_hosts_with_default_port() -> None:
    assert canonicalize_url("http://localhost/x", allow_hosts=["localhost:80"]).url == "http://localhost/x"
    with pytest.raises(InvalidUrl):
        canonicalize_url("https://localhost/x", allow_hosts=["localhost:80"])


# --- properties -----------------------------------------------------------------------------

_HOSTS = [
    "example.com",
    "EXAMPLE.org",
    "www.example.net",
    "bücher.example",
    "ß.example",
    "ﬁ.example",
    "xn--bcher-kva.example",
    "example.com.",
    "8.8.8.8",
    "134744072",
    "[2001:4860:4860::8888]",
    "127.0.0.1",
    "localhost",
]
_PIECES = [
    *"abcXYZ09-._~%/?#&=;:@[]!$'()*+, \\",
    "%2e",
    "%2E",
    "%7e",
    "%41",
    "%2F",
    "%2f",
    "%zz",
    "%%",
    "..",
    "/../",
    "/./",
    "ü",
    "€",
    "\u00ad",
    "²",
    "٨",
    "utm_source=x",
    "fbclid=1",
    "a=1",
    "b=",
    "&",
]
url_ish = st.one_of(
    st.builds(
        lambda scheme, userinfo, host, port, rest: scheme + userinfo + host + port + rest,
        st.sampled_from(["http://", "https://", "HTTP://", "hTtPs://", "//", ""]),
        st.sampled_from(["", "user@", "u:p@", "a@b@"]),
        st.sampled_from(_HOSTS),
        st.sampled_from(["", ":80", ":443", ":8080", ":0080", ":", ":65535", ":²"]),
        st.lists(st.sampled_from(_PIECES), max_size=25).map("".join),
    ),
    st.text(max_size=80),
)


@settings(max_examples=1500, deadline=None)
@given(url_ish)
def test_canonicalisation_is_idempotent(raw: str) -> None:
    try:
        first = canonicalize_url(raw)
    except InvalidUrl:
        return
    assert canonicalize_url(first.url) == first


_PARAMS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "B", "id", "q", "utm_term", "%41"]), st.sampled_from(["", "=", "=1", "=x y"])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(_PARAMS, st.randoms(use_true_random=False))
def test_parameter_order_never_matters(params: list[tuple[str, str]], rng: random.Random) -> None:
    parts = [key + value for key, value in params]
    shuffled = parts[:]
    rng.shuffle(shuffled)
    assert (
        canonicalize_url("http://example.com/p?" + "&".join(parts)).url
        == canonicalize_url("http://example.com/p?" + "&".join(shuffled)).url
    )
