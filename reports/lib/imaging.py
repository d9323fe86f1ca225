"""Decode, hash, preview and blur images, all in memory. Django-free.

The original bytes of reported content are never written to disk: every function here takes
and returns `bytes` or PIL images, Pillow reads from `BytesIO`, and nothing opens a file.

Hash conventions (checked against Meta's reference C++ `pdq-photo-hasher`, see
`reports/tests/test_imaging.py::test_pdq_matches_reference_hasher`):

- PDQ is computed by `reports.lib.pdq`, a NumPy port of the reference C++ that is
  bit-identical to the `pdqhash` bindings (no compiler needed; see `reports/tests/test_pdq.py`).
- PDQ is 64 lower-case hex digits, the reference `Hash256::format()` order: most
  significant bit first, i.e. `pdqhash`'s bit vector read left to right (bit 255 first). This
  is also how ThreatExchange's Python tools write PDQ hashes.
- `pdq_dihedral` follows the reference `--pdqdih` order: original, rotate 90, rotate 180,
  rotate 270, flip X, flip Y, flip +1, flip -1. Element 0 equals `pdq`.
- Like the reference hasher, images larger than 512 px on a side are first scaled to
  512 x 512 (PDQ's own filter then reduces to 64 x 64, so the aspect ratio does not matter).
- pHash is `imagehash.phash` (64 bits, 16 hex digits).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import imagehash
import numpy as np
from cryptography.fernet import Fernet, MultiFernet
from PIL import Image, ImageFilter

from . import pdq as _pdq

# Magic-byte media types that Hotline decodes, and the Pillow plugin allowed for each: a file
# is only ever parsed by the plugin its own leading bytes name.
RASTER_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
}
# Recognised, but never decoded as pictures (SVG is markup that can carry script).
NON_RASTER_TYPES = frozenset({"text/html", "image/svg+xml", "text/xml", "text/plain"})

DEFAULT_MAX_PIXELS = 50_000_000
PDQ_SIDE = 512  # the reference hasher's pre-scale size
PREVIEW_MAX_SIDE = 512
PREVIEW_QUALITY = 80
# Decoding a JPEG at 1/2, 1/4 or 1/8 scale is far cheaper than a full decode. Every consumer
# here (PDQ at 512, pHash at 32, the preview at 512) needs no more than this on the long side.
DRAFT_LONG_SIDE = 512
BLUR_TINY_SIDE = 16
_TEXT_SNIFF_BYTES = 1024


class ImageRejected(Exception):
    """Bytes that Hotline will not treat as a picture. `kind` is one of "not_an_image",
    "decode" or "bomb" (the same values as `CaptureError`); `detail` is a short diagnostic."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail[:300]


# ---------------------------------------------------------------------------------------------
# Type detection


def _looks_like_bmp(data: bytes) -> bool:
    # "BM" alone is too weak a signature (plenty of text starts with it): also require a
    # known DIB header size at offset 14.
    return (
        len(data) >= 18
        and data[:2] == b"BM"
        and int.from_bytes(data[14:18], "little") in {12, 16, 40, 52, 56, 64, 108, 124}
    )


# WHATWG MIME sniffing's HTML signatures, each followed by a space or ">".
_HTML_TAGS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
)


def _sniff_markup_or_text(data: bytes) -> str | None:
    head = data[:_TEXT_SNIFF_BYTES]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    stripped = head.lstrip(b" \t\n\r\x0c").lower()
    for tag in _HTML_TAGS:
        if stripped.startswith(tag):
            rest = stripped[len(tag) : len(tag) + 1]
            if tag == b"<!--" or rest in (b" ", b">", b"\t", b"\n", b"\r", b"\x0c"):
                return "text/html"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<svg") or stripped.startswith(b"<!doctype svg"):
        return "image/svg+xml" if b"<svg" in data[:4096].lower() else "text/xml"
    try:
        # A multi-byte character may be cut at the end of the sniffed prefix: not final then.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(data) <= _TEXT_SNIFF_BYTES)
    except UnicodeDecodeError:
        return None
    if text and all(ch.isprintable() or ch in "\t\n\r\x0c" for ch in text):
        return "text/plain"
    return None


