"""Send one hostile request and judge what it did: server error, half-written rows, reflected script.

A request is judged by what a user or an attacker would notice:
- **server error**: any 5xx (the test client is told not to re-raise, so a crash is a 500 like in
  production);
- **half-written**: a rejected request (4xx) changed a row count of any model of the `reports` app
  or of the user table, or after any request a report exists without a single URL or hash;
- **reflected script**: a payload that carries markup (`<`) comes back verbatim in a response that a
  browser would render (anything but JSON, CSV and images).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.test import Client

from reports.models import Report
from reports.tests.hardening import figures

NOT_RENDERED = ("application/json", "text/csv", "image/")


def _tracked_models() -> list[Any]:
    return [*apps.get_app_config("reports").get_models(), get_user_model()]


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in _tracked_models()}


def headless_reports() -> int:
    """Reports that hold neither a URL nor a hash: what a half-done write would leave behind."""
    return (
        Report.objects.annotate(n_urls=Count("reported_urls", distinct=True), n_hashes=Count("hashes", distinct=True))
        .filter(Q(n_urls=0) & Q(n_hashes=0))
        .count()
    )


@dataclass
class Probe:
    """Runs hostile requests for one suite and collects what went wrong (`failures`)."""

    suite: str = "bad_input"
    inputs: int = 0
    failures: list[str] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0

    def send(
        self,
        client: Client,
        method: str,
        path: str,
        *,
        label: str,
        payloads: tuple[str, ...] = (),
        accept: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send one request; `payloads` are the hostile strings it carries (for the reflection check);
        `accept`: True if it must be accepted, False if it must be refused, None if either will do."""
        client.raise_request_exception = False
        before = row_counts()
        response = getattr(client, method)(path, **kwargs)
        after = row_counts()
        self.inputs += 1
        status = response.status_code
        problems: list[str] = []
        if status >= 500:
            problems.append("server_errors")
        changed = {label_: (before[label_], after[label_]) for label_ in before if before[label_] != after[label_]}
        if status >= 400:
            self.rejected += 1
            if changed:
                problems.append("half_written")
        else:
            self.accepted += 1
        if headless_reports():
            problems.append("half_written")
        content_type = response.get("Content-Type", "")
        if not content_type.startswith(NOT_RENDERED) and not getattr(response, "streaming", False):
            body = response.content.decode("utf-8", "replace")
            if any("<" in p and p in body for p in payloads):
                problems.append("reflected_scripts")
        if accept is True and status >= 400:
            problems.append("wrongly_refused")
        if accept is False and status < 400:
            problems.append("wrongly_accepted")
        for problem in problems:
            figures.add(self.suite, **{problem: 1})
            self.failures.append(f"{problem}: {label} -> {status} {changed or ''}")
        return response

    def finish(self) -> None:
        figures.add(self.suite, inputs=self.inputs, accepted=self.accepted, rejected=self.rejected)
        for name in ("server_errors", "half_written", "reflected_scripts"):
            figures.add(self.suite, **{name: 0})  # present in the printed figures even when zero
