"""Provenance signals: generator metadata, IPTC digital source type, C2PA, SD watermark.

Every picture here is synthetic, drawn in code; C2PA manifests are signed in memory with a
throw-away certificate chain made by the test itself.
"""

from __future__ import annotations

import datetime
import io
import json
import zlib

import c2pa
import numpy as np
import pytest
import pywt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, ImageDraw, PngImagePlugin

from reports.lib import imaging
from reports.lib.provenance import (
    IPTC_DST_PREFIX,
    MAX_VALUE_LENGTH,
    SD_WATERMARKS,
    haar_approximation,
    read_provenance,
)

TRAINED = IPTC_DST_PREFIX + "trainedAlgorithmicMedia"


def picture(seed: int = 1, width: int = 320, height: int = 240) -> Image.Image:
    """A generated picture in muted colours: a gradient and a few ellipses and boxes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([60 + x * 120 // width, 60 + y * 120 // height, 60 + (x + y) * 120 // (width + height)], -1)
    image = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = [x0, y0, x0 + int(rng.integers(20, width // 2)), y0 + int(rng.integers(20, height // 2))]
        fill = tuple(int(c) for c in rng.integers(40, 216, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def png_with_text(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return encode(picture(), "PNG", pnginfo=info)


def xmp_packet(source_type: str, *, as_element: bool = False) -> bytes:
    value = f"<Iptc4xmpExt:DigitalSourceType>{source_type}</Iptc4xmpExt:DigitalSourceType>" if as_element else ""
    attribute = "" if as_element else f' Iptc4xmpExt:DigitalSourceType="{source_type}"'
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        f"{attribute}>{value}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def assert_not_flagged(result: dict) -> None:
    assert result["ai_indicated"] is False, result["reasons"]
    assert result["reasons"] == []


# ---------------------------------------------------------------------------------------------
# Generator metadata


def test_plain_generated_images_are_not_flagged():
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP"):
        result = read_provenance(encode(picture(2), fmt))
        assert_not_flagged(result)
        assert result["signals"] == [], fmt


def test_sd_webui_parameters_chunk_is_flagged():
    data = png_with_text(parameters="a lighthouse at dusk\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    result = read_provenance(data)
    assert result["ai_indicated"] is True
    assert any('"parameters"' in reason and "Stable Diffusion web UI" in reason for reason in result["reasons"])
    assert {"source": "png:tEXt", "name": "parameters"}.items() <= result["signals"][0].items()


@pytest.mark.parametrize("key", ["prompt", "workflow"])
def test_comfyui_chunks_are_flagged(key):
    result = read_provenance(png_with_text(**{key: json.dumps({"3": {"class_type": "KSampler"}})}))
    assert result["ai_indicated"] is True
    assert any(f'"{key}"' in reason and "ComfyUI" in reason for reason in result["reasons"])


def test_text_chunk_after_image_data_and_compressed_are_read():
    data = encode(picture(), "PNG")
    iend = data.rindex(b"IEND") - 4
    body = b"Software\x00\x00" + zlib.compress(b"NovelAI")
    chunk = len(body).to_bytes(4, "big") + b"zTXt" + body + zlib.crc32(b"zTXt" + body).to_bytes(4, "big")
    result = read_provenance(data[:iend] + chunk + data[iend:])
    assert result["ai_indicated"] is True
    assert result["reasons"] == ['PNG text chunk "Software" names NovelAI']


def test_software_naming_an_ordinary_editor_is_a_signal_but_not_ai():
    result = read_provenance(png_with_text(Software="GIMP 2.10", Comment="holiday snapshot"))
    assert_not_flagged(result)
    assert {"source": "png:tEXt", "name": "Software", "value": "GIMP 2.10"} in result["signals"]


def test_spanish_imagen_is_not_google_imagen():
    exif = Image.Exif()
    exif[0x010E] = "Imagen de una playa al atardecer"
    assert_not_flagged(read_provenance(encode(picture(), "JPEG", exif=exif.tobytes())))


def test_exif_software_stable_diffusion_is_flagged():
    exif = Image.Exif()
    exif[0x0131] = "Stable Diffusion XL 1.0"
    result = read_provenance(encode(picture(), "JPEG", quality=90, exif=exif.tobytes()))
    assert result["ai_indicated"] is True
    assert result["reasons"] == ["EXIF Software names Stable Diffusion"]
    assert {"source": "exif", "name": "Software", "value": "Stable Diffusion XL 1.0"} in result["signals"]


def test_exif_user_comment_with_webui_parameters_is_flagged():
    exif = Image.Exif()
    text = "portrait, oil\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 6, Seed: 42, Model: custom"
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode("utf-16-be")
    result = read_provenance(encode(picture(), "JPEG", exif=exif.tobytes()))
    assert result["ai_indicated"] is True
    assert result["reasons"] == ["EXIF UserComment holds diffusion generation parameters"]


@pytest.mark.parametrize("make", ["Midjourney", "DALL-E 3", "Adobe Firefly", "ComfyUI", "InvokeAI 4.2", "FLUX.1 dev"])
def test_exif_fields_naming_generators_are_flagged(make):
    exif = Image.Exif()
    exif[0x010F] = make
    assert read_provenance(encode(picture(), "WEBP", exif=exif.tobytes()))["ai_indicated"] is True


# ---------------------------------------------------------------------------------------------
# IPTC digital source type in XMP


def test_xmp_in_png_itxt_is_flagged():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(TRAINED).decode(), zip=True)
    result = read_provenance(encode(picture(), "PNG", pnginfo=info))
    assert result["ai_indicated"] is True
    assert any("trainedAlgorithmicMedia" in reason and reason.startswith("XMP") for reason in result["reasons"])
    assert {"source": "xmp", "name": "DigitalSourceType", "value": TRAINED} in result["signals"]


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("as_element", [False, True])
def test_xmp_in_jpeg_and_webp_is_flagged(fmt, as_element):
    result = read_provenance(encode(picture(), fmt, xmp=xmp_packet(TRAINED, as_element=as_element)))
    assert result["ai_indicated"] is True
    assert "trainedAlgorithmicMedia" in result["reasons"][0]


@pytest.mark.parametrize(
    ("code", "flagged"),
    [
        ("compositeWithTrainedAlgorithmicMedia", True),
        ("algorithmicMedia", True),
        ("compositeSynthetic", True),
        ("digitalCapture", False),
        ("algorithmicallyEnhanced", False),
    ],
)
def test_source_types(code, flagged):
    result = read_provenance(encode(picture(), "JPEG", xmp=xmp_packet(IPTC_DST_PREFIX + code)))
    assert result["ai_indicated"] is flagged
    assert {"source": "xmp", "name": "DigitalSourceType", "value": IPTC_DST_PREFIX + code} in result["signals"]


# ---------------------------------------------------------------------------------------------
# C2PA


@pytest.fixture(scope="module")
def signing_chain():
    """A throw-away test CA and ES256 signing certificate, made in memory."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ee_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hotline test root")])
    ee_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Hotline test signer"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hotline tests"),
        ]
    )

    def certificate(subject, public_key, *, ca: bool):
        usage = dict.fromkeys(
            (
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    ca = certificate(ca_name, ca_key.public_key(), ca=True)
    ee = certificate(ee_name, ee_key.public_key(), ca=False)
    pem = serialization.Encoding.PEM
    chain = ee.public_bytes(pem) + ca.public_bytes(pem)
    key = ee_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain.decode(), key.decode(), ca.public_bytes(pem).decode()


def sign_c2pa(asset: bytes, mime: str, chain, *, source_type: str, generator: str = "Hotline Test Generator") -> bytes:
    certs, key, _anchor = chain
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "generated",
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]},
            }
        ],
    }
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, certs.encode(), key.encode(), None)
    signer = c2pa.Signer.from_info(info)
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    with signer, context, c2pa.Builder(manifest, context=context) as builder:
        builder.sign(signer, mime, io.BytesIO(asset), out)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_c2pa_ai_generated_is_flagged_with_claim_generator(signing_chain, fmt, mime):
    signed = sign_c2pa(encode(picture(3), fmt), mime, signing_chain, source_type=TRAINED)
    result = read_provenance(signed)
    assert result["ai_indicated"] is True
    [reason] = result["reasons"]
    assert reason.startswith("C2PA manifest (valid signature, signer not on the trust list) records c2pa.created")
    assert "by Hotline Test Generator 1.0" in reason
    assert "trainedAlgorithmicMedia" in reason
    assert {"source": "c2pa", "name": "manifest", "value": "Valid"} in result["signals"]
    assert {"source": "c2pa", "name": "claim_generator", "value": "Hotline Test Generator 1.0"} in result["signals"]
    assert {"source": "c2pa", "name": "signer", "value": "Hotline tests / Hotline test signer"} in result["signals"]


