"""Exact Hamming-radius search over fixed-width binary hashes (PDQ, pHash) by multi-index hashing. Django-free.

`HammingIndex` answers "every stored hash within distance r of this one", exactly: the result is what a brute-force
scan returns, sorted by (distance, id). It is built for millions of hashes held in one worker process, loaded at
start (`from_hex_rows`) and then fed continuously (`add`, `add_hex`).

How it works (Norouzi, Punjani and Fleet, "Fast search in Hamming space with multi-index hashing", CVPR 2012):

* The code is cut into m disjoint substrings of w bits (a few trailing bits may be left out of every substring; they
  still count in the final distance). If two codes are within distance r, then by pigeonhole some substring is within
  floor(r / m) of the query's. Tighter, with r = s*m + a: some substring among the first a+1 is within s, or one of
  the others is within s-1 (otherwise the distance would be at least (a+1)(s+1) + (m-a-1)s = r+1). So the first a+1
  tables are probed with every key within s of the query's substring, the rest within s-1.
* Each table is direct-addressed, CSR style: `offsets[key]..offsets[key+1]` delimits the rows whose substring is
  `key` in one `postings` array of row numbers. All tables share one offsets array and one postings array, so a
  query is a handful of vectorised gathers, whatever m is: probe keys = query substring XOR precomputed flip masks.
* Candidates are verified with an exact popcount of the full code (rows are 32 contiguous bytes for PDQ, one cache
  line), kept if within r, then de-duplicated (a near match is found through several tables).
* New hashes go to a small unsorted *delta*, searched by brute force, and are merged into the tables when it grows:
  inserted in place while the table layout still suits the size, rebuilt when the size has doubled and a different
  layout would be better (so loading a million hashes one by one costs O(n log n), not O(n^2)).
* The layout (m, w) is chosen per size by a cost model: w close to log2(n) (Norouzi's rule), bounded so the offsets
  never take more memory than the postings. Each query re-derives its probe radii from its own r, and falls back to a
  brute-force scan when probing would cost more (large r, small n, or buckets swamped by one cluster of near-copies).

Not safe for concurrent writers or for a write concurrent with queries from another thread: guard it with a lock
if a worker shares one index between threads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import combinations

import numpy as np

PDQ_BITS = 256
PHASH_BITS = 64
# ThreatExchange's "confident match" distance for PDQ; about 10 is usual for 64-bit pHash.
PDQ_MATCH_DISTANCE = 31
PHASH_MATCH_DISTANCE = 10

# Cost model, seconds per unit, measured with numpy 2.4 on the 2-core reference machine (one core).
# Only ratios matter: they pick the table layout and decide, per query, between probing and scanning.
_COST_SCAN_ROW_WORD = 1.5e-9  # brute force: one 64-bit word of one row (xor + popcount + compare)
_COST_PROBE = 12e-9  # one probed key: two gathers from the offsets array and the range expansion
_COST_CANDIDATE = 12e-9  # one candidate row: postings gather, row gather, popcount
_COST_CANDIDATE_WORD = 2e-9  # ...plus this per 64-bit word of the code
_COST_QUERY_FIXED = 40e-6  # per query overhead of the probing path (numpy call overhead)

_MAX_WIDTH = 24  # 2**24 buckets of 4 bytes: 64 MiB per table at most
_MIN_WIDTH = 4
_MAX_PROBES = 1 << 21  # flip masks per query; bigger probe sets always lose to a scan
_SCAN_CHUNK_ROWS = 4096  # brute-force scan chunk: stays in L2, temporaries reused
_DELTA_MIN = 1024
_DELTA_MAX = 8192
_LOAD_CHUNK_ROWS = 1 << 20


@cache
def _flip_masks(width: int, radius: int) -> np.ndarray:
    """Every w-bit value with popcount <= radius: XORed with a key, every key within that radius."""
    if _ball_size(width, radius) <= 4096:
        chosen = (bits for k in range(radius + 1) for bits in combinations(range(width), k))
        out = np.array([sum(1 << bit for bit in bits) for bits in chosen], dtype=np.int64)
    else:
        values = np.arange(1 << width, dtype=np.int64)
        out = values[np.bitwise_count(values) <= radius]
    out.flags.writeable = False
    return out


@cache
def _ball_size(width: int, radius: int) -> int:
    return sum(math.comb(width, k) for k in range(radius + 1)) if radius >= 0 else 0


@dataclass(frozen=True)
class _Layout:
    """Which bits each table keys on: `widths[t]` bits from bit sum(widths[:t]) (bit 0 = the most significant)."""

    bits: int
    widths: tuple[int, ...]

    @property
    def starts(self) -> tuple[int, ...]:
        return tuple(sum(self.widths[:t]) for t in range(len(self.widths)))

    def radii(self, r: int) -> list[int]:
        s, a = divmod(r, len(self.widths))
        return [s if t <= a else s - 1 for t in range(len(self.widths))]

    @cache  # noqa: B019 - a handful of layouts per process, each with a few radii
    def probes(self, r: int) -> tuple[int, float]:
        """(probed keys, expected candidates per stored row if codes were uniform) at query radius r."""
        keys = 0
        density = 0.0
        for w, rad in zip(self.widths, self.radii(r), strict=True):
            ball = _ball_size(w, rad)
            keys += ball
            density += ball / (1 << w)
        return keys, density


def _scan_cost(n: int, words: int) -> float:
    return n * words * _COST_SCAN_ROW_WORD


def _candidate_cost(words: int) -> float:
    return _COST_CANDIDATE + words * _COST_CANDIDATE_WORD


def _probe_cost(layout: _Layout, n: int, r: int, words: int) -> float:
    keys, density = layout.probes(r)
    if keys > _MAX_PROBES:
        return math.inf
    return _COST_QUERY_FIXED + keys * _COST_PROBE + density * n * _candidate_cost(words)


def _plan_layout(bits: int, n: int, r: int) -> _Layout | None:
    """The cheapest table layout for n uniform codes queried at radius r, or None when a plain scan is cheaper."""
    words = -(-bits // 64)
    # Norouzi's rule, w ~ log2(n); with the memory bound below it keeps the offsets no bigger than the postings.
    max_width = min(_MAX_WIDTH, max(_MIN_WIDTH, math.ceil(math.log2(max(n, 2)))))
    best: tuple[float, _Layout] | None = None
    for m in range(1, bits // _MIN_WIDTH + 1):
        # Every bit covered, widths as even as possible; or equal widths, leaving the last few bits out.
        q, spare = divmod(bits, m)
        layouts = [_Layout(bits, (w,) * m) for w in range(_MIN_WIDTH, min(max_width, q) + 1)]
        if spare and q + 1 <= max_width:
            layouts.append(_Layout(bits, (q + 1,) * spare + (q,) * (m - spare)))
        for layout in layouts:
            offsets_bytes = sum(4 * ((1 << w) + 1) for w in layout.widths)
            if offsets_bytes > max(4 * n * m, 1 << 20):
                continue  # more memory in (mostly empty) buckets than in postings
            cost = _probe_cost(layout, n, r, words)
            if best is None or cost < best[0]:
                best = (cost, layout)
    if best is None or best[0] >= _scan_cost(n, words):
        return None
    return best[1]


@dataclass
class _ProbeGroup:
    """Tables of one width probed at one radius: substring shifts, their bases in `offsets`, the flip masks."""

    shifts: list[int]
    mask: int
    bases: np.ndarray  # (tables, 1) int64
    flips: np.ndarray  # (keys,) int64


class _Tables:
    """The multi-index tables over rows 0..n-1 of the main store."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.n = 0
        bases = [0]
        for w in layout.widths:
            bases.append(bases[-1] + (1 << w) + 1)
        self.bases = bases  # table t's buckets are offsets[bases[t] : bases[t + 1]]
        self.offsets = np.zeros(bases[-1], dtype=np.uint32)
        self.postings = np.zeros(0, dtype=np.uint32)
        self._groups: dict[int, list[_ProbeGroup]] = {}

    def nbytes(self) -> int:
        return self.offsets.nbytes + self.postings.nbytes

    def _offset_dtype(self, rows: int) -> type[np.unsignedinteger]:
        return np.uint32 if rows * len(self.layout.widths) < (1 << 32) else np.uint64

    def build(self, be_words: np.ndarray) -> None:
        """Index rows 0..n-1 from scratch; `be_words` is the (n, words) big-endian view of the codes."""
        n = be_words.shape[0]
        m = len(self.layout.widths)
        offsets = np.empty(self.bases[-1], dtype=self._offset_dtype(n))
        postings = np.empty(m * n, dtype=np.uint32)
        rows = np.arange(n, dtype=np.uint64)
        for t, (start, w) in enumerate(zip(self.layout.starts, self.layout.widths, strict=True)):
            # Sort (key, row) pairs packed in one uint64: much faster than a stable argsort of the keys.
            packed = _substrings(be_words, start, w) << np.uint64(32)
            packed |= rows
            packed.sort()
            postings[t * n : (t + 1) * n] = packed.astype(np.uint32)
            counts = np.bincount((packed >> np.uint64(32)).astype(np.intp), minlength=1 << w)
            region = offsets[self.bases[t] : self.bases[t + 1]]
            region[0] = 0
            np.cumsum(counts, out=region[1:])
            region += t * n
        self.offsets, self.postings, self.n = offsets, postings, n

    def insert(self, be_words: np.ndarray) -> None:
        """Append rows n..n+k-1 (`be_words` holds just those k rows), keeping every bucket's rows in order."""
        k = be_words.shape[0]
        n = self.n
        offsets = self.offsets.astype(self._offset_dtype(n + k), copy=False)
        rows = np.arange(n, n + k, dtype=np.uint64)
        where = []
        values = []
        for t, (start, w) in enumerate(zip(self.layout.starts, self.layout.widths, strict=True)):
            packed = _substrings(be_words, start, w) << np.uint64(32)
            packed |= rows
            packed.sort()
            keys = (packed >> np.uint64(32)).astype(np.intp)
            region = offsets[self.bases[t] : self.bases[t + 1]]
            where.append(region[keys + 1].astype(np.int64))  # end of each key's bucket, before the update
            values.append(packed.astype(np.uint32))
            # Bucket j now starts after the new rows whose key is < j, and after the k new rows of each earlier table.
            bounds = np.concatenate(([0], keys + 1, [region.shape[0]]))
            region += np.repeat(np.arange(t * k, (t + 1) * k + 1, dtype=region.dtype), np.diff(bounds))
        # Splice the new rows in at the ends of their buckets (sorted positions): one copy of the postings.
        pieces = np.split(self.postings, np.concatenate(where))
        inserted = np.concatenate(values)
        spliced: list[np.ndarray] = [pieces[0]]
        for i in range(inserted.shape[0]):
            spliced += (inserted[i : i + 1], pieces[i + 1])
        self.postings = np.concatenate(spliced)
        self.offsets = offsets
        self.n = n + k

    def groups(self, r: int) -> list[_ProbeGroup]:
        cached = self._groups.get(r)
        if cached is not None:
            return cached
        by_key: dict[tuple[int, int], list[int]] = {}
        for t, (w, rad) in enumerate(zip(self.layout.widths, self.layout.radii(r), strict=True)):
            if rad >= 0:
                by_key.setdefault((w, rad), []).append(t)
        starts = self.layout.starts
        groups = [
            _ProbeGroup(
                shifts=[self.layout.bits - starts[t] - w for t in tables],
                mask=(1 << w) - 1,
                bases=np.array([self.bases[t] for t in tables], dtype=np.int64)[:, None],
                flips=_flip_masks(w, rad),
            )
            for (w, rad), tables in by_key.items()
        ]
        self._groups[r] = groups
        return groups

    def candidates(self, query: int, r: int, give_up_above: int | None) -> np.ndarray | None:
        """Rows sharing a probed key with the query (with repeats), or None if there are more than give_up_above."""
        parts = []
        for group in self.groups(r):
            subs = np.array([(query >> shift) & group.mask for shift in group.shifts], dtype=np.int64)
            parts.append(((subs[:, None] ^ group.flips) + group.bases).ravel())
        keys = parts[0] if len(parts) == 1 else np.concatenate(parts)
        starts = self.offsets[keys].astype(np.intp)
        lengths = self.offsets[keys + 1].astype(np.intp) - starts
        ends = np.cumsum(lengths)
        total = int(ends[-1])
        if give_up_above is not None and total > give_up_above:
            return None
        # Concatenate the ranges [start, start + length) of postings: position i of the output belongs to range j
        # and reads postings[starts[j] + i - (ends[j] - lengths[j])].
        return self.postings[np.repeat(starts - (ends - lengths), lengths) + np.arange(total)]


