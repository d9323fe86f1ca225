"""What every benchmark script shares: imports from the repository, Django set-up, percentiles.

Importing this module first fixes the import path. Run as a script, a benchmark has its own folder
at the head of sys.path, where `queue.py` would shadow the standard library's `queue` (which
concurrent.futures, Django, kombu and Celery import): that folder is replaced by the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:] = [str(REPO), *(entry for entry in sys.path if Path(entry or ".").resolve() != BENCH_DIR)]
if "queue" in sys.modules and not hasattr(sys.modules["queue"], "SimpleQueue"):
    raise ImportError("benchmarks/queue.py was imported as the standard library's queue: import _bench first")


def setup_django(**environ: str) -> None:
    """Configure Django from the environment (plus `environ`), with DEBUG's dev keys as a fallback;
    each benchmark switches DEBUG itself off before it measures anything."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hotline.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.update(environ)
    import django

    django.setup()


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]