def test_c2pa_trust_anchors_make_the_signer_trusted(signing_chain):
    signed = sign_c2pa(encode(picture(4), "JPEG"), "image/jpeg", signing_chain, source_type=TRAINED)
    result = read_provenance(signed, c2pa_trust_anchors=signing_chain[2])
    assert {"source": "c2pa", "name": "manifest", "value": "Trusted"} in result["signals"]
    assert "(trusted signer)" in result["reasons"][0]


def test_c2pa_camera_capture_is_a_signal_but_not_ai(signing_chain):
    signed = sign_c2pa(
        encode(picture(5), "JPEG"), "image/jpeg", signing_chain, source_type=IPTC_DST_PREFIX + "digitalCapture"
    )
    result = read_provenance(signed)
    assert_not_flagged(result)
    assert {"source": "c2pa", "name": "action", "value": "c2pa.created digitalCapture"} in result["signals"]


def test_c2pa_tampered_image_is_reported_invalid(signing_chain):
    signed = bytearray(sign_c2pa(encode(picture(6), "JPEG"), "image/jpeg", signing_chain, source_type=TRAINED))
    signed[-100] ^= 0xFF  # inside the entropy-coded picture, which the manifest's hash covers
    result = read_provenance(bytes(signed))
    assert {"source": "c2pa", "name": "manifest", "value": "Invalid"} in result["signals"]
    assert "INVALID" in result["reasons"][0]