def detect_type(data: bytes) -> str | None:
    """The media type the leading bytes prove, or None when they prove nothing.

    Raster types are those in `RASTER_FORMATS`; HTML, SVG, XML and plain text are recognised
    so that callers can say what a non-image was. Any declared Content-Type or file name is
    deliberately ignored: both are under the uploader's control.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if _looks_like_bmp(data):
        return "image/bmp"
    return _sniff_markup_or_text(data)


# ---------------------------------------------------------------------------------------------
# Decoding


def _draft_request(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    # Pillow picks the largest 1/2, 1/4, 1/8 scale that keeps both sides >= the request.
    width, height = size
    longest = max(width, height)
    return max(1, width * long_side // longest), max(1, height * long_side // longest)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB of any decoded mode. Alpha is dropped (not composited), as ThreatExchange's tools
    and most hash producers do, so hashes of transparent images agree with theirs."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F" and values.size and float(np.nanmax(values)) <= 1.0:
            values = values * 255.0
        elif image.mode != "F":
            values = values / 257.0  # 16-bit samples to 8 bits (65535 -> 255)
        grey = np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    return image.convert("RGB")


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112)
    except Exception:  # a broken EXIF block must not cost us the picture
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    return image.transpose(method) if method is not None else image


def _open(data: bytes, *, max_pixels: int) -> tuple[Image.Image, str]:
    media_type = detect_type(data)
    if media_type not in RASTER_FORMATS:
        raise ImageRejected("not_an_image", f"detected {media_type or 'unknown bytes'}")
    try:
        image = Image.open(io.BytesIO(data), formats=[RASTER_FORMATS[media_type]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("bomb", str(exc)) from exc
    except Exception as exc:  # hostile input makes decoders raise anything
        raise ImageRejected("decode", f"{type(exc).__name__}: {exc}") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("decode", f"declared size {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected("bomb", f"declared size {width}x{height} exceeds {max_pixels} pixels")
    return image, media_type


def _decode(data: bytes, *, max_pixels: int, draft_long_side: int | None) -> tuple[Image.Image, str, tuple[int, int]]:
    # Pillow's decompression-bomb check reads the module global Image.MAX_IMAGE_PIXELS. We
    # never change that global (other threads may be decoding). Our own limit is the explicit
    # size check in _open(), made from the header before any pixel is decoded, so it is
    # thread-safe and exact. Pillow's warning (above its own ~89 Mpx default) is additionally
    # turned into an error for this block: catch_warnings swaps the process-wide filter list,
    # so under threads an interleaving can leave that stricter filter in place a little longer
    # or drop it early, but neither changes the outcome here because the explicit check never
    # depends on it. A caller passing max_pixels above Pillow's default gets Pillow's limit.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image, media_type = _open(data, max_pixels=max_pixels)
        try:
            orientation = _orientation(image)
            original_size = image.size[::-1] if orientation in (5, 6, 7, 8) else image.size
            if draft_long_side and image.format in ("JPEG", "MPO") and max(image.size) > draft_long_side:
                image.draft(None, _draft_request(image.size, draft_long_side))
            image.load()  # GIF, WebP, APNG, TIFF: the first frame only
            rgb = _upright(_to_rgb(image), orientation)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected("bomb", str(exc)) from exc
        except ImageRejected:
            raise
        except Exception as exc:
            raise ImageRejected("decode", f"{type(exc).__name__}: {exc}") from exc
    rgb.info = {}  # nothing from the file's metadata may leak into renditions
    return rgb, media_type, original_size


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft_long_side: int | None = DRAFT_LONG_SIDE
) -> Image.Image:
    """An RGB image of the first frame, upright by its EXIF orientation, or ImageRejected.

    - "not_an_image": the magic bytes name no raster type (HTML, SVG, text, unknown).
    - "bomb": the header declares more than `max_pixels` pixels; nothing is decoded then.
    - "decode": the decoder failed (truncated, corrupt, unsupported variant).

    JPEGs are decoded at a reduced DCT scale when that still leaves at least
    `draft_long_side` pixels on the long side (None decodes at full size). Palette, alpha,
    CMYK, 16-bit and float modes all come back as 8-bit RGB.
    """
    rgb, _media_type, _size = _decode(data, max_pixels=max_pixels, draft_long_side=draft_long_side)
    return rgb


# ---------------------------------------------------------------------------------------------
# Hashing


@dataclass
class ImageDigest:
    """Everything Hotline keeps about an image once its bytes are dropped."""

    md5: str
    sha1: str
    sha256: str
    pdq: str
    pdq_quality: int
    pdq_dihedral: list[str] = field(default_factory=list)
    phash: str = ""
    width: int = 0  # original dimensions, upright, before any reduced-scale decode
    height: int = 0
    media_type: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pdq_input(image: Image.Image) -> np.ndarray:
    """The contiguous uint8 RGB array PDQ hashes: scaled to 512 x 512 when larger, as the
    reference hasher does before its own filtering."""
    rgb = _to_rgb(image)
    if rgb.width > PDQ_SIDE or rgb.height > PDQ_SIDE:
        rgb = rgb.resize((PDQ_SIDE, PDQ_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def pdq_hashes(image: Image.Image) -> tuple[str, int, list[str]]:
    """(PDQ hex, quality 0-100, the 8 dihedral PDQ hexes) of a decoded image."""
    dihedral, quality = _pdq.compute_dihedral(pdq_input(image))
    return dihedral[0], quality, dihedral


def hex_distance(a: str, b: str) -> int:
    """Hamming distance between two equal-length hex hashes."""
    if len(a) != len(b):
        raise ValueError("hashes of different lengths")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def pdq_dihedral_distance(dihedral: list[str], other: str) -> int:
    """The smallest distance from `other` to any of an image's dihedral PDQ hashes: how far
    apart two images are when one may be a mirrored or rotated copy of the other."""
    return min(hex_distance(h, other) for h in dihedral)


def digest_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[ImageDigest, Image.Image]:
    """Hash image bytes in memory: (digest, the decoded RGB image for previews).

    The returned image may be a reduced-scale decode (never under 512 px on its long side
    unless the original is smaller); the digest's width and height are the original's.
    Raises ImageRejected like `decode_image`; the byte hashes are cheap to recompute with
    `byte_hashes` for bytes that are rejected.
    """
    rgb, media_type, (width, height) = _decode(data, max_pixels=max_pixels, draft_long_side=DRAFT_LONG_SIDE)
    pdq, quality, dihedral = pdq_hashes(rgb)
    digest = ImageDigest(
        **byte_hashes(data),
        pdq=pdq,
        pdq_quality=quality,
        pdq_dihedral=dihedral,
        phash=str(imagehash.phash(rgb)),
        width=width,
        height=height,
        media_type=media_type,
    )
    return digest, rgb


def byte_hashes(data: bytes) -> dict[str, str]:
    """MD5, SHA-1 and SHA-256 of the bytes (MD5 and SHA-1 for exchange with hash lists only)."""
    return {
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


# ---------------------------------------------------------------------------------------------
# Previews


def _jpeg(image: Image.Image, *, quality: int = PREVIEW_QUALITY) -> bytes:
    out = io.BytesIO()
    # A fresh image carries no info dict, so no EXIF, ICC, XMP or comment can be written.
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    # No optimize=True: it doubles the encoding time (about 0.6 ms of a preview's 1.1 ms) to save ~4 %.
    clean.save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_preview(image: Image.Image, *, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """A JPEG of at most `max_side` px on the long side, RGB, quality 80, without metadata."""
    preview = _to_rgb(image)
    if max(preview.size) > max_side:  # thumbnail() works in place: on a copy, not the caller's image
        preview = preview.copy()
        preview.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _jpeg(preview)


def laplacian_variance(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the luma: the image's high-frequency energy."""
    luma = np.asarray(image.convert("L"), dtype=np.float64)
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    lap = (
        luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1]
    )  # fmt: skip
    return float(lap.var())