def _substrings(be_words: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits [start, start+width) of each row, as uint64; `be_words` is (n, words) of big-endian uint64."""
    word, offset = divmod(start, 64)
    mask = np.uint64((1 << width) - 1)
    if offset + width <= 64:
        return (be_words[:, word].astype(np.uint64) >> np.uint64(64 - offset - width)) & mask
    low_bits = offset + width - 64
    high = be_words[:, word].astype(np.uint64) << np.uint64(low_bits)
    return (high | (be_words[:, word + 1].astype(np.uint64) >> np.uint64(64 - low_bits))) & mask


def _row_sums(counts: np.ndarray, words: int) -> np.ndarray:
    """Per-row sums of a flat array of per-word popcounts (uint8, `words` per row), as uint16."""
    if words == 1:
        return counts.astype(np.uint16)
    per_row = counts.reshape(-1, words)
    total = per_row[:, 0].astype(np.uint16)
    for column in range(1, words):
        total += per_row[:, column]
    return total


def _scan(codes: np.ndarray, query: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force over (n, words) uint64 rows: (rows within r, their distances)."""
    n, words = codes.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    flat = codes.reshape(-1)
    chunk = min(n, _SCAN_CHUNK_ROWS)
    # XOR against the query tiled to the chunk: a flat, contiguous op, unlike broadcasting over a tiny inner axis.
    tiled = np.tile(query, chunk)
    xored = np.empty(chunk * words, dtype=np.uint64)
    counts = np.empty(chunk * words, dtype=np.uint8)
    found_rows = []
    found_dist = []
    for begin in range(0, n, chunk):
        size = min(chunk, n - begin) * words
        np.bitwise_xor(flat[begin * words : begin * words + size], tiled[:size], out=xored[:size])
        distance = _row_sums(np.bitwise_count(xored[:size], out=counts[:size]), words)
        hits = np.flatnonzero(distance <= r)
        if hits.size:
            found_rows.append(hits + begin)
            found_dist.append(distance[hits].astype(np.int64))
    if not found_rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(found_rows), np.concatenate(found_dist)


def _verify(codes: np.ndarray, rows: np.ndarray, query: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances of candidate rows (repeats allowed): (distinct rows within r, their distances)."""
    gathered = np.take(codes, rows, axis=0)
    distance = np.bitwise_count(gathered[:, 0] ^ query[0]).astype(np.uint16)
    for word in range(1, codes.shape[1]):
        distance += np.bitwise_count(gathered[:, word] ^ query[word])
    hits = np.flatnonzero(distance <= r)
    found = rows[hits].astype(np.int64)
    dist = distance[hits].astype(np.int64)
    if found.size > 1:
        found, first = np.unique(found, return_index=True)
        dist = dist[first]
    return found, dist


class HammingIndex:
    """Exact search for stored hashes within a Hamming distance; int64 ids, any width that is a multiple of 8 bits.

    >>> index = HammingIndex(bits=64, max_distance=10)
    >>> index.add_hex(7, "ffff0000ffff0000")
    >>> index.query_hex("ffff0000ffff0001")
    [(7, 1)]

    Ids are not checked for uniqueness: adding the same id twice stores two entries.

    `max_distance` is the default query radius and the one the table layout is tuned for; any radius can be asked.
    Two knobs exist for tests and tuning, not for production: `widths` fixes the substring widths (and then every
    query probes the tables unless its probe set is unbounded), `delta_rows` fixes how many additions wait in the
    brute-force delta before a merge.
    """

    def __init__(
        self, bits: int, max_distance: int, *, widths: Sequence[int] | None = None, delta_rows: int | None = None
    ) -> None:
        if bits <= 0 or bits % 8:
            raise ValueError("bits must be a positive multiple of 8")
        if not 0 <= max_distance <= bits:
            raise ValueError(f"max_distance must be between 0 and {bits}")
        if widths is not None:
            widths = tuple(int(w) for w in widths)
            if not widths or sum(widths) > bits or not all(1 <= w <= _MAX_WIDTH for w in widths):
                raise ValueError(f"widths must be 1..{_MAX_WIDTH} bits each and cover at most {bits} bits")
        if delta_rows is not None and delta_rows < 1:
            raise ValueError("delta_rows must be positive")
        self._fixed_layout = _Layout(bits, widths) if widths is not None else None
        self._fixed_delta_rows = delta_rows
        self.bits = bits
        self.max_distance = max_distance
        self.nbytes_per_code = bits // 8
        self._words = -(-bits // 64)
        # Main store: rows 0..n-1; capacity grows by 1/8 so appends stay amortised without doubling memory.
        self._codes = np.zeros((0, self._words), dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int64)
        self._n = 0
        self._tables: _Tables | None = None
        self._planned_at = 0  # size when the table layout was last chosen
        self._dead: np.ndarray | None = None  # rows removed since the last rebuild
        self._n_dead = 0
        # Delta: recent additions, scanned by brute force until merged.
        self._delta_codes = np.zeros((_DELTA_MIN, self._words), dtype=np.uint64)
        self._delta_ids = np.zeros(_DELTA_MIN, dtype=np.int64)
        self._delta_n = 0

    # ----- loading and adding -----

    @classmethod
    def from_hex_rows(
        cls, rows: Iterable[tuple[int, str]], *, bits: int = PDQ_BITS, max_distance: int = PDQ_MATCH_DISTANCE
    ) -> HammingIndex:
        """Build from (id, hex) rows, e.g. a values_list() over stored PDQ hashes, in one pass and one table build."""
        index = cls(bits, max_distance)
        for ids, codes in index._parse_hex_chunks(rows):
            index._append_main(ids, index._to_words(codes))
        index._rebuild()
        return index

    def add_hex_rows(self, rows: Iterable[tuple[int, str]]) -> None:
        """Add (id, hex) rows in bulk: much cheaper per row than `add_hex` when catching up on many."""
        for ids, codes in self._parse_hex_chunks(rows):
            self.add(ids, codes)

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Add n hashes: ids (n,) int64 and codes (n, bits // 8) uint8, each row the hash's bytes in hex order."""
        ids = np.asarray(ids)
        codes = np.asarray(codes)
        if ids.ndim != 1 or codes.shape != (ids.shape[0], self.nbytes_per_code):
            raise ValueError(f"expected ids (n,) and codes (n, {self.nbytes_per_code}) uint8")
        if codes.dtype != np.uint8 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError("expected integer ids and uint8 codes")
        if ids.shape[0] == 0:
            return
        words = self._to_words(codes)
        ids = ids.astype(np.int64, copy=False)
        if ids.shape[0] >= self._delta_limit():
            # A bulk add goes straight to the tables instead of through the brute-force delta.
            self._merge_delta()
            self._append_main(ids, words)
            self._index_new_rows(self._n - ids.shape[0])
            return
        self._append_delta(ids, words)
        if self._delta_n >= self._delta_limit():
            self._merge_delta()

    def add_hex(self, id: int, hex: str) -> None:
        self.add(np.array([id], dtype=np.int64), self._parse_hex(hex)[None, :])

    def remove(self, id: int) -> int:
        """Forget every entry with this id; returns how many there were. O(n): for takedowns, not bulk deletes."""
        removed = 0
        if self._delta_n:
            keep = self._delta_ids[: self._delta_n] != id
            kept = int(keep.sum())
            if kept < self._delta_n:
                removed += self._delta_n - kept
                self._delta_codes[:kept] = self._delta_codes[: self._delta_n][keep]
                self._delta_ids[:kept] = self._delta_ids[: self._delta_n][keep]
                self._delta_n = kept
        rows = np.flatnonzero(self._ids[: self._n] == id)
        if rows.size:
            if self._dead is None:
                self._dead = np.zeros(self._codes.shape[0], dtype=bool)
            rows = rows[~self._dead[rows]]
            self._dead[rows] = True
            self._n_dead += rows.size
            removed += rows.size
            if self._n_dead * 4 > self._n:
                self._rebuild()
        return removed

    def __len__(self) -> int:
        return self._n - self._n_dead + self._delta_n

    def memory_bytes(self) -> int:
        """Bytes held in this index's arrays (codes, ids, tables, delta), spare capacity included."""
        total = self._codes.nbytes + self._ids.nbytes + self._delta_codes.nbytes + self._delta_ids.nbytes
        if self._tables is not None:
            total += self._tables.nbytes()
        if self._dead is not None:
            total += self._dead.nbytes
        return total

    def describe(self) -> dict[str, object]:
        """Size and table layout, for logs and benchmarks."""
        widths = list(self._tables.layout.widths) if self._tables is not None else []
        return {
            "bits": self.bits,
            "max_distance": self.max_distance,
            "size": len(self),
            "delta": self._delta_n,
            "tables": len(widths),
            "widths": widths,
            "memory_bytes": self.memory_bytes(),
        }

    # ----- querying -----

    def query(self, code: bytes | np.ndarray, max_distance: int | None = None) -> list[tuple[int, int]]:
        """Every (id, distance) with distance <= max_distance (default: the index's), sorted by (distance, id)."""
        r = self.max_distance if max_distance is None else int(max_distance)
        if r < 0:
            raise ValueError("max_distance must not be negative")
        r = min(r, self.bits)
        raw = self._query_bytes(code)
        query_words = self._to_words(np.frombuffer(raw, dtype=np.uint8)[None, :])[0]

        rows, dist = self._search_main(raw, query_words, r)
        ids = self._ids[rows]
        if self._delta_n:
            delta_rows, delta_dist = _scan(self._delta_codes[: self._delta_n], query_words, r)
            if delta_rows.size:
                ids = np.concatenate([ids, self._delta_ids[delta_rows]])
                dist = np.concatenate([dist, delta_dist])
        if ids.size > 1:
            order = np.lexsort((ids, dist))
            ids, dist = ids[order], dist[order]
        return list(zip(ids.tolist(), dist.tolist(), strict=True))

    def query_hex(self, hex: str, max_distance: int | None = None) -> list[tuple[int, int]]:
        return self.query(self._parse_hex(hex).tobytes(), max_distance)

    def _search_main(self, raw: bytes, query_words: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        n = self._n
        codes = self._codes[:n]
        rows: np.ndarray | None = None
        tables = self._tables
        scan_cost = _scan_cost(n, self._words)
        probe_cost = math.inf if tables is None else _probe_cost(tables.layout, n, r, self._words)
        if tables is not None and (probe_cost < scan_cost or (self._fixed_layout and probe_cost < math.inf)):
            # Give up on probing if the buckets turn out fuller than a scan is dear (a big cluster of near-copies).
            give_up_above = None if self._fixed_layout else int(scan_cost / _candidate_cost(self._words))
            candidates = tables.candidates(int.from_bytes(raw, "big"), r, give_up_above)
            if candidates is not None:
                rows, dist = _verify(codes, candidates, query_words, r)
        if rows is None:
            rows, dist = _scan(codes, query_words, r)
        if self._dead is not None and self._n_dead and rows.size:
            alive = ~self._dead[rows]
            rows, dist = rows[alive], dist[alive]
        return rows, dist

    # ----- internals -----

    def _delta_limit(self) -> int:
        # Big enough that merges (O(n) each) stay rare, small enough that scanning it stays cheap next to probing.
        if self._fixed_delta_rows is not None:
            return self._fixed_delta_rows
        return max(_DELTA_MIN, min(_DELTA_MAX, self._n // 1024))

    def _parse_hex(self, hex: str) -> np.ndarray:
        if len(hex) != 2 * self.nbytes_per_code:
            raise ValueError(f"expected {2 * self.nbytes_per_code} hex digits, got {len(hex)}")
        try:
            raw = bytes.fromhex(hex)
        except ValueError:
            raise ValueError("not a hexadecimal hash") from None
        if len(raw) != self.nbytes_per_code:  # fromhex skips whitespace
            raise ValueError("not a hexadecimal hash")
        return np.frombuffer(raw, dtype=np.uint8)

    def _parse_hex_chunks(self, rows: Iterable[tuple[int, str]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        width = 2 * self.nbytes_per_code
        ids: list[int] = []
        hexes: list[str] = []
        for row_id, value in rows:
            if len(value) != width:
                raise ValueError(f"hash for id {row_id}: expected {width} hex digits, got {len(value)}")
            ids.append(row_id)
            hexes.append(value)
            if len(ids) == _LOAD_CHUNK_ROWS:
                yield self._decode_chunk(ids, hexes)
                ids, hexes = [], []
        if ids:
            yield self._decode_chunk(ids, hexes)

    def _decode_chunk(self, ids: list[int], hexes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        try:
            raw = bytes.fromhex("".join(hexes))
        except ValueError:
            raise ValueError("a hash is not hexadecimal") from None
        if len(raw) != len(hexes) * self.nbytes_per_code:  # fromhex skips whitespace
            raise ValueError("a hash is not hexadecimal")
        codes = np.frombuffer(raw, dtype=np.uint8).reshape(len(hexes), self.nbytes_per_code)
        return np.array(ids, dtype=np.int64), codes

    def _query_bytes(self, code: bytes | np.ndarray) -> bytes:
        if isinstance(code, np.ndarray) and code.dtype != np.uint8:
            raise ValueError("expected a uint8 array")
        raw = code.tobytes() if isinstance(code, np.ndarray) else bytes(code)
        if len(raw) != self.nbytes_per_code:
            raise ValueError(f"expected a {self.nbytes_per_code}-byte code, got {len(raw)} bytes")
        return raw

    def _to_words(self, codes: np.ndarray) -> np.ndarray:
        """(n, bits // 8) uint8 -> (n, words) uint64 holding the same bytes (zero-padded to whole words)."""
        padded_bytes = self._words * 8
        if codes.shape[1] != padded_bytes:
            padded = np.zeros((codes.shape[0], padded_bytes), dtype=np.uint8)
            padded[:, : codes.shape[1]] = codes
            codes = padded
        return np.ascontiguousarray(codes).view(np.uint64).reshape(codes.shape[0], self._words)

    def _big_endian(self, begin: int, end: int) -> np.ndarray:
        """Rows begin..end-1 of the main store as big-endian words, so bit 0 is the first hex digit's top bit."""
        return self._codes[begin:end].view(np.uint8).view(">u8")

    def _append_main(self, ids: np.ndarray, words: np.ndarray) -> None:
        k = ids.shape[0]
        needed = self._n + k
        if needed > self._codes.shape[0]:
            capacity = max(needed, self._codes.shape[0] + self._codes.shape[0] // 8)
            codes = np.zeros((capacity, self._words), dtype=np.uint64)
            codes[: self._n] = self._codes[: self._n]
            new_ids = np.zeros(capacity, dtype=np.int64)
            new_ids[: self._n] = self._ids[: self._n]
            self._codes, self._ids = codes, new_ids
            if self._dead is not None:
                dead = np.zeros(capacity, dtype=bool)
                dead[: self._n] = self._dead[: self._n]
                self._dead = dead
        self._codes[self._n : needed] = words
        self._ids[self._n : needed] = ids
        self._n = needed

    def _append_delta(self, ids: np.ndarray, words: np.ndarray) -> None:
        k = ids.shape[0]
        needed = self._delta_n + k
        if needed > self._delta_codes.shape[0]:
            capacity = max(needed, 2 * self._delta_codes.shape[0])
            codes = np.zeros((capacity, self._words), dtype=np.uint64)
            codes[: self._delta_n] = self._delta_codes[: self._delta_n]
            new_ids = np.zeros(capacity, dtype=np.int64)
            new_ids[: self._delta_n] = self._delta_ids[: self._delta_n]
            self._delta_codes, self._delta_ids = codes, new_ids
        self._delta_codes[self._delta_n : needed] = words
        self._delta_ids[self._delta_n : needed] = ids
        self._delta_n = needed

    def _merge_delta(self) -> None:
        if not self._delta_n:
            return
        first_new = self._n
        self._append_main(self._delta_ids[: self._delta_n], self._delta_codes[: self._delta_n])
        self._delta_n = 0
        if self._delta_codes.shape[0] > _DELTA_MAX:
            self._delta_codes = np.zeros((_DELTA_MIN, self._words), dtype=np.uint64)
            self._delta_ids = np.zeros(_DELTA_MIN, dtype=np.int64)
        self._index_new_rows(first_new)

    def _index_new_rows(self, first_new: int) -> None:
        """Bring the tables up to date with main rows first_new..n-1: insert them, or rebuild if that is better."""
        n = self._n
        tables = self._tables
        if self._n_dead * 4 > n or (tables is None and n >= 2 * self._planned_at):
            self._rebuild()
        elif tables is not None and n >= 2 * self._planned_at and self._fixed_layout is None:
            # Re-plan at each doubling; rebuild only if the best layout for the new size differs.
            self._planned_at = n
            if _plan_layout(self.bits, n, self.max_distance) != tables.layout:
                self._rebuild()
            else:
                tables.insert(self._big_endian(first_new, n))
        elif tables is not None:
            tables.insert(self._big_endian(first_new, n))

    def _rebuild(self) -> None:
        """Drop removed rows, choose the layout for the current size, and build the tables from scratch."""
        if self._dead is not None and self._n_dead:
            alive = np.flatnonzero(~self._dead[: self._n])
            self._codes = self._codes[alive]
            self._ids = self._ids[alive]
            self._n = alive.size
            self._dead = None
            self._n_dead = 0
        self._planned_at = self._n
        layout = self._fixed_layout or _plan_layout(self.bits, self._n, self.max_distance)
        if layout is None:
            self._tables = None
            return
        tables = _Tables(layout)
        tables.build(self._big_endian(0, self._n))
        self._tables = tables
