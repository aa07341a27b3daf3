"""Images made safe and small before they are stored or sent on, with Pillow.

`clean_image` re-encodes an image in its own format with its pixels only: the EXIF block (the
camera, the time, the GPS location), XMP, comments and text chunks are dropped, after the EXIF
orientation has been applied to the pixels so the picture still stands the right way up. The
ICC colour profile is kept, since it says how to show the colours and nothing about the person.
`thumbnail` makes the small copy the list and the thread show: WebP, which keeps transparency,
at most `thumbnail_side_px` on its longer side, never enlarged.

Only JPEG, PNG, GIF and WebP are opened. An animated GIF or WebP keeps its first frame: the
platforms send animations as MP4 video, every further frame would multiply the decoding work
the pixel limit bounds, and a still of the first frame is what a message shows anyway.

A decompression bomb (a few kilobytes that declare billions of pixels) is refused before any
pixel is decoded: `Image.open` reads only the header, and its declared size is checked against
`max_pixels`. Pillow's own guard (`Image.MAX_IMAGE_PIXELS`) is set to the same default and its
error mapped to the same `ImageTooLarge`, so it stays a second line: a `max_pixels` raised above
twice the default is still refused there. Truncated or corrupt bytes give `BadImage`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from hub.errors import BadRequest, TooBig

MAX_PIXELS = 50_000_000  # well above any phone camera (a 200-megapixel sensor saves 12.5 MP)
THUMBNAIL_SIDE_PX = 320
QUALITY = 85  # a re-encoded JPEG or WebP: no visible loss, about the size of the original
THUMBNAIL_QUALITY = 80
# libwebp's effort (0-6, default 4): at 1 a 320-pixel thumbnail of a photo encodes two to six
# times faster and comes out about a quarter larger (4 KB instead of 3): every photo that
# arrives pays this, the bytes hardly matter.
THUMBNAIL_METHOD = 1

# Pillow's process-wide guard, for any image opened elsewhere; ours is checked first.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


class BadImage(BadRequest):
    code = "bad_image"
    default_message = "The image is truncated or corrupt."


class ImageTooLarge(TooBig):
    code = "image_too_large"
    default_message = "The image has more pixels than the hub accepts."


@dataclass(frozen=True, slots=True)
class CleanImage:
    data: bytes
    content_type: str
    width: int
    height: int


def clean_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> CleanImage:
    """`data` re-encoded in its own format without its metadata, upright."""
    with _opened(data, max_pixels) as image:
        fmt = image.format or ""
        upright = _upright(image)
        params: dict[str, Any] = {"quality": QUALITY} if fmt in ("JPEG", "WEBP") else {}
        # Transparency lives in `info` for palette images; it is pixels, not metadata.
        if "transparency" in image.info and upright.mode in ("P", "L", "RGB"):
            params["transparency"] = image.info["transparency"]
        icc = image.info.get("icc_profile")
        if icc and fmt != "GIF":
            params["icc_profile"] = icc
        return _encode(upright, fmt, params)


def thumbnail(
    data: bytes, *, thumbnail_side_px: int = THUMBNAIL_SIDE_PX, max_pixels: int = MAX_PIXELS
) -> CleanImage:
    """A WebP copy of `data` at most `thumbnail_side_px` on its longer side, upright and
    without metadata."""
    if thumbnail_side_px < 1:
        raise ValueError("thumbnail_side_px must be at least 1")
    with _opened(data, max_pixels) as image:
        alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        # A JPEG is decoded at the smallest scale that still covers the box: far less work.
        image.draft("RGB", (thumbnail_side_px, thumbnail_side_px))
        small = _upright(image, "RGBA" if alpha else "RGB")
        small.thumbnail((thumbnail_side_px, thumbnail_side_px), Image.Resampling.LANCZOS)
        return _encode(small, "WEBP", {"quality": THUMBNAIL_QUALITY, "method": THUMBNAIL_METHOD})


@contextmanager
def _opened(data: bytes, max_pixels: int) -> Iterator[Image.Image]:
    try:
        with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"The image declares {width}x{height} pixels; the limit is {max_pixels}."
                )
            yield image
    except Image.DecompressionBombError:
        raise ImageTooLarge() from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as exc:
        # UnidentifiedImageError, "image file is truncated", broken chunks and headers.
        raise BadImage() from exc


def _upright(image: Image.Image, mode: str | None = None) -> Image.Image:
    """The first frame's pixels turned as its EXIF orientation says (and converted to `mode`),
    in a new image that carries no metadata at all."""
    image.seek(0)
    image.load()
    turned = ImageOps.exif_transpose(image)
    if mode is not None and turned.mode != mode:
        turned = turned.convert(mode)  # before the copy: a palette's transparency is in `info`
    bare = Image.new(turned.mode, turned.size)
    if turned.mode == "P":
        palette = turned.getpalette()
        if palette is not None:
            bare.putpalette(palette)
    bare.paste(turned, (0, 0))
    return bare


def _encode(image: Image.Image, fmt: str, params: dict[str, Any]) -> CleanImage:
    out = io.BytesIO()
    try:
        image.save(out, format=fmt, **params)
    except (OSError, ValueError) as exc:
        raise BadImage("The image cannot be re-encoded.") from exc
    return CleanImage(out.getvalue(), _FORMATS[fmt], image.width, image.height)
