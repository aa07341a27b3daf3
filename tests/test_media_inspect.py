"""What a stored file is (its type from its own bytes, against the allowlist) and images made
safe and small: metadata stripped, orientation kept, thumbnails, bombs and broken bytes refused.
Every image is made here with Pillow; every signature is written here byte by byte."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from hub.errors import BadRequest, TooBig
from hub.media.images import BadImage, CleanImage, ImageTooLarge, clean_image, thumbnail
from hub.media.kinds import ALLOWED, Kind, UnsupportedMediaType, sniff

pytestmark = pytest.mark.unit

RED, BLUE = (255, 0, 0), (0, 0, 255)
SECRETS = (b"SecretCam", b"41.0082", b"xmp-secret", b"comment-secret", b"Istanbul")


def _halves(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: after a quarter turn the halves say which way it went."""
    image = Image.new(mode, (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    return image


def _exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "SecretCam"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (41.0, 0.0, 29.52),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (28.0, 58.0, 0.0),
        ExifTags.GPS.GPSAreaInformation: "41.0082 Istanbul",
    }
    return exif


def _jpeg(width: int = 40, height: int = 20, orientation: int = 1) -> bytes:
    out = io.BytesIO()
    _halves(width, height).save(
        out,
        "JPEG",
        exif=_exif(orientation),
        xmp=b"<x:xmpmeta>xmp-secret</x:xmpmeta>",
        comment=b"comment-secret",
    )
    return out.getvalue()


def _png(size: tuple[int, int] = (30, 10), mode: str = "RGB") -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "41.0082 Istanbul")
    info.add_itxt("Comment", "comment-secret", zip=True)
    out = io.BytesIO()
    _halves(*size, mode=mode).save(out, "PNG", pnginfo=info, exif=_exif())
    return out.getvalue()


def _webp() -> bytes:
    out = io.BytesIO()
    _halves(30, 10).save(out, "WEBP", exif=_exif(), xmp=b"<x:xmpmeta>xmp-secret</x:xmpmeta>")
    return out.getvalue()


def _gif(frames: int = 3) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", (16, 8), colours[index % 4]) for index in range(frames)]
    out = io.BytesIO()
    images[0].save(
        out, "GIF", save_all=True, append_images=images[1:], comment=b"comment-secret", loop=0
    )
    return out.getvalue()


def _noisy_gif() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").quantize(64).save(out, "GIF")
    return out.getvalue()


def _reopened(clean: CleanImage) -> Image.Image:
    image = Image.open(io.BytesIO(clean.data))
    image.load()
    return image


def _assert_bare(clean: CleanImage) -> None:
    image = _reopened(clean)
    assert not image.getexif(), "EXIF survived"
    assert "exif" not in image.info and "xmp" not in image.info
    assert "comment" not in image.info and "Location" not in image.info
    assert "Comment" not in image.info
    for secret in SECRETS:
        assert secret not in clean.data, secret


# Images: metadata


def test_a_jpeg_loses_its_exif_gps_xmp_and_comment_and_stands_upright() -> None:
    original = _jpeg(40, 20, orientation=6)
    before = Image.open(io.BytesIO(original))
    assert before.getexif().get_ifd(ExifTags.IFD.GPSInfo), "the fixture has a location"
    assert b"SecretCam" in original and b"xmp-secret" in original

    clean = clean_image(original)

    assert clean.content_type == "image/jpeg"
    _assert_bare(clean)
    # Orientation 6 is a quarter turn clockwise: 40x20 becomes 20x40, the left half on top.
    assert (clean.width, clean.height) == (20, 40)
    image = _reopened(clean).convert("RGB")
    assert image.size == (20, 40)
    top, bottom = image.getpixel((10, 5)), image.getpixel((10, 34))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_a_jpeg_without_orientation_keeps_its_size() -> None:
    clean = clean_image(_jpeg(40, 20, orientation=1))
    assert (clean.width, clean.height) == (40, 20)
    _assert_bare(clean)