def test_c2pa_generator_name_alone_is_flagged(signing_chain):
    signed = sign_c2pa(
        encode(picture(7), "JPEG"),
        "image/jpeg",
        signing_chain,
        source_type=IPTC_DST_PREFIX + "digitalCreation",
        generator="Adobe Firefly",
    )
    result = read_provenance(signed)
    assert result["reasons"] == [
        "C2PA manifest (valid signature, signer not on the trust list) "
        "claim generator Adobe Firefly 1.0 is Adobe Firefly"
    ]


# ---------------------------------------------------------------------------------------------
# Stable Diffusion's invisible watermark


def embed_dwtdct(bgr: np.ndarray, bits: list[int], scale: float = 36.0) -> np.ndarray:
    """invisible-watermark's dwtDct encoder, ported to numpy/pywt for the test (BGR in, BGR
    out, like the library; OpenCV's 8-bit YUV conversions reproduced in its fixed-point
    arithmetic): in the Haar approximation band of the U channel, the largest non-DC
    coefficient of each 4x4 block moves to the lower (bit 0) or upper (bit 1) quarter of its
    `scale` interval."""
    b, g, r = (bgr[..., i].astype(np.int64) for i in range(3))
    y = (b * 1868 + g * 9617 + r * 4899 + 8192) >> 14
    u = np.clip(((b - y) * 8061 + (128 << 14) + 8192) >> 14, 0, 255)
    v = np.clip(((r - y) * 14369 + (128 << 14) + 8192) >> 14, 0, 255)
    rows, cols = bgr.shape[0] // 4 * 4, bgr.shape[1] // 4 * 4
    approx, (horizontal, vertical, diagonal) = pywt.dwt2(u[:rows, :cols].astype(np.float64), "haar")
    number = 0
    for i in range(approx.shape[0] // 4):
        for j in range(approx.shape[1] // 4):
            block = approx[i * 4 : i * 4 + 4, j * 4 : j * 4 + 4]
            position = int(np.argmax(np.abs(block.flatten()[1:]))) + 1
            value = block.flat[position]
            moved = (abs(value) // scale + 0.25 + 0.5 * bits[number % len(bits)]) * scale
            block.flat[position] = moved if value >= 0 else -moved
            number += 1
    # The library writes the inverse back into a uint8 array (truncating), with the detail
    # bands passed in swapped order, as it does.
    inverse = pywt.idwt2((approx, (vertical, horizontal, diagonal)), "haar")
    u[:rows, :cols] = np.clip(inverse, 0, 255).astype(np.uint8)
    u, v = u - 128, v - 128
    out = np.stack(
        [y + ((u * 33292 + 8192) >> 14), y + ((u * -6472 + v * -9519 + 8192) >> 14), y + ((v * 18678 + 8192) >> 14)],
        -1,
    )
    return np.clip(out, 0, 255).astype(np.uint8)


def textured(seed: int) -> np.ndarray:
    """A 512 px picture with fine grain, as generated photos have. (The library's embedding is
    lossy on perfectly flat areas: its own decoder then misses bits too.)"""
    grain = np.random.default_rng(seed).integers(-12, 13, (512, 512, 3))
    return np.clip(np.asarray(picture(seed, 512, 512), int) + grain, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mark", list(SD_WATERMARKS))
def test_stable_diffusion_watermark_is_flagged(mark):
    rgb = textured(8)
    marked = Image.fromarray(embed_dwtdct(rgb[..., ::-1], SD_WATERMARKS[mark])[..., ::-1].copy())
    data = encode(marked, "PNG")
    digest, image = imaging.digest_image(data)
    result = read_provenance(data, image)
    assert result["ai_indicated"] is True
    assert result["reasons"] == [f"invisible watermark of {mark}"]
    assert hasattr(digest, "pdq")


def test_haar_approximation_is_pywt_bit_for_bit():
    values = np.random.default_rng(5).integers(0, 256, (64, 96)).astype(np.float64)
    assert np.array_equal(haar_approximation(values), pywt.dwt2(values, "haar")[0])


def test_diffusers_channel_order_watermark_is_flagged():
    rgb = textured(9)
    marked = embed_dwtdct(rgb, SD_WATERMARKS["Stable Diffusion XL"])  # RGB handed over as if BGR
    assert read_provenance(encode(Image.fromarray(marked), "PNG"))["ai_indicated"] is True


def test_unmarked_images_do_not_match_a_watermark():
    for seed in range(10, 25):
        assert_not_flagged(read_provenance(encode(Image.fromarray(textured(seed)), "PNG", compress_level=1)))


# ---------------------------------------------------------------------------------------------
# Robustness


def test_result_is_json_ready_and_values_are_bounded():
    long_prompt = "x" * 5000 + "\x00hidden"
    result = read_provenance(png_with_text(parameters=long_prompt, Software="NovelAI\x00"))
    assert json.loads(json.dumps(result)) == result
    assert all(len(signal["value"]) <= MAX_VALUE_LENGTH for signal in result["signals"])
    assert "\x00" not in json.dumps(result, ensure_ascii=False)


def test_zlib_bomb_in_text_chunk_is_capped():
    data = encode(picture(), "PNG")
    body = b"Comment\x00\x00" + zlib.compress(b"a" * 50_000_000, 9)
    chunk = len(body).to_bytes(4, "big") + b"zTXt" + body + zlib.crc32(b"zTXt" + body).to_bytes(4, "big")
    result = read_provenance(data[:33] + chunk + data[33:])  # right after IHDR
    assert_not_flagged(result)


def test_non_images_give_empty_result():
    for data in (b"<html><body>hi</body></html>", b"", b"\x89PNG\r\n\x1a\n\x00\x00"):
        result = read_provenance(data)
        assert_not_flagged(result)
        assert result["signals"] == []
