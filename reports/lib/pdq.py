"""PDQ, Meta's 256-bit perceptual image hash, in NumPy alone. Django-free.

A re-implementation of the reference C++ (ThreatExchange `pdq/cpp/hashing/pdqhashing.cpp`,
`downscaling.cpp` and `torben.cpp`) as the `pdqhash` 0.2.8 bindings run it, with the same
arithmetic in the same order and the same float types, so that hashes, quality scores and
dihedral hashes are bit-identical to `pdqhash`'s (see `reports/tests/test_pdq.py`). It
needs no compiler: the reason it exists.

API
---
- `compute(image) -> (hex, quality)`: the PDQ hash as 64 lower-case hex digits and the
  quality score, an int from 0 to 100. Same as `pdqhash.compute`.
- `compute_dihedral(image) -> ([8 hex], quality)`: the hashes of the image and of its seven
  rotations and mirrors, in the reference `--pdqdih` order: original, rotate 90, rotate 180,
  rotate 270, flip X, flip Y, flip +1, flip -1. Same as `pdqhash.compute_dihedral`. In
  Pillow's terms: ROTATE_90 (counter-clockwise), ROTATE_180, ROTATE_270, FLIP_TOP_BOTTOM,
  FLIP_LEFT_RIGHT (a mirror), TRANSPOSE, TRANSVERSE: the hash of a picture so transformed is
  close to (for a 64 x 64 grey picture, equal to) the corresponding dihedral hash.
- `hex_to_bits(hex)` / `bits_to_hex(bits)`: between the hex form and `pdqhash`'s bit vector.

`image` is a uint8 array, (height, width, 3) RGB or (height, width) grey (hashed as the RGB
image with R = G = B). Any size: the reference hasher, and `imaging.pdq_input`, first scale
larger pictures to 512 x 512; that is the caller's choice, not done here. An image under 5 px
on a side hashes to all zeros with quality 0, as in the reference.

Hex convention: the reference `Hash256::format()`, which is also ThreatExchange's and
`pdqhash`'s bit vector read left to right: bit 255 (DCT coefficient row 15, column 15) is the
most significant bit of the first digit.

How the arithmetic is kept identical:

- Luma is computed as the `pdqhash` binding does it, in NumPy float64,
  `R*0.299 + G*0.587 + B*0.114`, then rounded to float32. (The reference command-line tool
  computes it in float32 instead, which can differ in the last bit of a pixel's luma.)
- The Jarosz tent filter is two rounds of a box filter along rows, then along columns. The
  reference keeps one float32 running sum per line (add the entering sample, subtract the
  leaving one, divide by the current window length), and its rounding errors carry along the
  line, so a cumulative-sum difference would not reproduce it. Here the running sum steps
  along the line as the reference does, but on all lines at once (one vector operation per
  step), or, for the last pass, as a sequential float32 `np.add.accumulate` of the
  interleaved samples. `x + (-y)` is exactly `x - y` in IEEE arithmetic.
- The 16 x 64 DCT matrix is built from `math.cos` in double and rounded to float32, as the
  reference's static initialiser does; both matrix products accumulate in float32 in the
  reference's order (k = 0..63), not through BLAS, whose summation order differs.
- The median is torben's, which for 256 values is the 128th smallest: `np.partition`.

`pdqhash` builds the C++ with `--std=c++11` and no `-march`, so no multiply-add is fused
into an FMA instruction; a build that fused the DCT's multiply-adds would round differently
and could differ from both in the odd bit.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["MIN_HASHABLE_DIM", "bits_to_hex", "compute", "compute_dihedral", "hex_to_bits"]

MIN_HASHABLE_DIM = 5  # smaller images hash to zeros with quality 0, as in the reference
_SIDE = 64  # the filtered image is decimated to 64 x 64
_DCT_SIDE = 16  # coefficients (1..16) x (1..16) of the 64 x 64 DCT make the 256 bits
_ZERO_HEX = "0" * 64


def _dct_matrix() -> np.ndarray:
    # float matrix_scale_factor = sqrt(2.0 / 64); D[i][j] = (float)(scale * cos(pi/2/64 * (i+1) * (2j+1)))
    scale = float(np.float32(math.sqrt(2.0 / _SIDE)))
    rows = [
        [scale * math.cos((math.pi / 2.0 / _SIDE) * (i + 1) * (2 * j + 1)) for j in range(_SIDE)]
        for i in range(_DCT_SIDE)
    ]
    return np.array(rows, dtype=np.float64).astype(np.float32)


_DCT = _dct_matrix()  # (16, 64)
_DCT_T = np.ascontiguousarray(_DCT.T)  # (64, 16)

# Sign patterns of dct16OriginalTo*: + where the index is odd, - where even; and the checker.
_ODD_PLUS = np.where(np.arange(_DCT_SIDE) % 2 == 1, 1.0, -1.0).astype(np.float32)
_CHECKER = np.where(np.add.outer(np.arange(_DCT_SIDE), np.arange(_DCT_SIDE)) % 2 == 1, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Public API


def compute(image: np.ndarray) -> tuple[str, int]:
    """(PDQ hex, quality 0-100) of a uint8 RGB (h, w, 3) or grey (h, w) array, as
    `pdqhash.compute`. A 64 x 64 image is hashed without the tent filter, as the reference's
    `pdqHash256FromFloatLuma` does (its dihedral function always filters)."""
    luma = _luma(image)
    if min(luma.shape) < MIN_HASHABLE_DIM:
        return _ZERO_HEX, 0
    block = luma if luma.shape == (_SIDE, _SIDE) else _downsample(luma)
    coefficients = _dct64_to_16(block)
    return _hexes(coefficients[None])[0], _quality(block)


def compute_dihedral(image: np.ndarray) -> tuple[list[str], int]:
    """([8 PDQ hexes], quality 0-100) of a uint8 RGB (h, w, 3) or grey (h, w) array, as
    `pdqhash.compute_dihedral`: original, rotate 90, rotate 180, rotate 270, flip X, flip Y,
    flip +1, flip -1 (the reference `--pdqdih` order)."""
    luma = _luma(image)
    if min(luma.shape) < MIN_HASHABLE_DIM:
        return [_ZERO_HEX] * 8, 0
    block = _downsample(luma)
    coefficients = _dct64_to_16(block)
    return _hexes(_dihedral_coefficients(coefficients)), _quality(block)


def hex_to_bits(hex_hash: str) -> np.ndarray:
    """The 256 bits of a hex PDQ hash as `pdqhash` returns them (uint8, bit 255 first)."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(hex_hash), dtype=np.uint8))


