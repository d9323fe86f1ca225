"""Synthetic images and a tiny loopback web site serving them: for tests, the demo and benchmarks.

Every picture is drawn in code (gradients, shapes, noise). Nothing here is, or resembles, real
material; the site only ever listens on a loopback address. Django-free.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image, ImageDraw, ImageOps, PngImagePlugin

# Variants an analyst would call "the same picture": each stays within PDQ distance 31 of the
# original (mirrored only through the dihedral hashes), measured in reports/tests/test_imaging.py.
VARIANTS = ("reencoded", "resized", "brightened", "greyscale", "cropped", "mirrored")


def scene(seed: int, width: int = 640, height: int = 480) -> Image.Image:
    """A generated picture: a coloured gradient with random ellipses, boxes and polygons."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x / width + np.sin(angle) * y / height + 1) / 2
    colours = rng.integers(0, 256, (2, 3))
    base = colours[0] * ramp[..., None] + colours[1] * (1 - ramp[..., None])
    image = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = int(rng.integers(-width // 4, width)), int(rng.integers(-height // 4, height))
        x1, y1 = x0 + int(rng.integers(width // 10, width // 2)), y0 + int(rng.integers(height // 10, height // 2))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=fill)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=fill)
        else:
            draw.polygon([(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(5)], fill=fill)
    return image


def reference_array() -> np.ndarray:
    """A 320 x 240 RGB picture from integer arithmetic alone, so its pixels (and the hashes pinned
    in the tests against Meta's reference hasher) are the same on every machine."""
    y, x = np.mgrid[0:240, 0:320]
    r, g = x * 255 // 319, y * 255 // 239
    b = ((x // 40 + y // 40) % 2) * 120 + 60
    disc = (x - 110) ** 2 + (y - 100) ** 2 < 60**2
    bar = (x > 200) & (x < 280) & (y > 30) & (y < 210)
    r = np.where(disc, 230, np.where(bar, 20, r))
    g = np.where(disc, 40, np.where(bar, 200, g))
    b = np.where(disc, 40, np.where(bar, 90, b))
    return np.stack([r, g, b], -1).astype(np.uint8)


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        params.setdefault("quality", 90)
    image.save(out, fmt, **params)
    return out.getvalue()


def variant(image: Image.Image, name: str) -> Image.Image:
    """One of VARIANTS of `image` (re-encoding happens in `variant_bytes`)."""
    width, height = image.size
    if name == "reencoded":
        return image
    if name == "resized":
        return image.resize((width // 2, height // 2), Image.Resampling.LANCZOS)
    if name == "brightened":
        lut = [round(255 * (value / 255) ** 0.8) for value in range(256)]
        return image.point(lut * 3)
    if name == "greyscale":
        return ImageOps.grayscale(image).convert("RGB")
    if name == "cropped":
        dx, dy = width // 100, height // 100
        return image.crop((dx, dy, width - dx, height - dy))
    if name == "mirrored":
        return ImageOps.mirror(image)
    raise ValueError(f"unknown variant {name!r}")


def variant_bytes(seed: int, name: str) -> bytes:
    return encode(variant(scene(seed), name), "JPEG", quality=70 if name == "reencoded" else 90)


def ai_tagged_png(seed: int) -> bytes:
    """A PNG carrying the `parameters` text chunk that Stable Diffusion web UIs write."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "synthetic test prompt\nSteps: 20, Sampler: Euler a, Model: synthetic-demo")
    return encode(scene(seed), "PNG", pnginfo=info)


def bomb_png(side: int = 30_000) -> bytes:
    """A tiny PNG that declares side x side pixels of one grey: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    raw = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # far fewer rows than declared: never decoded
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def gallery_html(image_paths: list[str], *, title: str = "Synthetic gallery") -> bytes:
    items = "\n".join(f'<a href="{path}"><img src="{path}" alt=""></a>' for path in image_paths)
    return f"<!doctype html><html><head><title>{title}</title></head><body>{items}</body></html>".encode()


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "image/jpeg"
    headers: dict[str, str] | None = None
    drip_seconds: float = 0.0  # send one byte per interval (a slow server)


Route = Callable[[], Response]


def default_routes() -> dict[str, Route]:
    """The demo's and the tests' site: originals, variants, galleries, AI-tagged, hostile answers."""
    routes: dict[str, Route] = {}
    for seed in range(1, 9):
        routes[f"/img/{seed}.jpg"] = lambda seed=seed: Response(body=encode(scene(seed)))
        for name in VARIANTS:
            routes[f"/img/{seed}/{name}.jpg"] = lambda seed=seed, name=name: Response(body=variant_bytes(seed, name))
    routes["/gallery/1.html"] = lambda: Response(
        body=gallery_html(["/img/3.jpg", "/img/4.jpg", "/img/5.jpg", "/img/1/mirrored.jpg"]), content_type="text/html"
    )
    routes["/ai/1.png"] = lambda: Response(body=ai_tagged_png(20), content_type="image/png")
    routes["/dead.jpg"] = lambda: Response(status=404, body=b"not found", content_type="text/plain")
    routes["/error.jpg"] = lambda: Response(status=500, body=b"oops", content_type="text/plain")
    routes["/fake.jpg"] = lambda: Response(body=b"<html><body>not an image</body></html>", content_type="image/jpeg")
    routes["/bomb.png"] = lambda: Response(body=bomb_png(), content_type="image/png")
    routes["/huge.jpg"] = lambda: Response(body=b"\xff\xd8\xff" + b"\0" * (25 * 2**20))
    routes["/gzip-bomb.jpg"] = lambda: Response(
        body=gzip.compress(b"\0" * (64 * 2**20), 9), headers={"Content-Encoding": "gzip"}
    )
    routes["/slow.jpg"] = lambda: Response(body=encode(scene(7)), drip_seconds=0.5)
    routes["/redirect/1"] = lambda: Response(status=302, headers={"Location": "/img/6.jpg"}, content_type="text/plain")
    return routes


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, Route] = {}
    hits: dict[str, int] = {}
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        type(self).hits[path] = type(self).hits.get(path, 0) + 1
        route = self.routes.get(path)
        response = route() if route else Response(status=404, body=b"not found", content_type="text/plain")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in (response.headers or {}).items():
            self.send_header(name, value)
        if not response.drip_seconds:
            self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            if response.drip_seconds:
                for index in range(len(response.body)):
                    self.wfile.write(response.body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(response.drip_seconds)
            else:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


class SyntheticSite:
    """A threaded HTTP server on a loopback address serving `routes` (default_routes() if None)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, routes: dict[str, Route] | None = None) -> None:
        if not host.startswith("127.") and host != "::1":
            raise ValueError("the synthetic site only listens on loopback addresses")
        handler = type("Handler", (_Handler,), {"routes": default_routes() if routes is None else routes, "hits": {}})
        self.handler = handler
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="synthetic-site", daemon=True
        )

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.authority}{path}"

    @property
    def hits(self) -> dict[str, int]:
        return self.handler.hits

    def start(self) -> SyntheticSite:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> SyntheticSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