def blur_preview(jpeg: bytes, *, greyscale: bool = False) -> bytes:
    """A blurred JPEG of a preview, the same size, in which nothing identifiable remains.

    How: the preview is reduced (area average) to at most 16 px on its long side, then
    scaled back up and smoothed with a Gaussian of one tiny-pixel's width; optionally grey.

    Criterion (measurable, and what the tests check):
    1. Information bound: the output is a deterministic function of at most 16 x 16 colour
       samples, whatever the input: at most a colour impression of the layout survives.
    2. High-frequency energy: the Laplacian variance of the blurred image's luma
       (`laplacian_variance`) is below 2 % of the preview's, for detailed content
       (checkerboards, text-like strokes, shapes, noise).
    3. Not matchable: for high-detail images the PDQ distance between the blurred image and
       the preview, over all 8 dihedral variants, is above the match threshold (31), and the
       blurred image's PDQ quality is below 50, the level under which PDQ hashes are
       customarily discarded. (pHash is no part of the criterion: it only sees the 8 x 8
       lowest frequencies of a 32 px reduction, the coarse layout this blur keeps on purpose.)
    """
    source = decode_image(jpeg, max_pixels=PREVIEW_MAX_SIDE * PREVIEW_MAX_SIDE * 4, draft_long_side=None)
    if greyscale:
        source = source.convert("L")
    width, height = source.size
    scale = BLUR_TINY_SIDE / max(width, height)
    tiny_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    tiny = source.resize(tiny_size, Image.Resampling.BOX) if scale < 1 else source
    radius = max(width, height) / BLUR_TINY_SIDE
    blurred = tiny.resize((width, height), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(radius))
    return _jpeg(blurred)


def greyscale_preview(jpeg: bytes) -> bytes:
    """The same preview in greyscale (for an analyst who reveals with colour off), without metadata."""
    source = decode_image(jpeg, max_pixels=PREVIEW_MAX_SIDE * PREVIEW_MAX_SIDE * 4, draft_long_side=None)
    return _jpeg(source.convert("L"))


# ---------------------------------------------------------------------------------------------
# Encryption at rest


def _fernet(keys: list[str]) -> MultiFernet:
    if not keys:
        raise ValueError("at least one preview key is needed")
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_preview(jpeg: bytes, keys: list[str]) -> bytes:
    """A Fernet token of the preview, under the first key (the current one)."""
    return _fernet(keys).encrypt(jpeg)


def decrypt_preview(token: bytes, keys: list[str]) -> bytes:
    """The preview from a token made under any of `keys` (current first, then retired ones).
    Raises cryptography.fernet.InvalidToken when none of them fits or the token was altered."""
    return _fernet(keys).decrypt(token)


def reencrypt_preview(token: bytes, keys: list[str]) -> bytes:
    """The same preview re-encrypted under the first key, to retire older keys."""
    return _fernet(keys).rotate(token)
