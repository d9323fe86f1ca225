"""In-memory hashing cost: milliseconds per image for `digest_image`, previews and blur.

    .venv/bin/python benchmarks/hashing.py [--n 200] [--images 20]

Inputs are generated 1024 x 768 JPEGs (quality 85): gradients with random shapes and a fine
grain, so the entropy decoder has real work. Paths, each timed over the same images:

- `digest_draft_ms`: `digest_image` as the pipeline runs it (JPEG decoded at 1/2 scale).
- `digest_full_ms`: the baseline, the same hashes from a full-size decode (pre-scaled to
  512 px for PDQ as the reference hasher does).
- `decode_draft_ms` / `decode_full_ms`: the decode alone, to show where the difference is.
- `preview_ms`, `blur_ms`, `preview_and_blur_ms`: the 512 px JPEG rendition and its blur.
- `encrypt_ms`: Fernet encryption of the preview.
- `provenance_ms`: `read_provenance` on the same JPEGs (no metadata: the cost floor).
- `pdq_numpy_ms`: `reports.lib.pdq.compute_dihedral` (pure NumPy) on the 512 x 512 arrays PDQ
  hashes after a full decode; `pdq_numpy_pipeline_ms` on the 512 x 384 arrays of the
  pipeline's reduced-scale decode. `pdq_pdqhash_ms` / `pdq_pdqhash_pipeline_ms`: the same with
  the compiled `pdqhash` bindings, `pdq_numpy_vs_pdqhash` the ratio of the 512 x 512 times and
  `pdq_identical_to_pdqhash` whether every hash, quality and dihedral hash agreed; all null
  where `pdqhash` is not installed (it is not a requirement: it needs g++ to build). When it
  is, the two are timed alternately, call by call, so that a busy machine slows both alike.

Times are medians over `--n` calls; the process is single-threaded. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import time
from collections.abc import Callable

import _bench  # noqa: F401 - first: imports come from the repository (see _bench)
import imagehash
import numpy as np
from cryptography.fernet import Fernet
from PIL import Image, ImageDraw

from reports.lib import imaging, pdq, provenance

try:
    import pdqhash
except ImportError:  # optional: only to compare against
    pdqhash = None


def generated_jpeg(seed: int, width: int = 1024, height: int = 768) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    image = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = [x0, y0, x0 + int(rng.integers(40, width // 2)), y0 + int(rng.integers(40, height // 2))]
        draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    grain = rng.integers(-10, 11, (height, width, 3))
    image = Image.fromarray(np.clip(np.asarray(image, int) + grain, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def digest_full(data: bytes) -> imaging.ImageDigest:
    """The baseline: the same digest from a full-size decode."""
    image = imaging.decode_image(data, draft_long_side=None)
    pdq_hex, quality, dihedral = imaging.pdq_hashes(image)
    return imaging.ImageDigest(
        **imaging.byte_hashes(data),
        pdq=pdq_hex,
        pdq_quality=quality,
        pdq_dihedral=dihedral,
        phash=str(imagehash.phash(image)),
        width=image.width,
        height=image.height,
        media_type="image/jpeg",
    )


def pdqhash_dihedral(array: np.ndarray) -> tuple[list[str], int]:
    """pdqhash's dihedral hashes in the hex form `pdq.compute_dihedral` returns."""
    vectors, quality = pdqhash.compute_dihedral(array)
    return [pdq.bits_to_hex(vector) for vector in vectors], int(quality)


def paired_median_ms(
    first: Callable[[int], object], second: Callable[[int], object], n: int, warmup: int = 10
) -> tuple[float, float]:
    """Medians like `median_ms` for two functions called alternately."""
    for i in range(warmup):
        first(i)
        second(i)
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(n):
        for function, times in zip((first, second), samples, strict=True):
            start = time.perf_counter()
            function(i)
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples[0]), 2), round(statistics.median(samples[1]), 2)


