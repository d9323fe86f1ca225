"""Helpers for the analyst workspace tests: real cases holding real contents with encrypted
previews of pictures drawn in code (reports.lib.synthetic), made through the intake and triage
services. Nothing here is, or resembles, real material."""

from __future__ import annotations

import functools
import io
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from reports.lib.imaging import decrypt_preview, digest_image, encrypt_preview, laplacian_variance, make_preview
from reports.lib.synthetic import encode, scene
from reports.models import Case, Content, Url
from reports.services.triage import case_for_url
from reports.tests.factories import make_public_report, unique_url


@functools.cache
def _image_bytes(seed: int) -> bytes:
    return encode(scene(seed))


def make_content(seed: int, *, matched: bool = True, image: Image.Image | None = None, **overrides: object) -> Content:
    """A Content row as fetching makes it (hashes, an encrypted <= 512 px preview) for picture `seed`,
    or for `image` (another picture drawn in code) when given."""
    data = _image_bytes(seed) if image is None else encode(image)
    digest, image = digest_image(data)
    fields: dict[str, object] = {
        "sha256": digest.sha256,
        "md5": digest.md5,
        "sha1": digest.sha1,
        "pdq": digest.pdq,
        "pdq_quality": digest.pdq_quality,
        "pdq_dihedral": digest.pdq_dihedral,
        "phash": digest.phash,
        "media_type": digest.media_type,
        "width": digest.width,
        "height": digest.height,
        "byte_count": len(data),
        "preview": encrypt_preview(make_preview(image), settings.HOTLINE_PREVIEW_KEYS),
        "matched_at": timezone.now() if matched else None,
    }
    fields.update(overrides)
    content, _created = Content.objects.get_or_create(sha256=digest.sha256, defaults=fields)
    return content


def make_case(
    *seeds: int, url: str | None = None, age: timedelta | None = None, contents: list[Content] | None = None, **report
) -> Case:
    """A public report of one URL whose case holds the contents of pictures `seeds` (or `contents`),
    placed in its queue by the triage service. `age` backdates the case."""
    make_public_report(urls=[url or unique_url()], **report)
    row = Url.objects.order_by("-pk").first()
    assert row is not None
    with transaction.atomic():
        case = case_for_url(url=row, contents=contents if contents is not None else [make_content(s) for s in seeds])
    if age is not None:
        Case.objects.filter(pk=case.pk).update(created_at=timezone.now() - age)
    case.refresh_from_db()
    return case


def sharp_preview(content: Content) -> bytes:
    content = Content.objects.get(pk=content.pk)
    return decrypt_preview(bytes(content.preview), settings.HOTLINE_PREVIEW_KEYS)


def sharpness(jpeg: bytes) -> float:
    return laplacian_variance(Image.open(io.BytesIO(jpeg)))


def response_bytes(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content
