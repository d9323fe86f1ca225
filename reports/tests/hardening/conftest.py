"""The hardening suite (issue 8): bad input, SSRF, faults, access. Every module here carries the marker `hardening`
and adds its tallies to `figures.FIGURES`; the end of the run prints them, one JSON line per suite:

    hardening-figures {"suite": "bad_input", "inputs": 412, "server_errors": 0, ...}

so that CI's log shows what was tried and what failed, not only pass/fail.
"""

from __future__ import annotations

import json

import pytest

from reports.tests.hardening.figures import snapshot


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    figures = snapshot()
    if not figures:
        return
    terminalreporter.section("hardening figures")
    for suite, counts in figures.items():
        terminalreporter.write_line("hardening-figures " + json.dumps({"suite": suite, **counts}, sort_keys=False))
