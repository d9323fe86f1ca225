"""Find the image links in a fetched HTML page. Django-free.

A reported page is rarely the picture itself: the picture is in an <img>, a srcset, a lazy-loading
attribute, the page's og:image, or a plain link to a .jpg. The fetch task captures each link found
here as a child of the page's capture. The stdlib parser is used on purpose: it never gives up on
broken markup, which is the normal state of the pages reported to a hotline.
"""

from __future__ import annotations

import contextlib
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".pjpeg",
    ".png",
    ".apng",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".avif",
    ".heic",
    ".heif",
)
# <meta property|name=...> whose content is the page's representative image.
IMAGE_META = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src", "thumbnailurl"}
)
# Attributes that hold one image URL, per tag. data-* are the usual lazy-loading spellings.
_SRC_ATTRIBUTES = {
    "img": ("src", "data-src", "data-original", "data-lazy-src"),
    "input": ("src",),  # only for type=image, checked below
    "video": ("poster",),
}
_SRCSET_ATTRIBUTES = ("srcset", "data-srcset")
_WHITESPACE = " \t\n\r\f"
_STRIP_INSIDE = re.compile(r"[\t\n\r]")  # the URL parser drops these anywhere in a URL


def parse_srcset(value: str) -> list[str]:
    """The URL of every candidate in a srcset, following the HTML standard's parsing steps."""
    urls: list[str] = []
    position, length = 0, len(value)
    while position < length:
        while position < length and (value[position] in _WHITESPACE or value[position] == ","):
            position += 1
        start = position
        while position < length and value[position] not in _WHITESPACE:
            position += 1
        url = value[start:position]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            # Skip the descriptors ("2x", "640w"), up to the comma that is not inside parentheses.
            depth = 0
            while position < length:
                char = value[position]
                if char == "(":
                    depth += 1
                elif char == ")" and depth:
                    depth -= 1
                elif char == "," and not depth:
                    position += 1
                    break
                position += 1
        if url:
            urls.append(url)
    return urls


class _ImageLinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base_href: str | None = None
        self.raw: list[tuple[str, bool]] = []  # (value, only if it names an image file)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "base":
            if self.base_href is None and values.get("href", "").strip():
                self.base_href = values["href"]
            return
        if tag == "input" and values.get("type", "").strip().lower() != "image":
            return
        for name in _SRC_ATTRIBUTES.get(tag, ()):
            if values.get(name):
                self.raw.append((values[name], False))
        if tag in ("img", "source"):
            for name in _SRCSET_ATTRIBUTES:
                self.raw.extend((url, False) for url in parse_srcset(values.get(name, "")))
        elif tag == "meta":
            key = (values.get("property") or values.get("name") or values.get("itemprop") or "").strip().lower()
            if key in IMAGE_META and values.get("content"):
                self.raw.append((values["content"], False))
        elif tag == "link":
            rels = values.get("rel", "").lower().split()
            if "image_src" in rels and values.get("href"):
                self.raw.append((values["href"], False))
        elif tag == "a" and values.get("href"):
            self.raw.append((values["href"], True))


def _decode(html: bytes) -> str:
    if html.startswith((b"\xff\xfe", b"\xfe\xff")):
        return html.decode("utf-16", errors="replace")
    return html.decode("utf-8-sig", errors="replace")


def _is_image_path(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS)


def extract_image_links(html: bytes, base_url: str, *, limit: int = 50) -> list[str]:
    """Absolute http(s) URLs of the images a page shows or links to, in document order, at most `limit`.

    Covers <img src> (and common lazy-loading attributes), every srcset candidate (also on <source>),
    og:image / twitter:image meta, <link rel=image_src>, <video poster>, <input type=image>, and
    <a href> whose path ends in an image extension. Relative URLs resolve against <base href> when
    the page has one (the first, as browsers do), else against `base_url`. Fragments are dropped and
    duplicates removed.
    """
    if limit <= 0:
        return []
    parser = _ImageLinkParser()
    # Whatever was parsed before markup broke the parser still counts.
    with contextlib.suppress(Exception):
        parser.feed(_decode(html))
        parser.close()
    base = base_url
    if parser.base_href is not None:
        candidate = urljoin(base_url, _clean(parser.base_href))
        if urlsplit(candidate).scheme.lower() in ("http", "https"):
            base = candidate
    links: list[str] = []
    seen: set[str] = set()
    for value, needs_image_path in parser.raw:
        cleaned = _clean(value)
        if not cleaned:
            continue
        try:
            url = urljoin(base, cleaned).partition("#")[0]
            parts = urlsplit(url)
        except ValueError:  # e.g. an unbalanced "[" in the host
            continue
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            continue
        if needs_image_path and not _is_image_path(url):
            continue
        if url not in seen:
            seen.add(url)
            links.append(url)
            if len(links) >= limit:
                break
    return links


def _clean(value: str) -> str:
    return _STRIP_INSIDE.sub("", value.strip(_WHITESPACE))
