"""Whatever a visitor (or a script) posts to /report/, the site answers sensibly and stores
either one whole report or nothing at all."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reports.lib.urls import InvalidUrl, canonicalize_url
from reports.models import Report, ReportedUrl, Url
from reports.models.choices import AiSuspected, Category, WhereFound

FIELDS = {"urls", "category", "ai_suspected", "where_found", "description", "email", "website", "csrfmiddlewaretoken"}

PUBLIC_HOSTS = ["example.com", "www.example.org", "bücher.example", "8.8.8.8", "[2001:4860:4860::8888]"]
hosts = st.sampled_from(PUBLIC_HOSTS) | st.sampled_from(
    [
        "example.com",
        "WWW.Example.org",
        "bücher.example",
        "sub.example.net",
        "8.8.8.8",
        "134744072",
        "[2001:4860:4860::8888]",
        "127.0.0.1",
        "0x7f.1",
        "10.1.2.3",
        "[::1]",
        "[::ffff:10.0.0.1]",
        "localhost",
        "printer.local",
        "example",
        "exa mple.com",
        "user@example.com",
        "",
    ]
)
schemes = st.sampled_from(["http://", "https://"]) | st.sampled_from(
    ["http://", "https://", "HTTP://", "", "//", "ftp://", "javascript:", "data:", "file:///"]
)
ports = st.sampled_from(["", ":80", ":443", ":8080", ":99999", ":x", ":²"])
url_line = st.builds(
    lambda scheme, host, port, path, query: f"{scheme}{host}{port}/{path}{query}",
    schemes,
    hosts,
    ports,
    st.text(max_size=30),
    st.sampled_from(["", "?b=2&a=1", "?utm_source=x", "?a=1&fbclid=z#frag", "#top"]),
)
long_line = st.builds(
    lambda size, piece: "https://example.com/" + piece * size,
    st.integers(min_value=600, max_value=2100),
    st.sampled_from(["a", "ü", "%41", " "]),
)
# The same address in several spellings, so that duplicates within and across reports occur.
known_line = st.sampled_from(
    [
        "https://example.com/same?a=1&b=2",
        "HTTPS://EXAMPLE.COM:443/same?b=2&a=1#x",
        "https://example.com/./same?a=1&b=2&utm_medium=y",
        "example.org/other",
        "http://EXAMPLE.org:80/other",
    ]
)
line = st.one_of(url_line, url_line, known_line, st.text(max_size=40), long_line)
urls_text = st.builds(
    lambda lines, separator: separator.join(lines),
    st.lists(line, max_size=56),
    st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\u2028"]),
)


public_line = st.builds(
    lambda scheme, host, port, path, query: f"{scheme}{host}{port}/{path}{query}",
    st.sampled_from(["http://", "https://", "HTTPS://", ""]),
    st.sampled_from(PUBLIC_HOSTS),
    st.sampled_from(["", ":80", ":8080"]),
    st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=30),
    st.sampled_from(["", "?b=2&a=1", "?utm_source=x", "?q=ü&fbclid=z#frag"]),
)


def choice(values: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(values), st.text(max_size=12))


# Mostly acceptable posts, so that the stored side is exercised as much as the refusals.
plausible_form = st.fixed_dictionaries(
    {
        "urls": st.lists(st.one_of(public_line, public_line, known_line), min_size=1, max_size=8).map("\n".join),
        "category": st.sampled_from(Category.values),
        "ai_suspected": st.sampled_from(AiSuspected.values),
        "where_found": st.sampled_from(WhereFound.values),
        "description": st.text(max_size=60),
        "email": st.sampled_from(["", "someone@example.org"]),
    }
)
random_form = st.fixed_dictionaries(
    {
        "urls": urls_text,
        "category": choice(Category.values),
        "ai_suspected": choice(AiSuspected.values),
        "where_found": choice(WhereFound.values),
        "description": st.one_of(st.text(max_size=60), st.just("d" * 2001), st.just("d" * 2000)),
        "email": st.one_of(st.sampled_from(["", "someone@example.org", "x@", "@example.org"]), st.text(max_size=20)),
    },
    optional={"website": st.just("")},
)
form_data = st.one_of(plausible_form, random_form)
extra_fields = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda name: name not in FIELDS),
    st.text(max_size=20),
    max_size=3,
)


def distinct_canonical_urls(text: str) -> set[str] | None:
    """What the form should store for this text, or None if some line must be refused."""
    found: set[str] = set()
    for raw in text.strip().splitlines():
        if not raw.strip():
            continue
        try:
            found.add(
                canonicalize_url(
                    raw,
                    allow_hosts=django_settings.HOTLINE_FETCH_ALLOW_HOSTS,
                    max_length=django_settings.HOTLINE_MAX_URL_LENGTH,
                ).url
            )
        except InvalidUrl:
            return None
    return found


def counts() -> tuple[int, int, int]:
    return (Report.objects.count(), ReportedUrl.objects.count(), Url.objects.count())


@pytest.mark.django_db(transaction=False)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=form_data, extra=extra_fields)
def test_any_post_stores_one_whole_report_or_nothing(data: dict[str, str], extra: dict[str, str]) -> None:
    # All examples share one test transaction: compare counts, never rely on a rollback.
    cache.clear()
    before = counts()

    response = Client().post("/report/", {**extra, **data}, REMOTE_ADDR="192.0.2.33")

    after = counts()
    event(f"status {response.status_code}")
    assert response.status_code < 500
    if response.status_code == 200:
        assert 'data-receipt="code"' in response.content.decode()
        report = Report.objects.order_by("-pk").first()
        expected = distinct_canonical_urls(data["urls"])
        assert expected is not None, "a line that must be refused was accepted"
        assert after[0] == before[0] + 1
        assert after[1] - before[1] == report.reported_urls.count() == len(expected)
        assert set(report.reported_urls.values_list("url__canonical_url", flat=True)) == expected
        assert 0 <= after[2] - before[2] <= len(expected)
    else:
        assert 400 <= response.status_code < 500
        assert after == before