def bits_to_hex(bits: np.ndarray) -> str:
    """The hex form of a 256-bit vector in `pdqhash`'s order (bit 255 first)."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


# ---------------------------------------------------------------------------------------------
# Steps of the reference algorithm


def _luma(image: np.ndarray) -> np.ndarray:
    """float32 luma, computed exactly as the `pdqhash` binding does (float64, then rounded)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"PDQ hashes uint8 pixels, not {array.dtype}")
    if array.ndim == 2:
        red = green = blue = array
    elif array.ndim == 3 and array.shape[2] == 3:
        red, green, blue = array[:, :, 0], array[:, :, 1], array[:, :, 2]
    else:
        raise ValueError(f"PDQ hashes (h, w, 3) RGB or (h, w) grey arrays, not shape {array.shape}")
    luma = np.multiply(red, 0.299)  # uint8 * float -> float64, as in the binding
    luma += green * 0.587
    luma += blue * 0.114
    return luma.astype(np.float32)


def _window_size(dimension: int) -> int:
    # computeJaroszFilterWindowSize(oldDimension, 64): half a 1/64 block per pass, rounded up
    return (dimension + 2 * _SIDE - 1) // (2 * _SIDE)


def _centres(dimension: int) -> np.ndarray:
    # decimateFloat samples the centres of 64 equal cells: (int)(((i + 0.5) * n) / 64)
    return np.array([int(((i + 0.5) * dimension) / _SIDE) for i in range(_SIDE)], dtype=np.intp)