def test_a_png_loses_its_text_chunks_and_exif_and_stays_png() -> None:
    original = _png()
    assert b"Istanbul" in original
    clean = clean_image(original)
    assert clean.content_type == "image/png"
    assert (clean.width, clean.height) == (30, 10)
    _assert_bare(clean)
    assert _reopened(clean).format == "PNG"
    assert not getattr(_reopened(clean), "text", {})


def test_a_transparent_png_keeps_its_transparency() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 5, 10))
    out = io.BytesIO()
    image.save(out, "PNG")
    clean = _reopened(clean_image(out.getvalue()))
    assert clean.mode == "RGBA"
    assert clean.getpixel((8, 5)) == (0, 0, 0, 0)
    assert clean.getpixel((1, 5)) == (255, 0, 0, 255)


def test_a_webp_loses_its_exif_and_xmp_and_stays_webp() -> None:
    original = _webp()
    assert b"SecretCam" in original
    clean = clean_image(original)
    assert clean.content_type == "image/webp"
    assert _reopened(clean).format == "WEBP"
    _assert_bare(clean)


def test_an_animated_gif_keeps_its_first_frame_without_its_comment() -> None:
    original = _gif(frames=3)
    assert Image.open(io.BytesIO(original)).n_frames == 3
    clean = clean_image(original)
    assert clean.content_type == "image/gif"
    image = _reopened(clean)
    assert image.format == "GIF" and getattr(image, "n_frames", 1) == 1
    assert (clean.width, clean.height) == (16, 8)
    _assert_bare(clean)


# Images: thumbnails


def test_a_thumbnail_is_a_small_bare_webp_within_the_side() -> None:
    small = thumbnail(_jpeg(1000, 500), thumbnail_side_px=320)
    assert small.content_type == "image/webp"
    assert (small.width, small.height) == (320, 160)
    assert _reopened(small).size == (320, 160)
    _assert_bare(small)


def test_a_thumbnail_follows_the_orientation_and_never_enlarges() -> None:
    turned = thumbnail(_jpeg(1000, 500, orientation=6), thumbnail_side_px=200)
    assert (turned.width, turned.height) == (100, 200)
    tiny = thumbnail(_png((30, 10)), thumbnail_side_px=320)
    assert (tiny.width, tiny.height) == (30, 10)
    _assert_bare(tiny)


def test_a_thumbnail_keeps_transparency() -> None:
    image = Image.new("RGBA", (400, 100), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 200, 100))
    out = io.BytesIO()
    image.save(out, "PNG")
    small = thumbnail(out.getvalue(), thumbnail_side_px=100)
    assert (small.width, small.height) == (100, 25)
    reopened = _reopened(small)
    assert reopened.mode == "RGBA"
    assert reopened.getpixel((90, 12)) == (0, 0, 0, 0)
    # A palette image keeps its transparent index as alpha.
    out = io.BytesIO()
    image.convert("P").save(out, "PNG", transparency=0)
    assert _reopened(thumbnail(out.getvalue(), thumbnail_side_px=100)).mode == "RGBA"


# Images: bombs and broken bytes


