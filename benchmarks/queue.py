""""Next case" claim latency: 8 analysts claiming from queues holding 1,000,000 open cases.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/queue.py \\
        [--cases 1000000] [--analysts 8] [--claims 500]

The data: `--cases` claimable cases made with INSERT … SELECT generate_series (no Python loop):
about 88% URL cases (one `Url` each, as the one-open-case-per-URL rule wants) and 12% hash-only
partner reports, spread over the four queues (new unknown 45%, AI-indicated 15%, hash-only 12%,
known at a new location 28%), 15% of the URL cases dead links (priority + 50), ages up to 120 days
skewed towards recent; 0.2% of them are "in progress" with a claim that ran out (an analyst walked
away). Besides them: 200 cases held right now by other analysts (the oldest of their queues, so
every claim walks past them), 5,000 waiting for a second opinion and 300,000 closed.

The work: each analyst is a thread with its own database connection calling the real service,
`case_claim_next` (its permission checks, `SELECT … FOR UPDATE SKIP LOCKED`, the conditional UPDATE
and the hash-chained audit event), picking a queue per claim (new unknown 55%, AI-indicated 20%,
hash-only 10%, known 15%), and then, untimed, closing the case as an assessment does (80%),
skipping it with `case_release` and remembering it in the "exclude" list as the view does (12%),
or walking away: the claim is made to run out at once (8%), so another analyst takes it over.
The analysts do not pause between cases: this is the worst case, all 8 asking at once.
`baseline` is the same loop for one analyst alone, in the same run on the same data.

Double claims: every claim is recorded with the time the service returned and the time its holder
started giving it up (close, release or expiry). Per case, each claim must have returned after the
previous holder started giving it up; closing and expiring are conditional on still holding the
case (a row count of 0 would be a stolen case), and the number of `case.claimed` audit events must
equal the number of claims. `double_claims` counts every violation and must be 0.

`claim_plan` is PostgreSQL's EXPLAIN ANALYZE of the claim's SELECT on the data left at the end:
the indexes it uses and its execution time. The analysts share one Python process (and its GIL)
and the machine's CPUs with PostgreSQL, so the concurrent latencies are mostly waiting for a CPU:
`cpu_p50_ms` (the calling thread's CPU time per claim) and `load_average_1m` help tell that apart.

The run uses its own database, `<DATABASE_URL's database>_queue_bench`, created and migrated at the
start and dropped at the end, so real data is never touched. SQLite is refused (there is no
SKIP LOCKED, and one writer at a time). It prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import _bench  # first: imports come from the repository (see _bench)

TARGET_P99_MS = 50.0

# Share of the claimable cases per queue; hash-only cases are partner reports without a URL.
CASE_MIX = (("new_unknown", 0.45), ("ai_indicated", 0.15), ("hash_only", 0.12), ("known_new_location", 0.28))
# Which queue an analyst asks for next.
CLAIM_MIX = (("new_unknown", 0.55), ("ai_indicated", 0.20), ("hash_only", 0.10), ("known_new_location", 0.15))
DEAD_LINK_SHARE = 0.15
EXPIRED_SHARE = 0.002
MAX_AGE_DAYS = 120
HELD_BY_OTHERS = 200
AWAITING_SECOND_OPINION = 5000
CLOSED_HISTORY = 300_000
BACKGROUND_ANALYSTS = 5
# What an analyst does with a claimed case: close it (assessed), skip it, or walk away.
CLOSE_SHARE = 0.80
SKIP_SHARE = 0.12
WARMUP_CLAIMS = 5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000, help="claimable cases (default 1,000,000)")
    parser.add_argument("--analysts", type=int, default=8, help="concurrent analysts (default 8)")
    parser.add_argument("--claims", type=int, default=500, help="timed claims per analyst, and for the baseline")
    parser.add_argument("--seed", type=int, default=20250101, help="random seed for the data and the choices")
    parser.add_argument("--allow-sqlite", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def weighted(rng: random.Random, mix: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _share in mix], weights=[share for _name, share in mix])[0]


@dataclass
class Claim:
    case_id: int
    user_id: int
    queue: str
    returned: float  # perf_counter when case_claim_next returned (the claim is committed)
    seconds: float  # the call's duration
    cpu: float  # this thread's CPU time in the call (Python; the database server's is not counted)
    timed: bool
    ended: float = float("inf")  # perf_counter when the holder started giving it up
    how: str = ""


# --- Data -------------------------------------------------------------------------------------------


def _queue_sql(column_random: str) -> str:
    """A CASE expression choosing a URL case's queue from one uniform random value in [0, 1)."""
    url_mix = [(name, share) for name, share in CASE_MIX if name != "hash_only"]
    total = sum(share for _name, share in url_mix)
    parts, edge = [], 0.0
    for name, share in url_mix[:-1]:
        edge += share / total
        parts.append(f"WHEN {column_random} < {edge:.6f} THEN '{name}'")
    return f"CASE {' '.join(parts)} ELSE '{url_mix[-1][0]}' END"