@lru_cache(maxsize=128)
def _box_plan(length: int, window: int) -> tuple[int, np.ndarray, np.ndarray]:
    """For box1DFloat over `length` samples: (half window, the divisor of each output as
    float32, and where each output's running sum sits in the interleaved sequence that
    `_box_last_axis` accumulates)."""
    half = (window + 2) // 2  # 7 -> 4, 8 -> 5
    full_end = window + 2 * (length - window)
    counts = np.concatenate(
        [np.arange(half, window + 1), np.full(length - window, window), np.arange(window - 1, window - half, -1)]
    ).astype(np.float32)
    positions = np.concatenate(
        [np.arange(half - 1, window), np.arange(window + 1, full_end, 2), np.arange(full_end, full_end + half - 1)]
    )
    counts.flags.writeable = positions.flags.writeable = False  # shared between calls and threads
    return half, counts, positions


def _running_sums_axis0(lines: np.ndarray, window: int) -> np.ndarray:
    """box1DFloat's float32 running sums (not yet divided) along axis 0, for every column at
    once: each step is one vector add or subtract, in the reference's order."""
    length = lines.shape[0]
    half, _counts, _positions = _box_plan(length, window)
    sums = np.empty_like(lines)
    src, dst = list(lines), list(sums)
    add, subtract = np.add, np.subtract
    total = np.zeros(lines.shape[1], dtype=np.float32)
    for ri in range(half - 1):  # phase 1: accumulate, no output
        add(total, src[ri], total)
    previous, oi = total, 0
    for ri in range(half - 1, window):  # phase 2: add, output with a growing window
        add(previous, src[ri], dst[oi])
        previous, oi = dst[oi], oi + 1
    for li, ri in enumerate(range(window, length)):  # phase 3: add the new, then subtract the old
        current = dst[oi]
        add(previous, src[ri], current)
        subtract(current, src[li], current)
        previous, oi = current, oi + 1
    for li in range(length - window, length - window + half - 1):  # phase 4: subtract, shrinking window
        subtract(previous, src[li], dst[oi])
        previous, oi = dst[oi], oi + 1
    return sums


def _box_axis0(lines: np.ndarray, window: int) -> np.ndarray:
    """box1DFloat along axis 0, transposed: the (columns, length) result is C-contiguous, so
    the next pass, along the other image axis, again runs along axis 0."""
    _half, counts, _positions = _box_plan(lines.shape[0], window)
    sums = _running_sums_axis0(lines, window)
    sums /= counts[:, None]  # float32 sum / (float) current_window_size
    return _transpose(sums)


def _box_last_axis(lines: np.ndarray, window: int, keep: np.ndarray) -> np.ndarray:
    """box1DFloat along the last axis at the output indices `keep` only, as one sequential
    float32 `np.add.accumulate` of the samples interleaved in the reference's order:
    [x0 .. x(w-1), x(w), -x0, x(w+1), -x1, ..., -x(n-w) .. -x(n-w+half-2)]. Cheap when
    there are few lines (the last pass only needs the 64 decimated columns)."""
    rows, length = lines.shape
    half, counts, positions = _box_plan(length, window)
    full_end = window + 2 * (length - window)
    sequence = np.empty((rows, full_end + half - 1), dtype=np.float32)
    sequence[:, :window] = lines[:, :window]
    pairs = sequence[:, window:full_end].reshape(rows, length - window, 2)
    pairs[:, :, 0] = lines[:, window:]
    np.negative(lines[:, : length - window], out=pairs[:, :, 1])
    np.negative(lines[:, length - window : length - window + half - 1], out=sequence[:, full_end:])
    np.add.accumulate(sequence, axis=1, out=sequence)
    return sequence[:, positions[keep]] / counts[keep]


