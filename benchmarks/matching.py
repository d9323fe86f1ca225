"""Near-duplicate search: `HammingIndex` against a brute-force NumPy scan and ThreatExchange's PDQ indexes.

    .venv/bin/python benchmarks/matching.py [--max-n 10000000] [--queries 1000]

The ThreatExchange comparison needs its packages, kept out of the project's requirements; in a venv of its own:

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r benchmarks/requirements.txt
    .venv-bench/bin/python benchmarks/matching.py

(without them the run says so in the JSON and compares with brute force only).

For N = 10^4 ... --max-n PDQ codes (256 bits) and two datasets, `uniform` (random codes) and `clustered` (families of
100 variants, each 0-8 bits from its seed, rows shuffled: buckets fill up as with real near-duplicate content), it
measures build time, memory (`memory_bytes()`, the process RSS growth after the build, and the peak RSS growth
during it) and per-query latency, p50 and p99, over `--queries` queries: half near-duplicates of stored codes (0-31
bits flipped), half random codes. Latency is wall-clock time; `cpu_*` figures are the thread's CPU time, which a
busy machine does not inflate. Every query's answer is checked: `HammingIndex.query` must return exactly the
brute-force list (ids, distances, order); ThreatExchange indexes must return the same set of (id, distance) pairs.

Contenders, all on the same queries in the same process:
- `brute_force`: a NumPy scan over the codes stored as four uint64 columns (the best plain-NumPy layout).
- `hamming_index`: this project's multi-index hashing index (`reports/lib/hamming_index.py`), built with one bulk
  `add`; `incremental` then adds 10,000 more codes one `add_hex` at a time and re-times queries with the delta.
- `tx_pdq_index`: ThreatExchange's `PDQIndex`, what `PDQSignal.get_index_cls()` returns and HMA uses: a FAISS
  `IndexBinaryMultiHash` (16 tables of 16 bits) in an `IndexBinaryIDMap2`.
- `tx_pdq_index2`: ThreatExchange's `PDQIndex2`, a FAISS `IndexFlatL2` over float vectors (exhaustive).
A ThreatExchange index runs at an N only if its build and queries there are predicted (from the previous N) to fit
in `--tx-budget` seconds; otherwise the JSON says why it was skipped.

The process is pinned to CPU 0 (os.sched_setaffinity) and FAISS to one thread. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import _bench  # noqa: F401 - first: imports come from the repository (see _bench)

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before FAISS is imported

import numpy as np

from reports.lib.hamming_index import HammingIndex

try:
    import faiss
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex
    from threatexchange.signal_type.pdq.pdq_index2 import PDQIndex2
except ImportError as error:  # optional: only to compare against
    faiss = PDQIndex = PDQIndex2 = None
    TX_MISSING = str(error)
else:
    TX_MISSING = ""

BITS = 256
THRESHOLD = 31
TARGET_P50_MS = 0.5
TARGET_MEMORY_BYTES = 1.5e9
TARGET_N = 10_000_000
FAMILY = 100
INCREMENTAL_ADDS = 10_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-n", type=int, default=TARGET_N, help="largest N (default 10^7)")
    parser.add_argument("--queries", type=int, default=1000, help="queries per N and dataset (default 1000)")
    parser.add_argument("--datasets", default="uniform,clustered", help="comma-separated: uniform, clustered")
    parser.add_argument("--tx-budget", type=float, default=300.0, help="seconds per ThreatExchange index and N")
    parser.add_argument("--no-tx", action="store_true", help="skip the ThreatExchange indexes")
    parser.add_argument("--seed", type=int, default=20260101)
    return parser.parse_args(argv)


# ----- data -----


def random_flips(rng: np.random.Generator, n: int, max_flips: int) -> np.ndarray:
    """(n, 32) uint8 XOR masks, each with 0..max_flips bits set (a repeated position just sets fewer)."""
    masks = np.zeros((n, 4), dtype=np.uint64)
    counts = rng.integers(0, max_flips + 1, size=n)
    for slot in range(max_flips):
        position = rng.integers(0, BITS, size=n)
        active = slot < counts
        bit = np.left_shift(np.uint64(1), (position % 64).astype(np.uint64))
        for word in range(4):
            masks[:, word] |= np.where(active & (position // 64 == word), bit, np.uint64(0))
    return masks.view(np.uint8).reshape(n, 32)


def make_codes(rng: np.random.Generator, n: int, dataset: str) -> np.ndarray:
    if dataset == "uniform":
        return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    seeds = rng.integers(0, 256, size=(-(-n // FAMILY), 32), dtype=np.uint8)
    codes = np.repeat(seeds, FAMILY, axis=0)[:n] ^ random_flips(rng, n, 8)
    return codes[rng.permutation(n)]


def make_queries(rng: np.random.Generator, codes: np.ndarray, count: int) -> tuple[np.ndarray, list[str]]:
    """Alternating near-duplicates of stored codes (0..31 bits flipped) and random codes."""
    queries = rng.integers(0, 256, size=(count, 32), dtype=np.uint8)
    kinds = []
    for i in range(count):
        if i % 2 == 0:
            bits = rng.choice(BITS, size=rng.integers(0, THRESHOLD + 1), replace=False)
            query = codes[rng.integers(0, codes.shape[0])].copy()
            np.bitwise_xor.at(query, bits // 8, (1 << (7 - bits % 8)).astype(np.uint8))
            queries[i] = query
            kinds.append("near")
        else:
            kinds.append("random")
    return queries, kinds


# ----- brute force -----


class BruteForce:
    """Distances to every code, four uint64 columns at a time; the answer HammingIndex must reproduce."""

    CHUNK = 1 << 16

    def __init__(self, codes: np.ndarray, ids: np.ndarray) -> None:
        self.columns = np.ascontiguousarray(codes.view(np.uint64).T)
        self.ids = ids

    def query(self, query: np.ndarray, r: int) -> list[tuple[int, int]]:
        words = query.view(np.uint64)
        n = self.columns.shape[1]
        rows, dists = [], []
        for begin in range(0, n, self.CHUNK):
            end = min(n, begin + self.CHUNK)
            distance = np.bitwise_count(self.columns[0, begin:end] ^ words[0]).astype(np.uint16)
            for word in range(1, 4):
                distance += np.bitwise_count(self.columns[word, begin:end] ^ words[word])
            hits = np.flatnonzero(distance <= r)
            rows.append(hits + begin)
            dists.append(distance[hits])
        found = np.concatenate(rows)
        dist = np.concatenate(dists).astype(np.int64)
        ids = self.ids[found]
        order = np.lexsort((ids, dist))
        return list(zip(ids[order].tolist(), dist[order].tolist(), strict=True))


# ----- measuring -----


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def build(make: Callable[[], object]) -> tuple[object, dict[str, float]]:
    gc.collect()
    before = rss_bytes()
    reset_peak_rss()
    started = time.perf_counter()
    built = make()
    seconds = time.perf_counter() - started
    gc.collect()
    return built, {
        "build_s": round(seconds, 3),
        "rss_delta_bytes": rss_bytes() - before,
        "peak_rss_delta_bytes": peak_rss_bytes() - before,
    }


def percentile_ms(values: list[float], fraction: float) -> float:
    return round(float(np.percentile(values, fraction * 100)) * 1e3, 4)


def timed_queries(run: Callable[[Any], Any], queries: Sequence[Any], kinds: list[str]) -> tuple[list[Any], dict]:
    answers, wall, cpu = [], [], []
    for query in queries:
        started_wall, started_cpu = time.perf_counter(), time.thread_time()
        answers.append(run(query))
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
    near = [t for t, kind in zip(wall, kinds, strict=False) if kind == "near"]
    rand = [t for t, kind in zip(wall, kinds, strict=False) if kind == "random"]
    return answers, {
        "p50_ms": percentile_ms(wall, 0.5),
        "p99_ms": percentile_ms(wall, 0.99),
        "mean_ms": round(float(np.mean(wall)) * 1e3, 4),
        "cpu_p50_ms": percentile_ms(cpu, 0.5),
        "cpu_p99_ms": percentile_ms(cpu, 0.99),
        "near_p50_ms": percentile_ms(near, 0.5) if near else None,
        "random_p50_ms": percentile_ms(rand, 0.5) if rand else None,
    }


# ----- contenders -----


def run_hamming_index(codes, ids, queries, kinds, expected) -> tuple[dict, HammingIndex]:
    def make() -> HammingIndex:
        index = HammingIndex(BITS, THRESHOLD)
        index.add(ids, codes)
        return index

    index, figures = build(make)
    assert isinstance(index, HammingIndex)
    answers, latency = timed_queries(index.query, queries, kinds)
    figures.update(latency)
    figures["memory_bytes"] = index.memory_bytes()
    figures["layout"] = {"tables": index.describe()["tables"], "widths": index.describe()["widths"]}
    figures["mismatches"] = sum(answer != want for answer, want in zip(answers, expected, strict=True))
    figures["matches_returned"] = sum(len(answer) for answer in answers)  # type: ignore[arg-type]
    return figures, index


def run_incremental(index: HammingIndex, codes, ids, queries, kinds, dataset, rng) -> dict:
    """Content keeps arriving: add codes one at a time into the built index, then query with the delta in play."""
    extra = make_codes(rng, INCREMENTAL_ADDS, dataset)
    extra_ids = np.arange(INCREMENTAL_ADDS, dtype=np.int64) + int(ids.max()) + 1
    hexes = [code.tobytes().hex() for code in extra]
    started = time.perf_counter()
    for new_id, value in zip(extra_ids.tolist(), hexes, strict=True):
        index.add_hex(new_id, value)
    seconds = time.perf_counter() - started
    count = min(200, len(queries))
    answers, latency = timed_queries(index.query, queries[:count], kinds)
    oracle = BruteForce(np.concatenate([codes, extra]), np.concatenate([ids, extra_ids]))
    mismatches = sum(answers[i] != oracle.query(queries[i], THRESHOLD) for i in range(count))
    return {
        "adds": INCREMENTAL_ADDS,
        "add_hex_us_mean": round(seconds / INCREMENTAL_ADDS * 1e6, 2),
        "pending_in_delta": index.describe()["delta"],
        "queries": count,
        "p50_ms": latency["p50_ms"],
        "p99_ms": latency["p99_ms"],
        "cpu_p50_ms": latency["cpu_p50_ms"],
        "mismatches": mismatches,
    }


def run_tx(make_index, hexes, ids, queries, kinds, expected) -> dict:
    def make():
        return make_index([(hexes[i], int(ids[i])) for i in range(len(hexes))])

    index, figures = build(make)
    query_hexes = [query.tobytes().hex() for query in queries]
    answers, latency = timed_queries(index.query, query_hexes, kinds)  # type: ignore[attr-defined]
    figures.update(latency)
    mismatches = 0
    for answer, want in zip(answers, expected, strict=True):
        got = {(int(match.metadata), int(match.similarity_info.distance)) for match in answer}
        mismatches += got != set(want)
    figures["mismatches"] = mismatches
    return figures


TX_INDEXES: dict[str, Callable[[list[tuple[str, int]]], object]] = {
    "tx_pdq_index": lambda entries: PDQIndex(entries),
    "tx_pdq_index2": lambda entries: PDQIndex2(entries=entries),
}


def predicted_seconds(previous: dict | None, factor: float, queries: int) -> float | None:
    if previous is None or "build_s" not in previous:
        return None
    return previous["build_s"] * factor * 1.2 + previous["mean_ms"] / 1e3 * factor * queries


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.sched_setaffinity(0, {0})
    if faiss is not None:
        faiss.omp_set_num_threads(1)
    sizes = [n for n in (10_000, 100_000, 1_000_000, 10_000_000) if n <= args.max_n]
    datasets = [name.strip() for name in args.datasets.split(",") if name.strip()]
    load_before = os.getloadavg()
    results = []
    for dataset in datasets:
        tx_previous: dict[str, dict | None] = {"tx_pdq_index": None, "tx_pdq_index2": None}
        for n in sizes:
            rng = np.random.default_rng([args.seed, n, datasets.index(dataset)])
            codes = make_codes(rng, n, dataset)
            ids = np.arange(n, dtype=np.int64) * 7 + 11
            queries, kinds = make_queries(rng, codes, args.queries)
            oracle = BruteForce(codes, ids)
            expected, brute = timed_queries(partial(oracle.query, r=THRESHOLD), queries, kinds)
            row: dict[str, object] = {"dataset": dataset, "n": n, "brute_force": brute}
            row["matches_per_query_mean"] = round(sum(len(want) for want in expected) / len(expected), 2)

            figures, index = run_hamming_index(codes, ids, queries, kinds, expected)
            row["hamming_index"] = figures
            figures["speedup_p50_vs_brute_force"] = round(brute["p50_ms"] / figures["p50_ms"], 1)
            figures["incremental"] = run_incremental(index, codes, ids, queries, kinds, dataset, rng)
            del index
            gc.collect()

            if args.no_tx or TX_MISSING:
                row["threatexchange"] = {"skipped": "--no-tx" if args.no_tx else f"not installed: {TX_MISSING}"}
            else:
                hexes_all = codes.tobytes().hex()
                hexes = [hexes_all[i * 64 : (i + 1) * 64] for i in range(n)]
                del hexes_all
                for name, make_index in TX_INDEXES.items():
                    previous = tx_previous[name]
                    estimate = predicted_seconds(previous, 10, args.queries)
                    if previous is not None and "skipped" in previous:
                        row[name] = {"skipped": previous["skipped"]}
                    elif estimate is not None and estimate > args.tx_budget:
                        row[name] = {
                            "skipped": f"predicted {estimate:.0f} s for build and queries (10x the previous N) "
                            f"> --tx-budget {args.tx_budget:.0f} s"
                        }
                    else:
                        row[name] = run_tx(make_index, hexes, ids, queries, kinds, expected)
                        gc.collect()
                        row[name]["speedup_p50_hamming_index_vs_this"] = round(
                            row[name]["p50_ms"] / figures["p50_ms"], 1
                        )
                    tx_previous[name] = row[name]
                del hexes
            results.append(row)
            print(json.dumps({"progress": {"dataset": dataset, "n": n}}), file=sys.stderr, flush=True)
            del oracle, codes, expected
            gc.collect()

    at_target = [row for row in results if row["n"] == TARGET_N]
    met: dict[str, object] = {}
    for row in at_target:
        figures = row["hamming_index"]
        met[row["dataset"]] = {
            "p50_under_0_5_ms": figures["p50_ms"] < TARGET_P50_MS,
            "memory_bytes_under_1_5e9": figures["memory_bytes"] <= TARGET_MEMORY_BYTES,
            "rss_delta_under_1_5e9": figures["rss_delta_bytes"] <= TARGET_MEMORY_BYTES,
            "exact": figures["mismatches"] == 0 and figures["incremental"]["mismatches"] == 0,
        }
    print(
        json.dumps(
            {
                "benchmark": "matching",
                "hash": "PDQ, 256 bits",
                "threshold": THRESHOLD,
                "queries_per_n": args.queries,
                "query_mix": "alternating: near-duplicate of a stored code (0-31 bits flipped) / random code",
                "pinned_to_cpu": sorted(os.sched_getaffinity(0)),
                "threads": "one (process pinned to CPU 0; OMP_NUM_THREADS=1, faiss.omp_set_num_threads(1))",
                "machine": {
                    "cpu": cpu_model(),
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "faiss": getattr(faiss, "__version__", None),
                    "threatexchange": tx_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                },
                "targets": {
                    "n": TARGET_N,
                    "p50_ms_below": TARGET_P50_MS,
                    "memory_bytes_at_most": TARGET_MEMORY_BYTES,
                    "exact": True,
                },
                "targets_met": met or "not measured: --max-n is below 10^7",
                "results": results,
            },
            indent=1,
        )
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def tx_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("threatexchange")
    except Exception:  # not installed, or no metadata
        return None


if __name__ == "__main__":
    main()
