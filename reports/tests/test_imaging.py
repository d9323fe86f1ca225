"""In-memory decoding, hashing, previews, blur and preview encryption.

Every picture here is synthetic, drawn in code: gradients, shapes, checkerboards, strokes and
noise. No test reads an image file.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import struct
import subprocess
import sys
import zlib
from itertools import combinations

import numpy as np
import pytest
from cryptography.fernet import Fernet, InvalidToken
from PIL import Image, ImageDraw, ImageOps

from reports.lib import imaging
from reports.lib.imaging import ImageRejected, hex_distance, pdq_dihedral_distance
from reports.lib.synthetic import reference_array, scene

PDQ_THRESHOLD = 31
PILLOW_MAX_PIXELS = Image.MAX_IMAGE_PIXELS
PHASH_CLOSE = 10


def reference_scene() -> Image.Image:
    """A 320x240 picture from integer arithmetic alone, so its pixels are the same everywhere."""
    return Image.fromarray(reference_array(), "RGB")


def checkerboard(size: int = 512, cell: int = 8) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size]
    return Image.fromarray((((x // cell + y // cell) % 2) * 255).astype(np.uint8), "L").convert("RGB")


def strokes(seed: int = 3) -> Image.Image:
    """Text-like: rows of short dark strokes on white, as lines of print look from afar."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (512, 384), "white")
    draw = ImageDraw.Draw(image)
    for row in range(12, 372, 18):
        x = 10
        while x < 490:
            length = int(rng.integers(3, 12))
            for _ in range(length):
                draw.rectangle([x, row, x + 2, row + int(rng.integers(6, 12))], fill="black")
                x += int(rng.integers(4, 7))
            x += 10
    return image


def noise(seed: int = 4, size: tuple[int, int] = (512, 384)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Type detection and rejection


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_detect_type_reads_magic_bytes(fmt, media_type):
    assert imaging.detect_type(encode(scene(1, 64, 48), fmt)) == media_type


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (b"<!DOCTYPE html><html><body><img src=x></body></html>", "text/html"),
        (b"\xef\xbb\xbf  <html lang=en>", "text/html"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/svg+xml"),
        (b"<svg width='10'></svg>", "image/svg+xml"),
        ("Gewoon tekst, geen beeld. ü".encode(), "text/plain"),
        (b"BMx not a bitmap at all", "text/plain"),
        (bytes(range(256)), None),
        (b"", None),
    ],
)
def test_detect_type_recognises_non_images(data, media_type):
    assert imaging.detect_type(data) == media_type


def test_html_and_random_bytes_are_not_images():
    rng = np.random.default_rng(9)
    for data in (b"<html><body>hello</body></html>", rng.bytes(5000), b"<svg></svg>"):
        with pytest.raises(ImageRejected) as caught:
            imaging.digest_image(data)
        assert caught.value.kind == "not_an_image"