def _transpose(array: np.ndarray, band: int = 16) -> np.ndarray:
    """A C-contiguous transpose copied in bands of rows: faster than
    `np.ascontiguousarray(array.T)`."""
    out = np.empty(array.shape[::-1], dtype=array.dtype)
    view = out.T
    for start in range(0, array.shape[0], band):
        view[start : start + band] = array[start : start + band]
    return out


def _downsample(luma: np.ndarray) -> np.ndarray:
    """jaroszFilterFloat (two rounds of rows then columns) and decimateFloat to 64 x 64."""
    rows, cols = luma.shape
    along_rows, along_cols = _window_size(cols), _window_size(rows)
    keep_rows, keep_cols = _centres(rows), _centres(cols)
    filtered = _box_axis0(_transpose(luma), along_rows)  # round 1, rows: (rows, cols)
    filtered = _box_axis0(filtered, along_cols)  # round 1, columns: (cols, rows)
    _half, counts, _positions = _box_plan(cols, along_rows)
    sums = _running_sums_axis0(filtered, along_rows)  # round 2, rows: only 64 columns are used
    kept = sums[keep_cols] / counts[keep_cols, None]  # (64 columns, rows)
    block = _box_last_axis(kept, along_cols, keep_rows)  # round 2, columns: (64 columns, 64 rows)
    return np.ascontiguousarray(block.T)


def _quality(block: np.ndarray) -> int:
    """pdqImageDomainQualityMetric: significant gradients, (int)((u - v) * 100 / 255) in float."""
    hundred, scale = np.float32(100), np.float32(255)
    vertical = ((block[:-1, :] - block[1:, :]) * hundred / scale).astype(np.int32)
    horizontal = ((block[:, :-1] - block[:, 1:]) * hundred / scale).astype(np.int32)
    gradient_sum = int(np.abs(vertical).sum()) + int(np.abs(horizontal).sum())
    return min(gradient_sum // 90, 100)


def _dct64_to_16(block: np.ndarray) -> np.ndarray:
    """dct64To16: B = D A Dt, each sum accumulated in float32 over k = 0..63 in order."""
    partial = _DCT[:, 0, None] * block[0]  # T = D A, (16, 64)
    for k in range(1, _SIDE):
        partial += _DCT[:, k, None] * block[k]
    result = partial[:, 0, None] * _DCT_T[0]  # B = T Dt, (16, 16)
    for k in range(1, _SIDE):
        result += partial[:, k, None] * _DCT_T[k]
    return result


def _dihedral_coefficients(a: np.ndarray) -> np.ndarray:
    """The eight dct16OriginalTo* transforms (sign flips and transposes), stacked (8, 16, 16)."""
    return np.stack(
        [
            a,  # original
            (a * _ODD_PLUS[None, :]).T,  # rotate 90
            a * _CHECKER,  # rotate 180
            (a * _ODD_PLUS[:, None]).T,  # rotate 270
            a * _ODD_PLUS[:, None],  # flip X
            a * _ODD_PLUS[None, :],  # flip Y
            a.T,  # flip +1
            (a * _CHECKER).T,  # flip -1
        ]
    )


def _hexes(coefficients: np.ndarray) -> list[str]:
    """pdqBuffer16x16ToBits for a stack of (16, 16) buffers: bit k = i*16+j is set when the
    coefficient exceeds torben's median (the 128th smallest of 256), written bit 255 first."""
    flat = coefficients.reshape(len(coefficients), _DCT_SIDE * _DCT_SIDE)
    medians = np.partition(flat, 127, axis=1)[:, 127:128]
    bits = (flat > medians)[:, ::-1]
    return [row.tobytes().hex() for row in np.packbits(bits, axis=1)]
