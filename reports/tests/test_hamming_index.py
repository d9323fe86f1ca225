"""The near-duplicate index finds exactly what a brute-force scan finds: the same ids, distances and order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports.lib.hamming_index import HammingIndex

# Layouts to force the multi-index path at test sizes (the cost model would scan a few hundred codes):
# narrow tables make full buckets, odd widths make substrings straddle words, and some leave bits uncovered.
LAYOUTS = {
    256: [None, (8,) * 32, (16,) * 16, (11,) * 23, (24,) + (9,) * 25, (5,) * 3],
    64: [None, (8,) * 8, (6,) * 10, (13, 13, 12, 12, 12), (20, 20, 24), (4,)],
}


def brute_force(codes: np.ndarray, ids: np.ndarray, query: np.ndarray, r: int) -> list[tuple[int, int]]:
    if codes.shape[0] == 0:
        return []
    distances = np.unpackbits(codes ^ query, axis=1).sum(axis=1)
    hits = np.flatnonzero(distances <= r)
    return sorted((int(ids[i]), int(distances[i])) for i in hits)  # ids are unique per test, so this is (id, d)


def by_distance(matches: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return sorted(matches, key=lambda match: (match[1], match[0]))


def flip(code: np.ndarray, bits: np.ndarray) -> np.ndarray:
    out = code.copy()
    for bit in bits:
        out[bit // 8] ^= np.uint8(1 << (7 - bit % 8))
    return out


def make_codes(rng: np.random.Generator, n: int, nbytes: int, clustered: bool) -> np.ndarray:
    if not clustered or n == 0:
        return rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    # A few seeds, each with many variants a few bits away, and exact copies: buckets fill up.
    seeds = rng.integers(0, 256, size=(max(1, n // 25), nbytes), dtype=np.uint8)
    codes = seeds[rng.integers(0, seeds.shape[0], size=n)]
    for row in range(n):
        codes[row] = flip(codes[row], rng.choice(nbytes * 8, size=rng.integers(0, 6), replace=False))
    return codes


def queries_for(rng: np.random.Generator, codes: np.ndarray, nbytes: int, count: int) -> list[np.ndarray]:
    out = [rng.integers(0, 256, size=nbytes, dtype=np.uint8)]
    for _ in range(count if codes.shape[0] else 0):
        stored = codes[rng.integers(0, codes.shape[0])]
        out.append(flip(stored, rng.choice(nbytes * 8, size=rng.integers(0, 40), replace=False)))
    return out


def assert_matches_brute_force(
    index: HammingIndex, codes: np.ndarray, ids: np.ndarray, queries: list[np.ndarray], thresholds: list[int]
) -> None:
    for query in queries:
        for r in thresholds:
            expected = by_distance(brute_force(codes, ids, query, r))
            assert index.query(query, r) == expected
            if r == index.max_distance:
                assert index.query(query) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bits=st.sampled_from([256, 64]),
    layout=st.integers(0, 5),
    clustered=st.booleans(),
    n=st.integers(0, 300),
    batches=st.integers(1, 6),
    delta_rows=st.sampled_from([1, 5, 40, None]),
    built_for=st.sampled_from([0, 10, 31]),
    extra_threshold=st.integers(0, 256),
    removals=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_query_equals_brute_force_across_adds_merges_and_removals(
    bits, layout, clustered, n, batches, delta_rows, built_for, extra_threshold, removals, seed
):
    rng = np.random.default_rng(seed)
    nbytes = bits // 8
    codes = make_codes(rng, n, nbytes, clustered)
    ids = rng.permutation(np.arange(-(10**12), -(10**12) + 10 * n + 1, 10, dtype=np.int64))[:n]
    index = HammingIndex(bits, min(built_for, bits), widths=LAYOUTS[bits][layout], delta_rows=delta_rows)
    thresholds = sorted({0, 10, 31, 64, extra_threshold % (bits + 1)})

    # Arrive in uneven batches (bulk adds, single adds, merges in between), checking after each.
    cuts = np.sort(rng.integers(0, n + 1, size=batches - 1))
    stored = 0
    for end in [*cuts.tolist(), n]:
        if end - stored == 1:
            index.add_hex(int(ids[stored]), codes[stored].tobytes().hex())
        else:
            index.add(ids[stored:end], codes[stored:end])
        stored = end
        assert len(index) == stored
        assert_matches_brute_force(index, codes[:stored], ids[:stored], queries_for(rng, codes, nbytes, 2), [31])
    assert_matches_brute_force(index, codes, ids, queries_for(rng, codes, nbytes, 4), thresholds)

    keep = np.ones(n, dtype=bool)
    for victim in rng.choice(n, size=min(removals, n), replace=False):
        assert index.remove(int(ids[victim])) == 1
        keep[victim] = False
    assert len(index) == int(keep.sum())
    assert_matches_brute_force(index, codes[keep], ids[keep], queries_for(rng, codes, nbytes, 3), thresholds)


@settings(max_examples=40, deadline=None)
@given(
    bits=st.sampled_from([256, 64]),
    layout=st.integers(1, 5),
    spread=st.floats(0, 1),
    delta_rows=st.sampled_from([1, 1000]),
    seed=st.integers(0, 2**32 - 1),
)
def test_codes_exactly_at_the_pigeonhole_bound_are_found(bits, layout, spread, delta_rows, seed):
    # The worst case for multi-index hashing: with r = s*m + a, a tables differ in s+1 bits and the rest in s.
    # Only a table differing in s bits and probed at radius s finds such a code.
    rng = np.random.default_rng(seed)
    widths = LAYOUTS[bits][layout]
    m = len(widths)
    r = round(spread * m * (min(widths) - 1))
    s, a = divmod(r, m)
    query = rng.integers(0, 256, size=bits // 8, dtype=np.uint8)
    starts = np.cumsum((0, *widths))
    codes = []
    for _ in range(20):
        wider = set(rng.choice(m, size=a, replace=False).tolist())
        flipped = [
            start + rng.choice(width, size=s + (table in wider), replace=False)
            for table, (start, width) in enumerate(zip(starts, widths, strict=False))
        ]
        codes.append(flip(query, np.concatenate(flipped)))
    ids = np.arange(20, dtype=np.int64)
    index = HammingIndex(bits, r, widths=widths, delta_rows=delta_rows)
    index.add(ids, np.array(codes))
    assert index.query(query) == [(i, r) for i in range(20)]
    assert index.query(query, max(r - 1, 0)) == ([] if r else [(i, 0) for i in range(20)])


@pytest.mark.parametrize("clustered", [False, True])
def test_chosen_layout_at_a_realistic_size_equals_brute_force(clustered):
    # 20,000 PDQ codes: big enough that the cost model itself picks tables over a scan.
    rng = np.random.default_rng(7)
    codes = make_codes(rng, 20_000, 32, clustered)
    ids = np.arange(20_000, dtype=np.int64) * 3
    index = HammingIndex(256, 31)
    index.add(ids[:15_000], codes[:15_000])
    for row in range(15_000, 15_500):  # one at a time, as content arrives
        index.add_hex(int(ids[row]), codes[row].tobytes().hex())
    index.add(ids[15_500:], codes[15_500:])
    assert index.describe()["tables"] > 0
    assert_matches_brute_force(index, codes, ids, queries_for(rng, codes, 32, 40), [0, 8, 31, 64])


def test_a_cluster_that_swamps_the_buckets_is_still_answered_exactly():
    rng = np.random.default_rng(3)
    seed = rng.integers(0, 256, size=32, dtype=np.uint8)
    near_copies = np.array([flip(seed, rng.choice(256, size=2, replace=False)) for _ in range(30_000)])
    codes = np.concatenate([near_copies, rng.integers(0, 256, size=(10_000, 32), dtype=np.uint8)])
    ids = np.arange(codes.shape[0], dtype=np.int64)
    index = HammingIndex(256, 31)
    index.add(ids, codes)
    assert_matches_brute_force(index, codes, ids, [seed, flip(seed, np.arange(20))], [4, 31])
    assert len(index.query(seed)) == 30_000


def test_empty_index_finds_nothing():
    index = HammingIndex(256, 31)
    assert len(index) == 0
    assert index.query(bytes(32)) == []
    assert index.query_hex("f" * 64, 256) == []
    assert index.remove(5) == 0


def test_identical_code_is_found_at_distance_zero_and_duplicates_keep_their_own_ids():
    index = HammingIndex(256, 31)
    pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    index.add_hex(42, pdq)
    index.add_hex(7, pdq)
    index.add_hex(9, "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b23")  # last bit flipped
    index.add_hex(1, f"{int(pdq, 16) ^ (2**256 - 1):064x}")  # every bit flipped
    assert index.query_hex(pdq) == [(7, 0), (42, 0), (9, 1)]
    assert index.query_hex(pdq, 0) == [(7, 0), (42, 0)]
    assert index.query_hex(pdq, 256)[-1] == (1, 256)
    assert index.remove(42) == 1
    assert index.query_hex(pdq, 0) == [(7, 0)]


def test_phash_width_and_loading_from_hex_rows():
    rows = [(1, "ffff0000ffff0000"), (2, "ffff0000ffff0001"), (3, "0000ffff0000ffff"), (4, "FFFF0000FFFF00FF")]
    index = HammingIndex.from_hex_rows(rows, bits=64, max_distance=10)
    assert len(index) == 4
    assert index.query_hex("ffff0000ffff0000") == [(1, 0), (2, 1), (4, 8)]
    assert index.query(bytes.fromhex("0000ffff0000ffff"), 0) == [(3, 0)]
    index.add_hex_rows([(5, "ffff0000ffff0003")])
    assert index.query_hex("ffff0000ffff0000", 2) == [(1, 0), (2, 1), (5, 2)]


@pytest.mark.parametrize(
    ("bits", "value"),
    [(256, "ab" * 31), (64, "ab" * 9), (64, "zz" * 8), (64, "ab cd ef 01 23 4")],
)
def test_malformed_hashes_are_refused(bits, value):
    index = HammingIndex(bits, 5)
    with pytest.raises(ValueError, match="hex"):
        index.add_hex(1, value)
    with pytest.raises(ValueError, match="hex"):
        HammingIndex.from_hex_rows([(1, value)], bits=bits, max_distance=5)
    assert len(index) == 0


def test_codes_of_the_wrong_width_are_refused():
    index = HammingIndex(256, 31)
    with pytest.raises(ValueError, match="32-byte"):
        index.query(bytes(8))
    with pytest.raises(ValueError, match="codes"):
        index.add(np.arange(2), np.zeros((2, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="bits"):
        HammingIndex(100, 5)