def _priority_sql(queue_column: str, dead_column: str) -> str:
    from reports.services.triage import NOTHING_CAPTURED_PENALTY, QUEUE_PRIORITY

    whens = " ".join(f"WHEN '{queue.value}' THEN {priority}" for queue, priority in QUEUE_PRIORITY.items())
    return f"(CASE {queue_column} {whens} END) + CASE WHEN {dead_column} THEN {NOTHING_CAPTURED_PENALTY} ELSE 0 END"


def create_data(cursor: Any, *, cases: int, seed: int, partner_id: int, background: list[int]) -> dict[str, int]:
    """Fill the (empty) tables with INSERT … SELECT generate_series; return the row counts."""
    from reports.models import Case, Report, Url

    hash_only = round(cases * dict(CASE_MIX)["hash_only"])
    url_claimable = cases - hash_only
    urls = url_claimable + HELD_BY_OTHERS + AWAITING_SECOND_OPINION
    cursor.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
    url_table, report_table, case_table = Url._meta.db_table, Report._meta.db_table, Case._meta.db_table

    cursor.execute(
        f"""
        INSERT INTO {url_table} (canonical_url, url_hash, scheme, host, first_seen_at, last_seen_at, sightings,
            fetch_status, fetch_error, fetch_attempts, hosting_country, hosting_provider, hosting_overridden)
        SELECT 'https://host' || mod(g, 50000) || '.example/item/' || g, md5(g::text) || md5('u' || g::text),
            'https', 'host' || mod(g, 50000) || '.example', now() - interval '120 days', now(), 1,
            'done', '', 1, (ARRAY['NL','DE','US','FR','RU','GB'])[1 + mod(g, 6)], '', false
        FROM generate_series(1, %s) AS g
        """,  # noqa: S608 - only this file's constants and table names are interpolated
        [urls],
    )
    cursor.execute(f"SELECT min(id), max(id) FROM {url_table}")  # noqa: S608
    url_min, url_max = cursor.fetchone()
    assert url_max - url_min + 1 == urls, "URL ids are not contiguous"

    cursor.execute(
        f"""
        INSERT INTO {report_table} (source, partner_id, external_id, category, ai_suspected, where_found,
            description, email, pin_digest, status, created_at)
        SELECT 'partner', %s, 'bench-' || g, 'csam', 'unknown', '', '', '', '', 'in_assessment',
            now() - interval '120 days' * random() ^ 2
        FROM generate_series(1, %s) AS g
        """,  # noqa: S608 - only this file's constants and table names are interpolated
        [partner_id, hash_only],
    )
    cursor.execute(f"SELECT min(id), max(id) FROM {report_table}")  # noqa: S608
    report_min, report_max = cursor.fetchone()
    assert report_max - report_min + 1 == hash_only, "report ids are not contiguous"

    columns = "(url_id, report_id, status, queue, priority, auto_closed, claimed_by_id, claim_expires_at, created_at)"
    background_array = "ARRAY[" + ",".join(str(pk) for pk in background) + "]::bigint[]"
    # Claimable URL cases: open, or in progress with a claim that ran out.
    cursor.execute(
        f"""
        INSERT INTO {case_table} {columns}
        SELECT %s + g - 1, NULL,
            CASE WHEN expired THEN 'in_progress' ELSE 'open' END, queue, {_priority_sql("queue", "dead")}, false,
            CASE WHEN expired THEN ({background_array})[1 + mod(g, {len(background)})] END,
            CASE WHEN expired THEN now() - interval '1 minute' - interval '3 days' * random() END,
            now() - interval '{MAX_AGE_DAYS} days' * age ^ 2
        FROM (
            SELECT g, {_queue_sql("q")} AS queue, d < {DEAD_LINK_SHARE} AS dead, e < {EXPIRED_SHARE} AS expired, age
            FROM (SELECT g, random() AS q, random() AS d, random() AS e, random() AS age
                  FROM generate_series(1, %s) AS g) AS r
        ) AS c
        """,  # noqa: S608 - only this file's constants and table names are interpolated
        [url_min, url_claimable],
    )
    # Hash-only partner reports: one case each, without a URL.
    cursor.execute(
        f"""
        INSERT INTO {case_table} {columns}
        SELECT NULL, %s + g - 1, CASE WHEN expired THEN 'in_progress' ELSE 'open' END, 'hash_only',
            {_priority_sql("'hash_only'", "false")}, false,
            CASE WHEN expired THEN ({background_array})[1 + mod(g, {len(background)})] END,
            CASE WHEN expired THEN now() - interval '1 minute' - interval '3 days' * random() END,
            now() - interval '{MAX_AGE_DAYS} days' * age ^ 2
        FROM (SELECT g, random() < {EXPIRED_SHARE} AS expired, random() AS age FROM generate_series(1, %s) AS g) AS r
        """,  # noqa: S608 - only this file's constants and table names are interpolated
        [report_min, hash_only],
    )
    # Held right now by other analysts: the oldest of their queues.
    cursor.execute(
        f"""
        INSERT INTO {case_table} {columns}
        SELECT %s + g - 1, NULL, 'in_progress', queue, {_priority_sql("queue", "false")}, false,
            ({background_array})[1 + mod(g, {len(background)})], now() + interval '25 minutes',
            now() - interval '{MAX_AGE_DAYS + 1} days'
        FROM (SELECT g, (ARRAY['new_unknown','ai_indicated','known_new_location'])[1 + mod(g, 3)] AS queue
              FROM generate_series(1, %s) AS g) AS r
        """,  # noqa: S608 - only this file's constants and table names are interpolated
        [url_min + url_claimable, HELD_BY_OTHERS],
    )
    cursor.execute(
        f"""
        INSERT INTO {case_table} {columns}
        SELECT %s + g - 1, NULL, 'awaiting_second_opinion', 'new_unknown', 10, false, NULL, NULL,
            now() - interval '30 days' * random()
        FROM generate_series(1, %s) AS g
        """,  # noqa: S608 - only this file's constants and table names are interpolated
        [url_min + url_claimable + HELD_BY_OTHERS, AWAITING_SECOND_OPINION],
    )
    # History: closed cases of URLs seen before.
    cursor.execute(
        f"""
        INSERT INTO {case_table} {columns.replace(")", ", assessed_at, closed_at)")}
        SELECT %s + mod(g, %s), NULL, 'closed', 'new_unknown', 10, mod(g, 3) = 0, NULL, NULL, at - interval '2 days',
            at, at
        FROM (SELECT g, now() - interval '400 days' * random() AS at FROM generate_series(1, %s) AS g) AS r
        """,  # noqa: S608 - only this file's constants and table names are interpolated
        [url_min, url_claimable, CLOSED_HISTORY],
    )
    cursor.execute(f"VACUUM ANALYZE {url_table}")
    cursor.execute(f"VACUUM ANALYZE {report_table}")
    cursor.execute(f"VACUUM ANALYZE {case_table}")
    claimable_now = "status IN ('open', 'in_progress') AND (claimed_by_id IS NULL OR claim_expires_at < now())"
    cursor.execute(f"SELECT count(*) FILTER (WHERE {claimable_now}), count(*) FROM {case_table}")  # noqa: S608
    claimable, total = cursor.fetchone()
    return {"claimable_cases": claimable, "cases_in_table": total, "urls": urls, "hash_only_reports": hash_only}


