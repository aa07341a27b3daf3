"""Files on the Telegram Bot API: each is uploaded with the message that carries it, as
`multipart/form-data` to the method that shows it best, with `chat_id`, the file in the field
the method names, and the text as its `caption` (0-1024 characters).

- `sendPhoto` (`photo`) for a JPEG, PNG, GIF or WebP of at most 10 MB; a larger image goes
  as a document, which Telegram takes up to 50 MB ("10 MB max size for photos, 50 MB for
  other files", the Bot API's "Sending files").
- `sendVoice` (`voice`) for Ogg Opus, played as a voice note; `sendAudio` (`audio`) for MP3
  and M4A, which the music player takes; `sendVideo` (`video`) for MP4.
- `sendDocument` (`document`) for everything else.
"""

from __future__ import annotations

import json

from adapters.media import MB, MediaRefusal, Taken, refusal
from adapters.outbound import OutgoingFile

CAPTION_LIMIT = 1024
PHOTO_MAX = 10 * MB
FILE_MAX = 50 * MB

_PHOTOS = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_METHODS = {
    "audio/ogg": ("sendVoice", "voice"),
    "audio/mpeg": ("sendAudio", "audio"),
    "audio/mp4": ("sendAudio", "audio"),
    "video/mp4": ("sendVideo", "video"),
}
DOCUMENT = ("sendDocument", "document")
METHODS = frozenset({"sendPhoto", "sendDocument", "sendVoice", "sendAudio", "sendVideo"})


def method(content_type: str, size: int) -> tuple[str, str]:
    """The Bot API method for a file, and the form field its bytes go in."""
    if content_type in _PHOTOS:
        return ("sendPhoto", "photo") if size <= PHOTO_MAX else DOCUMENT
    return _METHODS.get(content_type, DOCUMENT)


def refuse(content_type: str, size: int) -> MediaRefusal | None:
    name, _ = method(content_type, size)
    return refusal("Telegram", Taken(name, FILE_MAX), content_type, size)


def form(
    chat_id: int | str,
    caption: str,
    thread_id: int | None,
    reply_to: int | None,
) -> dict[str, str]:
    """The plain fields: multipart values are strings, objects are JSON-serialized."""
    fields = {"chat_id": str(chat_id)}
    if caption:
        fields["caption"] = caption
    if thread_id is not None:
        fields["message_thread_id"] = str(thread_id)
    if reply_to is not None:
        parameters = {"message_id": reply_to, "allow_sending_without_reply": True}
        fields["reply_parameters"] = json.dumps(parameters)
    return fields


def files(file: OutgoingFile) -> tuple[str, dict[str, tuple[str, bytes, str]]]:
    name, field = method(file.content_type, len(file.data))
    return name, {field: (file.name, file.data, file.content_type)}