def _declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares `width`x`height`: its data holds one pixel."""
    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    # The IHDR chunk: length (8..12), type (12..16), width and height (16..24), ..., CRC.
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = _declaring(100_000, 100_000)
    assert len(bomb) < 100
    for make in (clean_image, thumbnail):
        with pytest.raises(ImageTooLarge) as caught:
            make(bomb)
        assert caught.value.status == 413 and caught.value.code == "image_too_large"


def test_the_pixel_limit_is_checked_on_the_header_not_after_decoding() -> None:
    # Declares 4000x4000 but holds one pixel: decoding it would fail as corrupt, so
    # `image_too_large` proves the limit was checked on the header first.
    lying = _declaring(4000, 4000)
    with pytest.raises(ImageTooLarge):
        clean_image(lying, max_pixels=1_000_000)
    with pytest.raises(ImageTooLarge):
        thumbnail(lying, max_pixels=1_000_000)
    with pytest.raises(BadImage):
        clean_image(lying, max_pixels=20_000_000)


def test_an_image_over_a_lower_limit_is_refused_and_under_it_accepted() -> None:
    original = _jpeg(200, 100)
    with pytest.raises(ImageTooLarge):
        clean_image(original, max_pixels=19_999)
    assert clean_image(original, max_pixels=20_000).width == 200


@pytest.mark.parametrize(
    "make", [_jpeg, _png, _webp, _noisy_gif], ids=["jpeg", "png", "webp", "gif"]
)
def test_truncated_images_are_refused_clearly(make: object) -> None:
    assert callable(make)
    data = make()
    assert isinstance(data, bytes)
    for cut in (data[: len(data) // 2], data[:20]):
        with pytest.raises(BadImage) as caught:
            clean_image(cut)
        assert isinstance(caught.value, BadRequest) and caught.value.code == "bad_image"
        with pytest.raises(BadImage):
            thumbnail(cut)


@pytest.mark.parametrize(
    "data", [b"", b"not an image", b"\xff\xd8\xff" + bytes(50), b"%PDF-1.7\n", b"BM" + bytes(60)]
)
def test_what_is_not_a_kept_image_format_is_refused(data: bytes) -> None:
    with pytest.raises(BadImage):
        clean_image(data)
    with pytest.raises(BadImage):
        thumbnail(data)


def test_a_jpeg_named_png_is_cleaned_as_the_jpeg_it_is() -> None:
    clean = clean_image(_jpeg())
    assert clean.content_type == "image/jpeg"
    assert sniff(clean.data).content_type == "image/jpeg"


# Sniffing


def _ogg(first_packet: bytes) -> bytes:
    # The page header: "OggS", version, type, granule, serial, sequence, CRC, one segment.
    header = b"OggS" + bytes([0, 2]) + bytes(8) + bytes(4) + bytes(4) + bytes(4) + bytes([1])
    return header + bytes([len(first_packet)]) + first_packet


def _ftyp(brand: bytes) -> bytes:
    box = b"ftyp" + brand + bytes(4) + brand + b"isom"
    return struct.pack(">I", len(box) + 4) + box + b"\x00\x00\x00\x08free"


def _zip(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return out.getvalue()


WEBM = (
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + bytes(16)
)
MATROSKA = WEBM.replace(b"\x42\x82\x84webm", b"\x42\x82\x88matroska")
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

ALLOWED_SAMPLES = [
    ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(16), "image/jpeg", "image"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(16), "image/png", "image"),
    ("gif87", b"GIF87a" + bytes(16), "image/gif", "image"),
    ("gif89", b"GIF89a" + bytes(16), "image/gif", "image"),
    ("webp", b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(16), "image/webp", "image"),
    ("opus", _ogg(b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"), "audio/ogg", "audio"),
    ("vorbis", _ogg(b"\x01vorbis" + bytes(22)), "audio/ogg", "audio"),
    ("mp3-id3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(16), "audio/mpeg", "audio"),
    ("mp3-frame", b"\xff\xfb\x90\x64" + bytes(16), "audio/mpeg", "audio"),
    ("aac-adts", b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(16), "audio/aac", "audio"),
    ("m4a", _ftyp(b"M4A "), "audio/mp4", "audio"),
    ("wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(16), "audio/wav", "audio"),
    ("mp4-isom", _ftyp(b"isom"), "video/mp4", "video"),
    ("mp4-mp42", _ftyp(b"mp42"), "video/mp4", "video"),
    ("mp4-other-brand", _ftyp(b"iso8"), "video/mp4", "video"),
    ("3gp", _ftyp(b"3gp4"), "video/3gpp", "video"),
    ("mov", _ftyp(b"qt  "), "video/quicktime", "video"),
    ("webm", WEBM, "video/webm", "video"),
    (
        "webm-padded",
        WEBM.replace(b"\x42\x82\x84webm", b"\x42\x82\x86webm\x00\x00"),
        "video/webm",
        "video",
    ),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf", "document"),
    ("text", "Merhaba dünya,\nsiparişim nerede?\n".encode(), "text/plain", "document"),
    ("docx", _zip("[Content_Types].xml", "_rels/.rels", "word/document.xml"), DOCX, "document"),
    ("xlsx", _zip("[Content_Types].xml", "xl/workbook.xml"), XLSX, "document"),
    ("pptx", _zip("[Content_Types].xml", "ppt/presentation.xml"), PPTX, "document"),
]


@pytest.mark.parametrize(
    ("data", "content_type", "family"),
    [sample[1:] for sample in ALLOWED_SAMPLES],
    ids=[sample[0] for sample in ALLOWED_SAMPLES],
)
def test_each_allowed_signature_is_recognised(data: bytes, content_type: str, family: str) -> None:
    kind = sniff(data)
    assert isinstance(kind, Kind)
    inline = family in ("image", "audio", "video")
    assert (kind.content_type, kind.family, kind.inline) == (content_type, family, inline)
    assert kind.content_type in ALLOWED


def test_every_allowed_type_has_a_signature_sample() -> None:
    assert {sample[2] for sample in ALLOWED_SAMPLES} == ALLOWED


def test_only_images_audio_and_video_are_shown_inline() -> None:
    assert sniff(_jpeg()).inline and sniff(WEBM).inline and sniff(_ftyp(b"M4A ")).inline
    for data in (b"%PDF-1.4\n", b"hello\n", _zip("[Content_Types].xml", "word/document.xml")):
        assert not sniff(data).inline
    assert sniff(b"hello\n").header == "text/plain; charset=utf-8"
    assert sniff(_jpeg()).header == "image/jpeg"


def test_the_type_comes_from_the_bytes_not_the_name_or_claim() -> None:
    # A JPEG sent as "photo.png", image/png: it is a JPEG.
    assert sniff(_jpeg()).content_type == "image/jpeg"
    assert sniff(_png()).content_type == "image/png"
    assert sniff(_webp()).content_type == "image/webp"
    assert sniff(_gif()).content_type == "image/gif"


REFUSED = [
    ("html", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"),
    ("html-indented", b"\n\n   <html><script>alert(1)</script></html>"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("svg-xml", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'),
    ("svg-bom", "\ufeff<svg onload='alert(1)'/>".encode()),
    ("exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(48)),
    ("elf", b"\x7fELF\x02\x01\x01" + bytes(48)),
    ("zip", _zip("notes.txt", "photo.jpg")),
    ("docm", _zip("[Content_Types].xml", "word/document.xml", "word/vbaProject.bin")),
    ("broken-zip", b"PK\x03\x04" + bytes(40)),
    ("heic", _ftyp(b"heic")),
    ("avif", _ftyp(b"avif")),
    ("matroska", MATROSKA),
    ("ebml-unknown", WEBM.replace(b"\x42\x82\x84webm", b"\x42\x82\x84abcd")),
    ("ftyp-unknown", b"\x00\x00\x00\x10ftypabcd\x00\x00\x00\x00" + bytes(16)),
    ("ogg-unknown", _ogg(b"\x80theora" + bytes(20))),
    ("binary", bytes(range(256))),
    ("latin-9-text", "sipariş".encode("iso-8859-9") + b"\n"),
    ("empty", b""),
]


@pytest.mark.parametrize("data", [sample[1] for sample in REFUSED], ids=[s[0] for s in REFUSED])
def test_what_is_outside_the_allowlist_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        sniff(data)
    assert isinstance(caught.value, BadRequest)
    assert caught.value.status == 415 and caught.value.code == "unsupported_media_type"


def test_a_refusal_names_a_recognised_type() -> None:
    with pytest.raises(UnsupportedMediaType, match="image/heic"):
        sniff(_ftyp(b"heic"))
    with pytest.raises(UnsupportedMediaType, match="text/html"):
        sniff(b"<html></html>")
    assert not {"image/svg+xml", "text/html", "application/zip", "image/heic"} & ALLOWED
    assert isinstance(ALLOWED, frozenset)


def test_the_errors_are_the_hubs_own() -> None:
    assert issubclass(UnsupportedMediaType, BadRequest)
    assert issubclass(BadImage, BadRequest)
    assert issubclass(ImageTooLarge, TooBig)