# --- The claim plan ---------------------------------------------------------------------------------


def claim_plan(user: Any, queue: str) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the SELECT … FOR UPDATE SKIP LOCKED that case_claim_next runs (rolled back)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from reports.selectors.triage import claimable_cases

    queryset = claimable_cases(queue, user=user, now=timezone.now()).select_for_update(skip_locked=True, of=("self",))
    indexes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            indexes.append(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    with transaction.atomic():
        sql, params = queryset[:1].query.get_compiler(connection=connection).as_sql()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
            text = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    if isinstance(plan, str):
        plan = json.loads(plan)
    top = plan[0]
    walk(top["Plan"])
    return {
        "queue": queue,
        "indexes": indexes,
        "execution_ms": round(top["Execution Time"], 3),
        "rows_removed_by_filter": _sum_key(top["Plan"], "Rows Removed by Filter"),
        "plan": text,
    }


def _sum_key(node: dict[str, Any], key: str) -> int:
    return int(node.get(key, 0)) + sum(_sum_key(child, key) for child in node.get("Plans", []))


# --- The work ---------------------------------------------------------------------------------------


class Analyst:
    """One analyst's loop: claim the next case of a queue, then close, skip or abandon it."""

    def __init__(self, user: Any, rng: random.Random) -> None:
        self.user = user
        self.rng = rng
        self.skipped: list[int] = []
        self.claims: list[Claim] = []
        self.stolen: list[int] = []
        self.empty = 0

    def one(self, *, timed: bool) -> None:
        from django.utils import timezone

        from reports.models import Case
        from reports.models.choices import CaseStatus
        from reports.services.triage import case_claim_next, case_release
        from reports.views.analyst import SKIPPED_REMEMBERED

        queue = weighted(self.rng, CLAIM_MIX)
        cpu_started, started = time.thread_time(), time.perf_counter()
        case = case_claim_next(user=self.user, queue=queue, exclude=self.skipped)
        returned, cpu = time.perf_counter(), time.thread_time() - cpu_started
        if case is None:
            self.empty += 1
            return
        claim = Claim(case.pk, self.user.pk, queue, returned, returned - started, cpu, timed)
        self.claims.append(claim)
        action = self.rng.random()
        claim.ended = time.perf_counter()
        now = timezone.now()
        held = Case.objects.filter(pk=case.pk, claimed_by_id=self.user.pk, claim_expires_at__gt=now)
        if action < CLOSE_SHARE:
            claim.how = "closed"
            changed = held.update(
                status=CaseStatus.CLOSED, claimed_by=None, claim_expires_at=None, assessed_at=now, closed_at=now
            )
        elif action < CLOSE_SHARE + SKIP_SHARE:
            claim.how = "skipped"
            changed = 1 if case_release(user=self.user, case=case).claimed_by_id is None else 0
            self.skipped = [*self.skipped, case.pk][-SKIPPED_REMEMBERED:]
        else:
            claim.how = "expired"
            changed = held.update(claim_expires_at=now - timedelta(seconds=1))
        if changed != 1:
            self.stolen.append(case.pk)


def run_phase(analysts: list[Analyst], claims: int, *, warmup: int) -> tuple[float, list[BaseException]]:
    """Each analyst in its own thread (own connection): `warmup` untimed claims, then, all released
    at once, `claims` timed ones. Returns the timed phase's wall time and any errors."""
    from django.db import connections

    ready = threading.Barrier(len(analysts) + 1)
    done = threading.Barrier(len(analysts) + 1)
    errors: list[BaseException] = []

    def work(analyst: Analyst) -> None:
        try:
            for _ in range(warmup):
                analyst.one(timed=False)
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        ready.wait()
        try:
            if not errors:
                for _ in range(claims):
                    analyst.one(timed=True)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.wait()
            connections.close_all()  # this thread's connection

    threads = [threading.Thread(target=work, args=(analyst,), daemon=True) for analyst in analysts]
    for thread in threads:
        thread.start()
    ready.wait()
    gc.collect()
    began = time.perf_counter()
    done.wait()
    wall = time.perf_counter() - began
    for thread in threads:
        thread.join()
    return wall, errors


def double_claims(claims: list[Claim]) -> list[dict[str, Any]]:
    """Claims of one case that overlapped: one returned before the previous holder began to let go."""
    by_case: dict[int, list[Claim]] = defaultdict(list)
    for claim in claims:
        by_case[claim.case_id].append(claim)
    found = []
    for case_id, held in by_case.items():
        held.sort(key=lambda claim: claim.returned)
        for previous, claim in itertools.pairwise(held):
            if claim.returned < previous.ended:
                found.append({"case": case_id, "first": previous.user_id, "second": claim.user_id})
    return found


def summary(claims: list[Claim], wall: float) -> dict[str, Any]:
    seconds = sorted(claim.seconds for claim in claims if claim.timed)
    cpu = sorted(claim.cpu for claim in claims if claim.timed)
    count = len(seconds)
    return {
        "claims": count,
        "p50_ms": round(_bench.percentile(seconds, 0.50) * 1000, 2),
        "p99_ms": round(_bench.percentile(seconds, 0.99) * 1000, 2),
        "max_ms": round(seconds[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 2),
        "claims_per_second": round(count / wall, 1),
        "cpu_p50_ms": round(_bench.percentile(cpu, 0.50) * 1000, 2),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _bench.setup_django()

    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from reports.models import AuditEvent, Partner
    from reports.services.staff import staff_create

    vendor = connection.vendor
    if vendor != "postgresql":
        print(
            "benchmarks/queue.py measures PostgreSQL (SELECT … FOR UPDATE SKIP LOCKED, concurrent writers): "
            "set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/test.",
            file=sys.stderr,
        )
        return 2

    # As production runs: no debug query log; users made quickly (the real hasher is slow on purpose).
    settings.DEBUG = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    rng = random.Random(args.seed)

    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{connection.settings_dict['NAME']}_queue_bench"
    old_config = setup_databases(verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set())
    try:
        began = time.perf_counter()
        background = [staff_create(username=f"elsewhere-{i}", role="analyst")[0].pk for i in range(BACKGROUND_ANALYSTS)]
        users = [staff_create(username=f"bench-analyst-{i}", role="analyst")[0] for i in range(args.analysts)]
        partner = Partner.objects.create(name="Bench partner", kind="hotline", country="DE")
        with connection.cursor() as cursor:
            counts = create_data(cursor, cases=args.cases, seed=args.seed, partner_id=partner.pk, background=background)
        setup_seconds = time.perf_counter() - began
        audit_before = AuditEvent.objects.filter(action="case.claimed").count()

        load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
        # Baseline: one analyst, nobody else claiming.
        solo = Analyst(users[0], random.Random(rng.random()))
        solo_wall, errors = run_phase([solo], args.claims, warmup=WARMUP_CLAIMS)
        if errors:
            raise errors[0]
        # Then everyone at once.
        team = [Analyst(user, random.Random(rng.random())) for user in users]
        team_wall, errors = run_phase(team, args.claims, warmup=WARMUP_CLAIMS)
        if errors:
            raise errors[0]

        everything = [claim for analyst in [solo, *team] for claim in analyst.claims]
        overlaps = double_claims(everything)
        stolen = [pk for analyst in [solo, *team] for pk in analyst.stolen]
        audited = AuditEvent.objects.filter(action="case.claimed").count() - audit_before
        takeovers = AuditEvent.objects.filter(action="case.claimed").exclude(details__previous_holder=None).count()
        plans = [claim_plan(users[0], queue) for queue, _share in CASE_MIX]
        team_claims = [claim for analyst in team for claim in analyst.claims]
        result = {
            "benchmark": "queue",
            "target_p99_ms": TARGET_P99_MS,
            "analysts": args.analysts,
            "claims_per_analyst": args.claims,
            **counts,
            "concurrent": summary(team_claims, team_wall),
            "baseline": summary(solo.claims, solo_wall),
            "meets_target": summary(team_claims, team_wall)["p99_ms"] < TARGET_P99_MS,
            "double_claims": len(overlaps) + len(stolen) + abs(audited - len(everything)),
            "double_claim_detail": {
                "overlapping_claims": overlaps[:10],
                "lost_while_held": stolen[:10],
                "claims_recorded": len(everything),
                "claim_audit_events": audited,
            },
            "empty_queue_answers": sum(analyst.empty for analyst in [solo, *team]),
            "claims_by_outcome": {
                how: sum(1 for claim in everything if claim.how == how) for how in ("closed", "skipped", "expired")
            },
            "expired_claims_taken_over": takeovers,
            "claim_plan": plans,
            "setup_seconds": round(setup_seconds, 1),
            "database_vendor": vendor,
            "database_version": ".".join(str(part) for part in connection.get_database_version()),
            "cpus": os.cpu_count(),
            # Other work on the machine skews the latencies: the 1-minute load before and after the claims.
            "load_average_1m": [
                round(load[0], 2) for load in (load_before, os.getloadavg() if load_before else None) if load
            ],
            "python": platform.python_version(),
        }
    finally:
        from django.db import connections

        connections.close_all()
        teardown_databases(old_config, verbosity=0)
    print(json.dumps(result))
    return 0 if result["double_claims"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
