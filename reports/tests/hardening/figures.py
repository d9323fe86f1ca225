"""The hardening suite's tallies, printed at the end of the run (conftest.py) as one JSON line per suite.

Tests add to them as they go; the figures are what the suite *tried* and what went wrong, so a run
that skips a suite prints nothing for it instead of a reassuring zero.
"""

from __future__ import annotations

from collections import defaultdict

FIGURES: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def add(suite: str, **counts: int) -> None:
    for name, value in counts.items():
        FIGURES[suite][name] += value


def snapshot() -> dict[str, dict[str, int]]:
    return {suite: dict(counts) for suite, counts in sorted(FIGURES.items())}
