"""/metrics: Prometheus counters a coordinator's dashboard reads, and nobody else."""

from __future__ import annotations

import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reports.lib.metrics import QueueLengthCollector
from reports.models import Content
from reports.tests.pipeline_helpers import url_row

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def metrics_token(settings) -> str:
    settings.HOTLINE_METRICS_TOKEN = TOKEN
    settings.HOTLINE_METRICS_ALLOW_IPS = []
    return TOKEN


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_refused_without_the_token_or_an_allowed_address(client, metrics_token, settings) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 404

    settings.HOTLINE_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404  # no token: nobody

    settings.HOTLINE_METRICS_ALLOW_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 404
    # A forwarded address is not the peer: it cannot be used to get in.
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 404
    # Behind a reverse proxy every visitor arrives from the proxy's allowed address: only the token counts.
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 404
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.2").status_code == 404


def test_fetch_outcomes_and_task_durations_are_counted(client, metrics_token, pipeline) -> None:
    from reports.tasks.fetching import fetch_url

    url = url_row("http://gone.example.com/x.jpg")  # a reserved name: a "dns" error without any lookup
    before = scrape(client)

    fetch_url.apply(args=(url.pk,))
    fetch_url.apply(args=(url.pk,))  # already decided: skipped

    after = scrape(client)
    for labels in ({"state": "error", "error": "dns"}, {"state": "skipped", "error": "none"}):
        assert value(after, "hotline_fetch_outcomes_total", **labels) == (
            value(before, "hotline_fetch_outcomes_total", **labels) + 1
        )
    durations = {"task": "reports.tasks.fetching.fetch_url", "state": "SUCCESS"}
    assert value(after, "hotline_task_duration_seconds_count", **durations) == (
        value(before, "hotline_task_duration_seconds_count", **durations) + 2
    )


def test_a_reveal_is_counted(client, metrics_token, staff_client, django_capture_on_commit_callbacks) -> None:
    from reports.models.choices import CaseQueue
    from reports.services.triage import case_claim_next, content_reveal
    from reports.tests.analyst_helpers import make_case

    analyst = staff_client("analyst")
    case = make_case(51)
    claimed = case_claim_next(user=analyst.user, queue=CaseQueue(case.queue))
    before = value(scrape(client), "hotline_reveals_total")

    with django_capture_on_commit_callbacks(execute=True):  # counted once the reveal is committed
        content_reveal(user=analyst.user, content=case.contents.get(), case=claimed)

    assert value(scrape(client), "hotline_reveals_total") == before + 1


def test_match_kinds_are_counted(client, metrics_token, pipeline) -> None:
    from reports.tasks.matching import match_content
    from reports.tests.analyst_helpers import make_content

    original = make_content(61, matched=False)
    match_content.apply(args=(original.pk,))
    # The same picture in other bytes (a re-encoded copy): a PDQ match, not an exact one.
    twin = Content.objects.get(pk=original.pk)
    twin.pk, twin.sha256, twin.md5, twin.sha1, twin.matched_at, twin.match_seq = (
        None,
        "0" * 64,
        "0" * 32,
        "0" * 40,
        None,
        None,
    )
    twin.save()
    before = value(scrape(client), "hotline_matches_total", kind="pdq")

    match_content.apply(args=(twin.pk,))

    assert value(scrape(client), "hotline_matches_total", kind="pdq") == before + 1


class FakeRedis:
    def __init__(self, lengths: dict[str, int]) -> None:
        self.lengths = lengths
        self.asked: list[str] = []

    def pipeline(self, transaction: bool = False) -> FakeRedis:
        return self

    def llen(self, key: str) -> None:
        self.asked.append(key)

    def execute(self) -> list[int]:
        return [self.lengths.get(key, 0) for key in self.asked]


def test_queue_lengths_add_up_every_priority_of_a_queue() -> None:
    fake = FakeRedis({"p:fetch": 7, "p:fetch\x06\x169": 2, "p:match": 1})
    families = {f.name: f for f in QueueLengthCollector(fake, ["default", "fetch", "match"], key_prefix="p:").collect()}

    lengths = {sample.labels["queue"]: sample.value for sample in families["hotline_queue_length"].samples}
    assert lengths == {"default": 0, "fetch": 9, "match": 1}
    assert families["hotline_broker_up"].samples[0].value == 1


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real broker)")
def test_queue_lengths_are_read_from_the_broker_at_scrape_time(client, metrics_token, settings) -> None:
    import redis

    settings.CELERY_BROKER_URL = os.environ["REDIS_URL"]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": "hotline-metrics-test:"}
    server = redis.Redis.from_url(os.environ["REDIS_URL"])
    key = "hotline-metrics-test:fetch"
    server.delete(key)
    server.rpush(key, "a", "b", "c")
    try:
        samples = scrape(client)
    finally:
        server.delete(key)
    assert value(samples, "hotline_queue_length", queue="fetch") == 3
    assert value(samples, "hotline_broker_up") == 1