def pdq_ms(arrays: list[np.ndarray], n: int) -> tuple[float, float | None]:
    """(NumPy PDQ ms, pdqhash ms or None) for the dihedral hashes of `arrays`, cycled."""

    def numpy_pdq(i: int) -> object:
        return pdq.compute_dihedral(arrays[i % len(arrays)])

    def compiled_pdq(i: int) -> object:
        return pdqhash.compute_dihedral(arrays[i % len(arrays)])

    if pdqhash is None:
        return median_ms(numpy_pdq, n), None
    return paired_median_ms(numpy_pdq, compiled_pdq, n)


def median_ms(function: Callable[[int], object], n: int, warmup: int = 10) -> float:
    for i in range(warmup):
        function(i)
    samples = []
    for i in range(n):
        start = time.perf_counter()
        function(i)
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="timed calls per path (default 200)")
    parser.add_argument("--images", type=int, default=20, help="distinct generated JPEGs cycled through (default 20)")
    args = parser.parse_args(argv)

    jpegs = [generated_jpeg(seed) for seed in range(args.images)]
    images = [imaging.digest_image(data)[1] for data in jpegs]
    previews = [imaging.make_preview(image) for image in images]
    key = [Fernet.generate_key().decode()]
    distances = [
        imaging.hex_distance(imaging.digest_image(data)[0].pdq, digest_full(data).pdq) for data in jpegs
    ]  # fmt: skip

    def pick(items: list) -> Callable[[int], object]:
        return lambda i: items[i % len(items)]

    pdq_full = [imaging.pdq_input(imaging.decode_image(d, draft_long_side=None)) for d in jpegs]  # 512 x 512
    pdq_pipeline = [imaging.pdq_input(image) for image in images]  # 512 x 384

    data, image, preview = pick(jpegs), pick(images), pick(previews)
    n = args.n
    pdq_numpy_ms, pdq_pdqhash_ms = pdq_ms(pdq_full, n)
    pdq_numpy_pipeline_ms, pdq_pdqhash_pipeline_ms = pdq_ms(pdq_pipeline, n)
    result = {
        "benchmark": "hashing",
        "image": "generated JPEG 1024x768 q85",
        "n": n,
        "digest_draft_ms": median_ms(lambda i: imaging.digest_image(data(i)), n),
        "digest_full_ms": median_ms(lambda i: digest_full(data(i)), n),
        "decode_draft_ms": median_ms(lambda i: imaging.decode_image(data(i)), n),
        "decode_full_ms": median_ms(lambda i: imaging.decode_image(data(i), draft_long_side=None), n),
        "preview_ms": median_ms(lambda i: imaging.make_preview(image(i)), n),
        "blur_ms": median_ms(lambda i: imaging.blur_preview(preview(i)), n),
        "preview_and_blur_ms": median_ms(lambda i: imaging.blur_preview(imaging.make_preview(image(i))), n),
        "encrypt_ms": median_ms(lambda i: imaging.encrypt_preview(preview(i), key), n),
        "provenance_ms": median_ms(lambda i: provenance.read_provenance(data(i), image(i)), n),
        "pdq_numpy_ms": pdq_numpy_ms,
        "pdq_numpy_pipeline_ms": pdq_numpy_pipeline_ms,
        "pdq_pdqhash_ms": pdq_pdqhash_ms,
        "pdq_pdqhash_pipeline_ms": pdq_pdqhash_pipeline_ms,
        "pdq_numpy_vs_pdqhash": None,
        "pdq_identical_to_pdqhash": None,
        "pdq_draft_vs_full_distance_max": max(distances),
        "preview_bytes_median": int(statistics.median(len(p) for p in previews)),
        "python": platform.python_version(),
        "pillow": Image.__version__,
        "machine": platform.machine(),
    }
    result["draft_speedup"] = round(result["digest_full_ms"] / result["digest_draft_ms"], 2)
    if pdq_pdqhash_ms is not None:
        result["pdq_numpy_vs_pdqhash"] = round(pdq_numpy_ms / pdq_pdqhash_ms, 2)
        result["pdq_identical_to_pdqhash"] = all(
            pdq.compute_dihedral(array) == pdqhash_dihedral(array) for array in pdq_full + pdq_pipeline
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