def test_truncated_and_corrupt_images_fail_to_decode():
    jpeg = encode(scene(2), "JPEG", quality=90)
    png = encode(scene(2), "PNG")
    corrupt_png = png[:16] + b"\xff" * 8 + png[24:]  # IHDR dimensions overwritten, CRC now wrong
    for data in (jpeg[: len(jpeg) // 2], png[: len(png) // 3], corrupt_png, b"\xff\xd8\xff\xe0garbage"):
        with pytest.raises(ImageRejected) as caught:
            imaging.digest_image(data)
        assert caught.value.kind == "decode"


def _png(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_decompression_bomb_is_rejected_from_its_header():
    # 30000 x 30000 pixels of one colour (1-bit grey, every row filter 0 and all zero bits):
    # 112 MB of scanlines that deflate to about 110 kB.
    row = bytes(1 + 30000 // 8 + 1)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row * 1000) for _ in range(30)) + compressor.flush()
    bomb = _png(30000, 30000, 1, 0, idat)
    assert len(bomb) < 200_000
    with pytest.raises(ImageRejected) as caught:
        imaging.digest_image(bomb)
    assert caught.value.kind == "bomb"


def test_pixel_limit_is_the_callers():
    data = encode(scene(3, 1200, 900), "PNG")
    with pytest.raises(ImageRejected) as caught:
        imaging.decode_image(data, max_pixels=1_000_000)
    assert caught.value.kind == "bomb"
    assert imaging.decode_image(data, max_pixels=1_080_000).size == (1200, 900)
    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_PIXELS  # the global is untouched


# ---------------------------------------------------------------------------------------------
# Decoding


def test_modes_all_come_back_as_rgb():
    base = scene(5, 320, 240)
    frames = [Image.new("RGB", (320, 240), (250, 0, 0)), Image.new("RGB", (320, 240), (0, 0, 250))]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    sixteen = Image.fromarray((np.mgrid[0:240, 0:320][1] * 200).astype(np.uint16))  # 0..63800
    cases = {
        "palette": encode(base.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "grey+alpha": encode(base.convert("LA"), "PNG"),
        "rgba": encode(base.convert("RGBA"), "PNG"),
        "cmyk": encode(base.convert("CMYK"), "JPEG"),
        "16-bit": encode(sixteen, "PNG"),
        "animated": animated.getvalue(),
        "bilevel": encode(base.convert("1"), "TIFF"),
    }
    for name, data in cases.items():
        image = imaging.decode_image(data)
        assert image.mode == "RGB", name
        assert image.size == (320, 240), name
    first = np.asarray(imaging.decode_image(cases["animated"]))
    assert first[..., 0].mean() > 200
    assert first[..., 2].mean() < 50
    grey = np.asarray(imaging.decode_image(cases["16-bit"]))[..., 0]
    assert grey[:, 0].mean() < 5
    assert 240 < grey[:, -1].mean() < 250


def test_exif_orientation_is_applied():
    image = scene(6, 400, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    data = encode(image, "JPEG", quality=95, exif=exif.tobytes())
    digest, upright = imaging.digest_image(data)
    assert (digest.width, digest.height) == (200, 400)
    assert upright.size == (200, 400)
    direct, _ = imaging.digest_image(encode(image.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95))
    assert hex_distance(digest.pdq, direct.pdq) <= 8


def test_large_jpeg_is_decoded_at_reduced_scale():
    data = encode(scene(7, 2048, 1536), "JPEG", quality=90)
    digest, image = imaging.digest_image(data)
    assert (digest.width, digest.height) == (2048, 1536)
    assert 512 <= max(image.size) < 2048
    full = imaging.decode_image(data, draft_long_side=None)
    assert full.size == (2048, 1536)
    assert hex_distance(digest.pdq, imaging.pdq_hashes(full)[0]) <= 8


# ---------------------------------------------------------------------------------------------
# Hashes


def test_hashes_are_stable_and_complete():
    data = encode(scene(8), "JPEG", quality=85)
    first, _ = imaging.digest_image(data)
    second, _ = imaging.digest_image(data)
    assert first == second
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert first.sha1 == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert len(first.pdq) == 64
    assert len(first.phash) == 16
    assert first.pdq_dihedral[0] == first.pdq
    assert len(first.pdq_dihedral) == 8
    assert 0 <= first.pdq_quality <= 100
    assert first.pdq_quality > 50
    assert (first.width, first.height, first.media_type) == (640, 480, "image/jpeg")
    assert first.as_dict()["pdq"] == first.pdq


def test_pdq_matches_reference_hasher():
    # Expected values printed by Meta's reference C++ hasher (ThreatExchange pdq/cpp,
    # `pdq-photo-hasher --pdqdih-across`) for reference_scene() written as a PPM file. Equal
    # hex means the same bit order, the same hex convention and the same dihedral order.
    digest, _ = imaging.digest_image(encode(reference_scene(), "PNG"))
    assert digest.pdq == "99ce63968e6d8b9676296a74dc6fe0f4637184ed9b80370b6c46958ba99069b4"
    assert digest.pdq_quality == 52
    assert digest.pdq_dihedral == [
        "99ce63968e6d8b9676296a74dc6fe0f4637184ed9b80370b6c46958ba99069b4",
        "8366b0760d9bf5eb362bd5a354b02f48d16758372fc1aa7caa5408b6d21cd52b",
        "d49b893cd938a13c217cc0de893a4a5e36642e47ded59da139133f21fcc5c31e",
        "f6335adc58ce5f61637e7f0921e585e28432f29d7a9400d6ff01a21c87497f81",
        "81cefc698e6df4697429958bdc6f1f0b63717b129b80c8f46c466a74a990964b",
        "d49b16c359385ec3217c3f21893ab5a13624d1b8ded5625e3913c0defcc53ce1",
        "b3664f894d9b8a34b62b2a5c7cb0d0b7d167a7c82fc15583aa54f749d21c2ad4",
        "f633a52318cea0be637e80f601e57a1d84320de27a94ff29ff015de38749807e",
    ]


def _variants(image: Image.Image) -> dict[str, Image.Image]:
    width, height = image.size
    edge_x, edge_y = round(width * 0.01), round(height * 0.01)
    return {
        "jpeg q70": Image.open(io.BytesIO(encode(image, "JPEG", quality=70))),
        "half size": image.resize((width // 2, height // 2), Image.Resampling.LANCZOS),
        # Brightened as an editor's curves do (gamma 0.8). A plain multiply by 1.3 clips whole
        # saturated regions to white, which PDQ rightly sees as a different picture.
        "brighter": image.point(lambda v: round(255 * (v / 255) ** 0.8)),
        "greyscale": image.convert("L"),
        # 1 % off each edge, 4 % of the area. PDQ is crop-sensitive: on 50 generated scenes
        # this stays <= 30, while 2 % off each edge (8 % of the area) reaches 46.
        "cropped": image.crop((edge_x, edge_y, width - edge_x, height - edge_y)),
    }


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_altered_copies_stay_within_match_distance(seed):
    original = scene(seed)
    digest, _ = imaging.digest_image(encode(original, "PNG"))
    for name, variant in _variants(original).items():
        other, _ = imaging.digest_image(encode(variant, "PNG"))
        assert hex_distance(digest.pdq, other.pdq) <= PDQ_THRESHOLD, name
        assert hex_distance(digest.phash, other.phash) <= PHASH_CLOSE, name
    mirrored, _ = imaging.digest_image(encode(ImageOps.mirror(original), "PNG"))
    assert hex_distance(digest.pdq, mirrored.pdq) > PDQ_THRESHOLD  # plain PDQ misses a mirror...
    assert pdq_dihedral_distance(digest.pdq_dihedral, mirrored.pdq) <= PDQ_THRESHOLD  # ...the set finds it
    assert pdq_dihedral_distance(mirrored.pdq_dihedral, digest.pdq) <= PDQ_THRESHOLD
    rotated, _ = imaging.digest_image(encode(original.transpose(Image.Transpose.ROTATE_90), "PNG"))
    assert pdq_dihedral_distance(digest.pdq_dihedral, rotated.pdq) <= PDQ_THRESHOLD


def test_distinct_images_are_far_apart():
    digests = [imaging.digest_image(encode(scene(100 + seed, 320, 240), "PNG"))[0] for seed in range(30)]
    distances = [hex_distance(a.pdq, b.pdq) for a, b in combinations(digests, 2)]
    assert min(distances) > PDQ_THRESHOLD
    assert np.mean(distances) > 100  # unrelated images sit near 128 of 256 bits


# ---------------------------------------------------------------------------------------------
# Previews and blur


def test_preview_is_small_jpeg_without_metadata():
    source = scene(20, 1600, 1000)
    exif = Image.Exif()
    exif[0x0131] = "Camera Firmware 1.0"
    exif[0x010F] = "Maker"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    icc = b"\x00" * 128  # an ICC-profile-shaped payload is enough to see whether it is carried
    data = encode(source, "JPEG", quality=90, exif=exif.tobytes(), xmp=xmp, icc_profile=icc, comment=b"secret")
    _, image = imaging.digest_image(data)
    preview = imaging.make_preview(image)
    opened = Image.open(io.BytesIO(preview))
    assert opened.format == "JPEG"
    assert opened.mode == "RGB"
    assert max(opened.size) == 512
    assert opened.size == (512, 320)
    assert not opened.getexif()
    assert not {"exif", "icc_profile", "xmp", "comment"} & set(opened.info)
    for marker in (b"\xff\xe1", b"\xff\xe2", b"\xff\xfe", b"secret", b"Maker"):
        assert marker not in preview
    small = imaging.make_preview(scene(21, 200, 100))
    assert Image.open(io.BytesIO(small)).size == (200, 100)  # never enlarged


def _luma_energy_ratio(preview: bytes, blurred: bytes) -> float:
    before = imaging.laplacian_variance(Image.open(io.BytesIO(preview)))
    after = imaging.laplacian_variance(Image.open(io.BytesIO(blurred)))
    return after / before


HIGH_DETAIL = {"checkerboard": checkerboard, "strokes": strokes, "noise": noise}


@pytest.mark.parametrize("name", ["checkerboard", "strokes", "noise", "shapes", "fine checkerboard"])
@pytest.mark.parametrize("greyscale", [False, True])
def test_blur_removes_high_frequency_energy(name, greyscale):
    make = {**HIGH_DETAIL, "shapes": lambda: scene(22, 512, 384), "fine checkerboard": lambda: checkerboard(512, 2)}
    preview = imaging.make_preview(make[name]())
    blurred = imaging.blur_preview(preview, greyscale=greyscale)
    opened = Image.open(io.BytesIO(blurred))
    assert opened.format == "JPEG"
    assert opened.size == Image.open(io.BytesIO(preview)).size
    assert opened.mode == ("L" if greyscale else "RGB")
    assert _luma_energy_ratio(preview, blurred) < 0.02


@pytest.mark.parametrize("name", sorted(HIGH_DETAIL))
def test_blurred_detail_cannot_be_matched_back(name):
    preview = imaging.make_preview(HIGH_DETAIL[name]())
    original, _ = imaging.digest_image(preview)
    for greyscale in (False, True):
        blurred, _ = imaging.digest_image(imaging.blur_preview(preview, greyscale=greyscale))
        assert pdq_dihedral_distance(original.pdq_dihedral, blurred.pdq) > PDQ_THRESHOLD
        assert blurred.pdq_quality < 50


def test_blur_depends_only_on_a_16_pixel_thumbnail():
    # Two previews whose 16 px reductions are identical give identical blurred images: no
    # detail finer than 1/16 of the picture can reach the analyst's screen.
    base = 40 + np.asarray(scene(23, 512, 512), dtype=np.int16) * 175 // 255  # room for detail without clipping
    y, x = np.mgrid[0:32, 0:32]
    detail = (25 * (1 - 2 * ((x // 2 + y // 3) % 2)))[None, :, None, :, None]  # sums to 0 in each cell
    textured = (base.reshape(16, 32, 16, 32, 3) + detail).reshape(512, 512, 3)
    assert not np.array_equal(textured, base)
    a = imaging.blur_preview(encode(Image.fromarray(base.astype(np.uint8)), "PNG"))
    b = imaging.blur_preview(encode(Image.fromarray(textured.astype(np.uint8)), "PNG"))
    assert a == b


# ---------------------------------------------------------------------------------------------
# Encryption at rest


def test_preview_encryption_round_trip_and_key_rotation():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    preview = imaging.make_preview(scene(30, 300, 200))
    token = imaging.encrypt_preview(preview, [old])
    assert preview not in token
    assert token != preview
    assert imaging.decrypt_preview(token, [old]) == preview
    # A new key goes first; tokens made under the old one still open.
    assert imaging.decrypt_preview(token, [new, old]) == preview
    fresh = imaging.encrypt_preview(preview, [new, old])
    with pytest.raises(InvalidToken):
        imaging.decrypt_preview(fresh, [old])
    rotated = imaging.reencrypt_preview(token, [new, old])
    assert imaging.decrypt_preview(rotated, [new]) == preview  # the old key can now be retired
    tampered = bytearray(token)
    tampered[40] ^= 1
    with pytest.raises(InvalidToken):
        imaging.decrypt_preview(bytes(tampered), [new, old])
    with pytest.raises(ValueError, match="key"):
        imaging.encrypt_preview(preview, [])


# ---------------------------------------------------------------------------------------------
# Nothing touches the disk, nothing needs Django


def test_pipeline_opens_no_file(monkeypatch):
    data = encode(scene(31, 800, 600), "JPEG", quality=90)
    imaging.blur_preview(imaging.make_preview(imaging.digest_image(data)[1]))  # plugins loaded

    def refuse(*args, **kwargs):
        raise AssertionError(f"file opened: {args[:1]}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    _, image = imaging.digest_image(data)
    blurred = imaging.blur_preview(imaging.make_preview(image), greyscale=True)
    key = Fernet.generate_key().decode()
    assert imaging.decrypt_preview(imaging.encrypt_preview(blurred, [key]), [key]) == blurred


def test_lib_modules_do_not_import_django():
    code = "import sys, reports.lib.imaging, reports.lib.provenance; sys.exit('django' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 0, result.stderr
