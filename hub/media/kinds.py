"""What a stored file is: its content type read from its own first bytes (its signature), never
from what the sender claimed, and checked against the types the hub keeps (`ALLOWED`).

The signatures are written here rather than taken from a library: each is a few bytes at a
fixed offset given by the format's own specification, the list is short and is the allowlist
itself, and a sniffing library would either need libmagic on the host (python-magic) or
recognise far more than the hub keeps, with guesses for the rest. What is not recognised is
refused; so are HTML, SVG and XML (a browser may run their scripts), executables, and HEIC
(recognised so the refusal names it, but not kept: its metadata, such as the location, cannot
be stripped without another imaging library; the platforms send photos as JPEG anyway).

A `Kind` says whether the file may be shown inline (images, audio and video); everything else
is served only as a download (`Content-Disposition: attachment`), always with
`X-Content-Type-Options: nosniff` so the browser keeps to the type named here.
"""

from __future__ import annotations

import codecs
import io
import zipfile
from dataclasses import dataclass
from typing import Literal

from hub.errors import BadRequest

Family = Literal["image", "audio", "video", "document"]

# Each type the hub keeps: its family and the extension its files are named with.
_TYPES: dict[str, tuple[Family, str]] = {
    "image/jpeg": ("image", "jpg"),
    "image/png": ("image", "png"),
    "image/gif": ("image", "gif"),
    "image/webp": ("image", "webp"),
    "audio/ogg": ("audio", "ogg"),  # WhatsApp's voice notes: Opus in Ogg
    "audio/mpeg": ("audio", "mp3"),
    "audio/mp4": ("audio", "m4a"),
    "audio/aac": ("audio", "aac"),
    "audio/wav": ("audio", "wav"),
    "video/mp4": ("video", "mp4"),  # also an MP4 holding only sound: a video element plays it
    "video/3gpp": ("video", "3gp"),
    "video/quicktime": ("video", "mov"),
    "video/webm": ("video", "webm"),
    "application/pdf": ("document", "pdf"),
    "text/plain": ("document", "txt"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("document", "docx"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", "xlsx"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "document",
        "pptx",
    ),
}
_FAMILIES: dict[str, Family] = {name: family for name, (family, _) in _TYPES.items()}
EXTENSIONS: dict[str, str] = {name: extension for name, (_, extension) in _TYPES.items()}

ALLOWED: frozenset[str] = frozenset(_FAMILIES)
"""The content types the hub stores."""

_INLINE_FAMILIES = frozenset({"image", "audio", "video"})
_TEXT_SAMPLE_BYTES = 64 * 1024  # how much of a file without a signature is read as text


class UnsupportedMediaType(BadRequest):
    status = 415
    code = "unsupported_media_type"
    default_message = "The file's type is not one the hub keeps."


@dataclass(frozen=True, slots=True)
class Kind:
    """What a file is, read from its bytes."""

    content_type: str  # one of ALLOWED, without parameters
    family: Family
    inline: bool  # False: served only as a download (Content-Disposition: attachment)

    @property
    def header(self) -> str:
        """The Content-Type to serve it with."""
        if self.content_type == "text/plain":
            return "text/plain; charset=utf-8"
        return self.content_type


def sniff(data: bytes) -> Kind:
    """The kind of `data` from its signature; `UnsupportedMediaType` when it is outside
    `ALLOWED` or not recognised at all."""
    found = identify(data)
    if found is None:
        raise UnsupportedMediaType()
    family = _FAMILIES.get(found)
    if family is None:
        raise UnsupportedMediaType(f"The file is {found}, which is not a type the hub keeps.")
    return Kind(found, family, family in _INLINE_FAMILIES)


def from_content_type(content_type: str) -> Kind:
    """The kind of a file kept under `content_type` (what `sniff` said when it was stored),
    checked against the allowlist again when it is served."""
    found = content_type.split(";", 1)[0].strip().lower()
    family = _FAMILIES.get(found)
    if family is None:
        raise UnsupportedMediaType(f"{found} is not a type the hub serves.")
    return Kind(found, family, family in _INLINE_FAMILIES)


def identify(data: bytes) -> str | None:
    """The content type the signature says, allowed or not; None when nothing matches."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return _ogg(head)
    if head[4:8] == b"ftyp":
        return _ftyp(data[:256])
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _ebml(head)
    if head.startswith(b"ID3") or _mpeg_audio(head):
        return "audio/mpeg"
    if _adts(head):
        return "audio/aac"
    if head.startswith(b"PK\x03\x04"):
        return _office(data)
    if head.startswith(b"MZ"):
        return "application/x-msdownload"
    return _text(data)


def _ogg(head: bytes) -> str | None:
    # The first page holds the first packet of the stream's codec at byte 28.
    codec = head[28:36]
    if codec.startswith((b"OpusHead", b"\x01vorbis", b"\x7fFLAC")):
        return "audio/ogg"
    if codec.startswith(b"\x80theora"):
        return "video/ogg"
    return None


_FTYP_BRANDS: dict[bytes, str] = {
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"M4V ": "video/mp4",
    b"isom": "video/mp4",
    b"iso2": "video/mp4",
    b"iso4": "video/mp4",
    b"iso5": "video/mp4",
    b"iso6": "video/mp4",
    b"mp41": "video/mp4",
    b"mp42": "video/mp4",
    b"avc1": "video/mp4",
    b"dash": "video/mp4",
    b"MSNV": "video/mp4",
    b"qt  ": "video/quicktime",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"avif": "image/avif",
}


def _ftyp(head: bytes) -> str | None:
    # An ISO base media file opens with its `ftyp` box: size, "ftyp", the major brand, a
    # version, then compatible brands. The major brand says what the file is; a major brand
    # not listed here is read as MP4 only when a compatible brand says the file plays as one.
    brand = head[8:12]
    if brand.startswith((b"3gp", b"3g2")):
        return "video/3gpp"
    if brand in _FTYP_BRANDS:
        return _FTYP_BRANDS[brand]
    end = min(int.from_bytes(head[0:4], "big"), len(head))
    compatible = {head[at : at + 4] for at in range(16, end - 3, 4)}
    if compatible & {b"isom", b"iso2", b"mp41", b"mp42"}:
        return "video/mp4"
    return None


def _ebml(head: bytes) -> str | None:
    # Matroska and WebM share the EBML header; its DocType element (id 0x4282, a one-byte
    # size, then the name, at times padded with NULs) names which one.
    at = head.find(b"\x42\x82")
    if at < 0 or len(head) < at + 3 or not 0x81 <= head[at + 2] <= 0xA0:
        return None
    name = head[at + 3 : at + 3 + head[at + 2] - 0x80].rstrip(b"\x00")
    if name == b"webm":
        return "video/webm"
    if name == b"matroska":
        return "video/x-matroska"
    return None


def _mpeg_audio(head: bytes) -> bool:
    # An MPEG audio frame header: 11 sync bits, a version that is not the reserved one,
    # layer III, a bitrate index that is not "bad" and a sample rate that is not reserved.
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    return version != 1 and layer == 1 and head[2] >> 4 != 0xF and (head[2] >> 2) & 3 != 3


def _adts(head: bytes) -> bool:
    # AAC in ADTS frames: 12 sync bits, then layer 00, and a sample rate index below 13.
    return (
        len(head) >= 3 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0 and (head[2] >> 2) & 15 < 13
    )


_OFFICE_PARTS = {
    "word/document.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/presentation.xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    ),
}


def _office(data: bytes) -> str:
    # A Word, Excel or PowerPoint file is a ZIP holding `[Content_Types].xml` and its main
    # part; only the names are read (nothing is decompressed). One with macros (a
    # `vbaProject.bin`) or any other ZIP stays `application/zip`, which is not kept.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return "application/zip"
    if "[Content_Types].xml" not in names or any(n.endswith("vbaProject.bin") for n in names):
        return "application/zip"
    for part, content_type in _OFFICE_PARTS.items():
        if part in names:
            return content_type
    return "application/zip"


_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}


def _text(data: bytes) -> str | None:
    # Without a signature, a file is plain text when its start is UTF-8 without control
    # characters; markup (HTML, SVG, XML: anything opening with "<") is refused, since a
    # browser that ignored the type could run its scripts.
    sample = data[:_TEXT_SAMPLE_BYTES]
    if not sample or any(byte in _CONTROL for byte in sample):
        return None
    try:
        # Incremental, so a character cut at the end of the sample is not an error.
        text = codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return None
    if text.lstrip("\ufeff \t\r\n\f").startswith("<"):
        return "text/html"
    return "text/plain"
