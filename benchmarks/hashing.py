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

Times are medians over `--n` calls; the process is single-threaded. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import imagehash
import numpy as np
from cryptography.fernet import Fernet
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reports.lib import imaging, provenance  # noqa: E402


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
    pdq, quality, dihedral = imaging.pdq_hashes(image)
    return imaging.ImageDigest(
        **imaging.byte_hashes(data),
        pdq=pdq,
        pdq_quality=quality,
        pdq_dihedral=dihedral,
        phash=str(imagehash.phash(image)),
        width=image.width,
        height=image.height,
        media_type="image/jpeg",
    )


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

    data, image, preview = pick(jpegs), pick(images), pick(previews)
    n = args.n
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
        "pdq_draft_vs_full_distance_max": max(distances),
        "preview_bytes_median": int(statistics.median(len(p) for p in previews)),
        "python": platform.python_version(),
        "pillow": Image.__version__,
        "machine": platform.machine(),
    }
    result["draft_speedup"] = round(result["digest_full_ms"] / result["digest_draft_ms"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
