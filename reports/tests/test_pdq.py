"""The NumPy PDQ (`reports.lib.pdq`) against Meta's reference C++ as `pdqhash` runs it.

Pinned values were printed by `pdqhash` 0.2.8 (and, for `reference_array`, by Meta's own
`pdq-photo-hasher`), so these tests run without `pdqhash`; the cross-checks that call
`pdqhash` itself are skipped where it is not installed (it is deliberately not a requirement:
it needs g++ to build). Every picture is generated in code; no test reads an image file.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter

from reports.lib import pdq
from reports.lib.imaging import hex_distance
from reports.lib.synthetic import reference_array

REPO = Path(__file__).resolve().parents[2]
DIHEDRAL_NAMES = ["original", "rotate 90", "rotate 180", "rotate 270", "flip X", "flip Y", "flip +1", "flip -1"]
# The Pillow transpose that each dihedral hash stands for (`rotate 90` is counter-clockwise,
# Pillow's ROTATE_90; `flip X` mirrors about the horizontal axis, top to bottom).
TRANSFORMS = {
    "rotate 90": Image.Transpose.ROTATE_90,
    "rotate 180": Image.Transpose.ROTATE_180,
    "rotate 270": Image.Transpose.ROTATE_270,
    "flip X": Image.Transpose.FLIP_TOP_BOTTOM,
    "flip Y": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip +1": Image.Transpose.TRANSPOSE,
    "flip -1": Image.Transpose.TRANSVERSE,
}


# ---------------------------------------------------------------------------------------------
# Generated pictures (integer arithmetic only where values are pinned)


def ripples(width: int = 517, height: int = 333) -> np.ndarray:
    """Odd-sized, full of detail (quality 100)."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * x + 3 * y * y) // 97 % 256
    g = (x * 7 + y * 13) % 256
    b = ((x // 23) * (y // 17) * 31) % 256
    return np.stack([r, g, b], -1).astype(np.uint8)


def grey64() -> np.ndarray:
    """64 x 64 grey: the tent filter (window 1) and decimation are exact on it."""
    y, x = np.mgrid[0:64, 0:64]
    return ((x * 5 + y * y * 3 + (x * y) // 7) % 256).astype(np.uint8)


def colour64() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64]
    return np.stack([(x * 4) % 256, (y * 4) % 256, (x * y) % 256], -1).astype(np.uint8)


def near_flat(width: int = 200, height: int = 150) -> np.ndarray:
    """Grey 128/129 squares: quality 0, and DCT coefficients full of near-ties."""
    y, x = np.mgrid[0:height, 0:width]
    value = 128 + (x // 50 + y // 50) % 2
    return np.stack([value] * 3, -1).astype(np.uint8)


def generated(kind: str, width: int, height: int, seed: int) -> np.ndarray:
    """Pictures of many kinds for the cross-check: smooth, sharp, noisy, flat and periodic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * x / width + np.sin(angle) * y / height + 1) / 2
        colours = rng.integers(0, 256, (2, 3))
        return (colours[0] * ramp[..., None] + colours[1] * (1 - ramp[..., None])).astype(np.uint8)
    if kind in ("shapes", "grey", "blurred"):
        image = Image.fromarray(generated("gradient", width, height, seed))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(3, 12))):
            x0, y0 = int(rng.integers(-width // 4, width)), int(rng.integers(-height // 4, height))
            box = [
                x0,
                y0,
                x0 + int(rng.integers(1, max(2, width // 2))),
                y0 + int(rng.integers(1, max(2, height // 2))),
            ]
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.integers(0, 2) else draw.rectangle)(box, fill=fill)
        if kind == "grey":
            image = image.convert("L").convert("RGB")
        elif kind == "blurred":
            image = image.filter(ImageFilter.GaussianBlur(max(width, height) / 8))
        return np.asarray(image)
    if kind == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if kind == "checkerboard":
        cell = int(rng.integers(1, 40))
        value = ((x // cell + y // cell) % 2 * 255).astype(np.uint8)
        return np.stack([value] * 3, -1)
    if kind == "stripes":
        period = int(rng.integers(2, 30))
        value = ((x if rng.integers(0, 2) else y) // period % 2 * 200 + 20).astype(np.uint8)
        return np.stack([value, 255 - value, value // 2], -1)
    if kind == "flat":
        return np.full((height, width, 3), rng.integers(0, 256, 3), dtype=np.uint8)
    if kind == "near flat":
        base = np.full((height, width, 3), rng.integers(1, 255, 3), dtype=np.int16)
        base += (rng.random((height, width, 1)) < 0.01) * np.int16(rng.choice([-1, 1]))
        return base.astype(np.uint8)
    if kind == "two levels":  # luma 0..2 in four blocks: many equal coefficients
        return ((x * 2 // width) + (y * 2 // height)).astype(np.uint8)[..., None].repeat(3, -1)
    raise ValueError(kind)


KINDS = ["gradient", "shapes", "grey", "blurred", "noise", "checkerboard", "stripes", "flat", "near flat", "two levels"]
SIZES = [(64, 48), (48, 64), (64, 64), (5, 5), (9, 5), (4, 10), (65, 63), (127, 129), (200, 133), (320, 240)]
SIZES += [(333, 517), (511, 513), (512, 512), (512, 384), (640, 480), (1000, 100), (96, 1200), (1024, 768)]


def reference_hashes(pdqhash, image: np.ndarray) -> tuple[list[str], int, str, int]:
    vectors, quality = pdqhash.compute_dihedral(image)
    single, single_quality = pdqhash.compute(image)
    return [pdq.bits_to_hex(v) for v in vectors], int(quality), pdq.bits_to_hex(single), int(single_quality)


# ---------------------------------------------------------------------------------------------
# Pinned values: run everywhere


def test_matches_meta_reference_hasher():
    # The values of test_imaging.test_pdq_matches_reference_hasher (Meta's pdq-photo-hasher).
    dihedral, quality = pdq.compute_dihedral(reference_array())
    assert quality == 52
    assert dihedral == [
        "99ce63968e6d8b9676296a74dc6fe0f4637184ed9b80370b6c46958ba99069b4",
        "8366b0760d9bf5eb362bd5a354b02f48d16758372fc1aa7caa5408b6d21cd52b",
        "d49b893cd938a13c217cc0de893a4a5e36642e47ded59da139133f21fcc5c31e",
        "f6335adc58ce5f61637e7f0921e585e28432f29d7a9400d6ff01a21c87497f81",
        "81cefc698e6df4697429958bdc6f1f0b63717b129b80c8f46c466a74a990964b",
        "d49b16c359385ec3217c3f21893ab5a13624d1b8ded5625e3913c0defcc53ce1",
        "b3664f894d9b8a34b62b2a5c7cb0d0b7d167a7c82fc15583aa54f749d21c2ad4",
        "f633a52318cea0be637e80f601e57a1d84320de27a94ff29ff015de38749807e",
    ]
    assert pdq.compute(reference_array()) == (dihedral[0], quality)


def test_pinned_pdqhash_values():
    dihedral, quality = pdq.compute_dihedral(ripples())
    assert quality == 100
    assert dihedral == [
        "d1fec7c4c7408f88ae0a1d3e787f30df72f872f4e1e451f0e7a0cbc0a7c08720",
        "782f1d030bea782f1e0483f478cf0bc0d1fe1c0986f9782f9f80389f0f00fcff",
        "04a96d4e92152522fb4fb7942d0a9a5525add85eb4b1eb5ab2f5616af2952d8a",
        "2d7ab7a95ebfd2854b5129562d9aa16a84abb4a392acd285cad592355a555655",
        "51fc381bc7407077ae0ae2c1783fcf0072f88d0be1e4ae0fe3a0343fa7c078df",
        "04a992919215daddfb5f486b2d2a658a27ad27a1b4b104a5b2f59e95f295d275",
        "f82fe2fc0bea87d01e047c0b78cff43fd1fee3f686f987d09f80c7608f000300",
        "2d7a48565ebf2d6a4b51d6a12d1a5e9584ab495c90ac257acad56dca5a55a9aa",
    ]
    dihedral, quality = pdq.compute_dihedral(grey64())
    assert quality == 100
    assert dihedral == [
        "eee6139ed5e4dfe4e23dbcec7ca417b40d08ac444235bd4cc98833b4ed88bc48",
        "3c5345d5865788ea96db482cd9248f61f30e4baebf24b6db4c9b009bc000f7df",
        "3bb3bb3480b1754e976816c609f1bc1e585d06ee176017e21cdd991eb8dd16e2",
        "690eff7fdb022240c38ee386cc7125cbb65be104ea711c7119ceaa3195555d75",
        "6ee6ee61d5e4609be23d43937ca4ed4b0d0853bb423542b7c988cc4bed8843b7",
        "3bb346cb80b18ab19768e93929f143e1585df9111760e81d1cdd66e1b8dde91d",
        "bc5bba2a8e57771596dbb7d3d924719ef70eb451bf2449244c9bff74c0000820",
        "69061080d102ddbfc38e1d79cc71da34a65b1efbea71e38e19ce55ce9555a28a",
    ]


def test_low_quality_and_median_ties():
    dihedral, quality = pdq.compute_dihedral(near_flat())
    assert quality == 0
    assert dihedral[0] == "0d0df2f2f2f20d0dafaf0d0d0d0df2f2f2f20d0dad0d0d0d0d0df2f2f2f20d0d"
    assert dihedral[5] == "5858a7a7a7a75858fafa58585858a7a7a7a75858f85858585858a7a7a7a75858"
    flat, flat_quality = pdq.compute_dihedral(np.full((100, 80, 3), 77, dtype=np.uint8))
    assert flat_quality == 0
    # A flat picture's DCT is rounding noise around zero (many coefficients exactly 0, the
    # median among them): its bits are pure float arithmetic, so they pin the order of every
    # operation from the luma to the DCT.
    assert flat[0] == "00002c4b2c4b0000000000008200017e0000cc530000554b13a0554b585e1706"
    assert flat[3] == "021501022000414a21022100035c404800492003404940032003400220022101"
    assert flat[7] == "0215025c200022152102425f035c23170049435c40492148200321012002425e"


def test_64x64_single_hash_skips_the_filter_as_the_reference_does():
    # pdqHash256FromFloatLuma takes a 64 x 64 luma as the decimated image; the dihedral
    # function filters it anyway (window 1, whose running sum is not exact on fractions).
    assert pdq.compute(colour64()) == ("9999331b6333c6338c63186370c7e1c783870f0e3c0ff81ec07c03f87ff0ffa0", 100)
    dihedral, quality = pdq.compute_dihedral(colour64())
    assert (dihedral[0], quality) == ("9999331b6333c6338c73186370c7e1c783870f0e3c0ff01ec07c03f87ff0ffa0", 100)


def test_small_images_hash_to_zero():
    for shape in [(4, 10, 3), (10, 4, 3), (1, 1, 3), (0, 0, 3)]:
        image = np.zeros(shape, dtype=np.uint8)
        assert pdq.compute(image) == ("0" * 64, 0)
        assert pdq.compute_dihedral(image) == (["0" * 64] * 8, 0)
    hexes, _quality = pdq.compute_dihedral(generated("shapes", 5, 5, 1))
    assert len(set(hexes)) > 1


def test_grey_array_is_the_rgb_image_with_equal_channels():
    grey = ripples()[:, :, 0]
    assert pdq.compute_dihedral(grey) == pdq.compute_dihedral(np.stack([grey] * 3, -1))
    assert pdq.compute(grey) == pdq.compute(np.stack([grey] * 3, -1))


def test_input_is_validated():
    with pytest.raises(ValueError, match="uint8"):
        pdq.compute(ripples().astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        pdq.compute(np.zeros((10, 10, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="shape"):
        pdq.compute_dihedral(np.zeros(100, dtype=np.uint8))


def test_input_layout_does_not_matter():
    image = ripples(300, 200)
    expected = pdq.compute_dihedral(image)
    assert pdq.compute_dihedral(np.asfortranarray(image)) == expected
    wide = ripples(600, 200)
    assert pdq.compute_dihedral(wide[:, ::2]) == pdq.compute_dihedral(np.ascontiguousarray(wide[:, ::2]))
    assert np.array_equal(image, ripples(300, 200))  # the input is not modified


def test_bits_round_trip():
    hexes, _ = pdq.compute_dihedral(ripples())
    bits = pdq.hex_to_bits(hexes[0])
    assert bits.shape == (256,)
    assert set(np.unique(bits)) <= {0, 1}
    assert pdq.bits_to_hex(bits) == hexes[0]
    assert int(bits.sum()) == 128  # ">" the median of 256 distinct values sets exactly half


# ---------------------------------------------------------------------------------------------
# Dihedral properties


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transformed_image_hashes_to_its_dihedral_hash_exactly_at_64px(name):
    # On a 64 x 64 grey image the tent filter and the decimation are exact, so a rotated or
    # mirrored copy hashes to exactly the dihedral hash the original predicts for it, and its
    # own 8 dihedral hashes are the original's 8, permuted.
    for image in (grey64(), generated("grey", 64, 64, 5)[:, :, 0]):
        original, quality = pdq.compute_dihedral(image)
        moved = np.asarray(Image.fromarray(image).transpose(TRANSFORMS[name]))
        moved_dihedral, moved_quality = pdq.compute_dihedral(moved)
        assert moved_dihedral[0] == original[DIHEDRAL_NAMES.index(name)]
        assert sorted(moved_dihedral) == sorted(original)
        assert moved_quality == quality


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_transformed_photo_is_nearest_to_its_dihedral_hash(seed):
    # At other sizes the filter's window and sampling points are not quite symmetric, so the
    # match is close rather than exact, but always nearest to the right dihedral hash.
    image = Image.fromarray(generated("shapes", 640, 480, seed))
    original, _ = pdq.compute_dihedral(np.asarray(image))
    assert len(set(original)) == 8
    for name, transform in TRANSFORMS.items():
        moved, _ = pdq.compute(np.asarray(image.transpose(transform)))
        distances = [hex_distance(moved, h) for h in original]
        assert int(np.argmin(distances)) == DIHEDRAL_NAMES.index(name), name
        assert min(distances) <= 31, name


# ---------------------------------------------------------------------------------------------
# Cross-checks against pdqhash (skipped where it is not installed)


@pytest.mark.parametrize("kind", KINDS)
def test_bit_identical_to_pdqhash(kind):
    pdqhash = pytest.importorskip("pdqhash")
    for index, (width, height) in enumerate(SIZES):
        image = np.ascontiguousarray(generated(kind, width, height, seed=1000 + index))
        dihedral, quality, single, single_quality = reference_hashes(pdqhash, image)
        assert pdq.compute_dihedral(image) == (dihedral, quality), (kind, width, height)
        assert pdq.compute(image) == (single, single_quality), (kind, width, height)


def test_pinned_values_are_pdqhash_values():
    pdqhash = pytest.importorskip("pdqhash")
    flat = np.full((100, 80, 3), 77, dtype=np.uint8)
    for image in (reference_array(), ripples(), np.stack([grey64()] * 3, -1), colour64(), near_flat(), flat):
        dihedral, quality, single, single_quality = reference_hashes(pdqhash, image)
        assert pdq.compute_dihedral(image) == (dihedral, quality)
        assert pdq.compute(image) == (single, single_quality)


@pytest.mark.skipif(importlib.util.find_spec("pdqhash") is None, reason="pdqhash is not installed")
@settings(max_examples=150, deadline=None)
@given(
    height=st.integers(1, 140),
    width=st.integers(1, 140),
    seed=st.integers(0, 2**32 - 1),
    levels=st.sampled_from([1, 2, 3, 16, 256]),
)
def test_bit_identical_to_pdqhash_on_random_arrays(height, width, seed, levels):
    pdqhash = pytest.importorskip("pdqhash")  # the marker above skips first: Hypothesis would report each example
    rng = np.random.default_rng(seed)
    image = (rng.integers(0, levels, (height, width, 3)) * (255 // max(levels - 1, 1))).astype(np.uint8)
    dihedral, quality, single, single_quality = reference_hashes(pdqhash, image)
    assert pdq.compute_dihedral(image) == (dihedral, quality)
    assert pdq.compute(image) == (single, single_quality)


# ---------------------------------------------------------------------------------------------
# No compiled PDQ, no Django


def test_imaging_works_without_pdqhash():
    code = (
        "import sys; sys.modules['pdqhash'] = None\n"  # any `import pdqhash` now fails
        "import io\n"
        "from PIL import Image\n"
        "from reports.lib import imaging\n"
        "out = io.BytesIO(); Image.new('RGB', (64, 48), (10, 200, 30)).save(out, 'PNG')\n"
        "digest, _ = imaging.digest_image(out.getvalue())\n"
        "assert len(digest.pdq_dihedral) == 8\n"
        "sys.exit('django' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO)  # noqa: S603
    assert result.returncode == 0, result.stderr


def test_pdqhash_is_not_a_requirement():
    for name in ("requirements.txt", "requirements-dev.txt"):
        lines = (REPO / name).read_text().splitlines()
        assert not [line for line in lines if line.strip().lower().startswith("pdqhash")], name
