"""Access: every staff, admin, account and API URL, requested by everyone who must not get it.

The URL list is not written down here: it is read from Django's resolver, so pages that other work
adds later are covered the day they are routed. Path parameters are filled with ids of real rows
(a case, a content, a report of partner A, each admin model's first row) or a dummy.

Principals: anonymous; partner A's and partner B's API tokens (sent as `Authorization: Bearer` to
every page); each staff role (logged in and verified by a second factor) on the pages its role may not
open; staff sessions on the API; partner B on partner A's objects; a read-only token on write calls.

A *leak* is a 2xx to someone the page is not for, a sentinel string of the seeded data in any
answer to them, or a row changed by their POST. Server errors are counted for everyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from reports.models import Report
from reports.models.choices import StaffRole
from reports.services.partners import partner_create, token_issue
from reports.tests.analyst_helpers import make_case
from reports.tests.hardening import figures
from reports.tests.hardening.probe import row_counts

pytestmark = [pytest.mark.hardening, pytest.mark.django_db]

SENTINEL = "hl-sensitive"
PROTECTED_PREFIXES = ("staff/", "admin/", "account/", "api/")
# Pages anyone may open: the sign-in pages, the language switch, the API's documentation.
PUBLIC = {
    "account/login/",
    "account/logout/",
    "admin/login/",
    "admin/logout/",
    "api/v1/schema/",
    "api/v1/docs/",
    "api/v1/",
}
# Requests that would end the session the rest of the run uses.
SESSION_ENDING = {"account/logout/", "admin/logout/"}
CONVERTER = re.compile(r"<(?:(?P<kind>[a-z]+):)?(?P<name>\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<\w+>(?P<words>[\w|]+)\)")


@dataclass(frozen=True)
class Route:
    pattern: str
    url: str
    callback: Any


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def protected_routes(ids: dict[str, int]) -> list[Route]:
    """Every routed URL under a protected prefix, with its parameters filled in, once per path."""
    routes: dict[str, Route] = {}
    for raw, entry in _walk(get_resolver().url_patterns):
        if not raw.startswith(PROTECTED_PREFIXES):
            continue
        for pattern in _expand_regex(raw):
            _add_route(routes, pattern, entry, ids)
    return list(routes.values())


def _expand_regex(pattern: str) -> list[str]:
    """A regex route (the admin's app index) as one plain route per alternative of its group."""
    if "^" not in pattern and "(?P<" not in pattern:
        return [pattern]
    plain = pattern.replace("^", "").replace("$", "")
    if plain.endswith("(?P<url>.*)"):  # the admin's catch-all
        return [plain.removesuffix("(?P<url>.*)") + "no-such-page/"]
    group = REGEX_GROUP.search(plain)
    assert group is not None, f"teach test_access to fill {pattern}"
    assert "(?P<" not in plain[group.end() :], f"teach test_access to fill {pattern}"
    return [plain[: group.start()] + word + plain[group.end() :] for word in group.group("words").split("|")]


def _add_route(routes: dict[str, Route], pattern: str, entry: URLPattern, ids: dict[str, int]) -> None:
    model_admin = getattr(entry.callback, "model_admin", None)

    def fill(match: re.Match[str], model_admin: Any = model_admin, pattern: str = pattern) -> str:
        name = match.group("name")
        if name == "queue":
            return "new_unknown"
        if name == "content_type_id":
            return str(ids["report_content_type"])
        if model_admin is not None and name in ("object_id", "pk", "id"):
            first = model_admin.model._default_manager.order_by("pk").first()
            return str(first.pk if first is not None else 1)
        if pattern.startswith("staff/contents/"):
            return str(ids["content"])
        if pattern.startswith("admin/r/"):
            return str(ids["report"])
        return str(ids.get(name, 1))

    url = "/" + CONVERTER.sub(fill, pattern)
    routes.setdefault(url, Route(pattern=pattern, url=url, callback=entry.callback))


def may_open(user: Any, route: Route) -> bool:
    """Whether `user` is meant to open `route` (page-level rules; object-level rules are other tests')."""
    if route.pattern in PUBLIC:
        return True
    if route.pattern.startswith("api/"):
        return False  # the API is for tokens, never for sessions
    if not user.is_authenticated:
        return False
    if route.pattern.startswith("account/"):
        return True  # one's own second-factor pages
    if route.pattern.startswith("staff/"):
        permission = getattr(route.callback, "staff_permission", None)
        return permission is None or user.has_perm(f"reports.{permission}")
    # The Django admin: staff flag, then the model admin's own permission methods.
    if not (user.is_active and user.is_staff):
        return False
    model_admin = getattr(route.callback, "model_admin", None)
    if model_admin is None:
        return True
    request = RequestFactory().get(route.url)
    request.user = user
    if route.pattern.endswith("/add/"):
        return model_admin.has_add_permission(request)
    if route.pattern.endswith("/delete/"):
        return model_admin.has_delete_permission(request)
    return model_admin.has_view_or_change_permission(request)


@dataclass
class Tally:
    requests: int = 0
    leaks: int = 0
    server_errors: int = 0

    def __post_init__(self) -> None:
        self.problems: list[str] = []


@pytest.fixture
def world(db, staff_client, settings) -> dict[str, Any]:
    """Seeded data whose sentinel must never reach the wrong principal, and the principals."""
    settings.HOTLINE_API_RATE_LIMIT = 100_000
    partner_a, token_a = partner_create(name=f"{SENTINEL} partner A", kind="hotline")
    _partner_b, token_b = partner_create(name="Partner B", kind="hotline")
    read_only = token_issue(partner=partner_a, name="read", scopes=["read"])
    a = Client(HTTP_AUTHORIZATION=f"Bearer {token_a.secret}")
    created = a.post(
        "/api/v1/reports",
        {"urls": [f"https://example.com/{SENTINEL}/partner"], "category": "csam", "note": f"{SENTINEL} note"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    hash_list = a.post("/api/v1/hashlists", {"name": f"{SENTINEL} list"}, content_type="application/json")
    a.post(
        f"/api/v1/hashlists/{hash_list.json()['id']}/entries",
        {"entries": [{"algorithm": "md5", "value": "0123456789abcdef0123456789abcdef"}]},
        content_type="application/json",
    )
    case = make_case(3, url=f"https://example.com/{SENTINEL}/public", description=f"{SENTINEL} description")
    roles = {role: staff_client(role) for role in StaffRole.values}
    ids = {
        "pk": case.pk,
        "content": case.contents.first().pk,
        "report_id": created.json()["id"],
        "list_id": hash_list.json()["id"],
        "report": Report.objects.first().pk,
        "report_content_type": ContentType.objects.get_for_model(Report).pk,
        "id": roles[StaffRole.ANALYST].user.pk,
    }
    return {
        "ids": ids,
        "roles": roles,
        "partner_a": token_a.secret,
        "partner_b": token_b.secret,
        "read_only": read_only.secret,
    }


def _request(client: Client, method: str, url: str, headers: dict[str, str]) -> Any:
    client.raise_request_exception = False
    return getattr(client, method)(url, **headers)


def check(tally: Tally, who: str, client: Client, route: Route, method: str, allowed: bool, **headers: str) -> Any:
    if route.pattern in SESSION_ENDING and hasattr(client, "user"):
        return None
    before = row_counts() if method == "post" and not allowed else None
    response = _request(client, method, route.url, headers)
    tally.requests += 1
    status = response.status_code
    if status >= 500:
        tally.server_errors += 1
        tally.problems.append(f"server error: {who} {method.upper()} {route.url} -> {status}")
    if allowed:
        return response
    body = b"" if getattr(response, "streaming", False) else response.content
    reasons = []
    if 200 <= status < 300:
        reasons.append(f"status {status}")
    if SENTINEL.encode() in body.lower():
        reasons.append("sentinel in the body")
    if before is not None and row_counts() != before:
        reasons.append("rows changed")
    if reasons:
        tally.leaks += 1
        tally.problems.append(f"leak: {who} {method.upper()} {route.url} -> {status}: {', '.join(reasons)}")
    return response


@pytest.fixture
def tally() -> Iterator[Tally]:
    running = Tally()
    yield running
    figures.add("access", requests=running.requests, leaks=running.leaks, server_errors=running.server_errors)
    assert not running.problems, "\n".join(running.problems[:60])


def test_every_protected_url_as_anonymous_and_as_partner_tokens(world: dict[str, Any], tally: Tally) -> None:
    routes = protected_routes(world["ids"])
    figures.add("access", urls=len(routes))
    assert any(r.pattern.startswith("staff/") for r in routes)
    assert any(r.pattern.startswith("admin/") for r in routes)
    anonymous = AnonymousUser()
    for route in routes:
        allowed = may_open(anonymous, route)
        for method in ("get", "post"):
            check(tally, "anonymous", Client(), route, method, allowed)
            if not route.pattern.startswith("api/"):
                # A partner's token opens nothing but the API.
                for name in ("partner_a", "partner_b"):
                    headers = {"HTTP_AUTHORIZATION": f"Bearer {world[name]}"}
                    check(tally, name, Client(), route, method, allowed, **headers)


def test_every_protected_url_as_each_wrong_role(world: dict[str, Any], tally: Tally) -> None:
    routes = protected_routes(world["ids"])
    for role, client in world["roles"].items():
        for route in routes:
            allowed = may_open(client.user, route)
            if allowed and route.pattern.startswith("admin/"):
                continue  # the admin's own pages for those who may use them: other tests' matter
            for method in ("get", "post"):
                check(tally, role, client, route, method, allowed)


def test_partner_b_cannot_read_partner_a(world: dict[str, Any], tally: Tally) -> None:
    ids = world["ids"]
    b = {"HTTP_AUTHORIZATION": f"Bearer {world['partner_b']}"}
    read_only = {"HTTP_AUTHORIZATION": f"Bearer {world['read_only']}"}
    foreign = [
        ("get", f"/api/v1/reports/{ids['report_id']}", b),
        ("get", f"/api/v1/hashlists/{ids['list_id']}/entries", b),
        ("post", f"/api/v1/hashlists/{ids['list_id']}/entries", b),
        ("post", "/api/v1/reports", read_only),
        ("post", "/api/v1/reports/batch", read_only),
        ("get", "/api/v1/hashlists", read_only),
        ("post", "/api/v1/hashlists", read_only),
    ]
    for method, url, headers in foreign:
        route = Route(pattern=url.lstrip("/"), url=url, callback=None)
        response = check(tally, "partner_b/read-only", Client(), route, method, False, **headers)
        assert response.status_code in (400, 403, 404), (url, response.status_code)
    # Partner B's own listings hold nothing of A's.
    for url in ("/api/v1/reports", "/api/v1/hashlists"):
        response = _request(Client(), "get", url, b)
        tally.requests += 1
        assert response.status_code == 200
        if SENTINEL.encode() in response.content.lower():
            tally.leaks += 1
            tally.problems.append(f"leak: partner_b GET {url} lists partner A's data")
