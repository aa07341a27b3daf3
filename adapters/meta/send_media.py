"""Files on Meta's platforms: what each takes (types and sizes, docs/channels.md "Files the hub
sends", with sources) and the request pieces that carry one file. Pure; `adapters.meta.send`
wires them into `build`.

- WhatsApp: two calls. The bytes are uploaded first (`POST /{phone_number_id}/media`,
  multipart `file`, `type`, `messaging_product=whatsapp`; the answer is `{id}`), then sent as a
  message of `type` image, audio, video, document or sticker naming that `{id}`, with the
  `caption` where WhatsApp shows one (image, video, document) and the document's `filename`.
- Messenger: one multipart call to the Send API, `recipient` and `message` as JSON strings
  with `message.attachment{type, payload{is_reusable}}` and the bytes as `filedata`.
- Instagram: attachments by URL only (`payload{url}`), so the hub serves each file at a
  short-lived signed URL; without a public URL nothing can be sent (`NoPublicUrl`).

Messenger and Instagram show no caption with an attachment: the text goes as its own message.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.media import MB, MediaRefusal, Taken, refusal
from adapters.outbound import (
    NoPublicUrl,
    Outgoing,
    OutgoingFile,
    Unsendable,
    check_length,
)
from schemas.message import ChannelKind

CAPTION_LIMIT = 1024  # WhatsApp: "Maximum 1024 characters"

_WA_AUDIO = Taken("audio", 16 * MB)
_WA_VIDEO = Taken("video", 16 * MB)
_WA_IMAGE = Taken("image", 5 * MB)
_WA_DOCUMENT = Taken("document", 100 * MB)
WHATSAPP: dict[str, Taken] = {
    "image/jpeg": _WA_IMAGE,
    "image/png": _WA_IMAGE,
    # A WebP is sent as a sticker: the hub keeps an image's first frame, so a static one.
    "image/webp": Taken("sticker", 100_000),
    "audio/aac": _WA_AUDIO,
    "audio/amr": _WA_AUDIO,
    "audio/mpeg": _WA_AUDIO,
    "audio/mp4": _WA_AUDIO,
    "audio/ogg": _WA_AUDIO,  # Opus only; WhatsApp refuses other Ogg audio at upload
    "video/mp4": _WA_VIDEO,
    "video/3gpp": _WA_VIDEO,
    "application/pdf": _WA_DOCUMENT,
    "text/plain": _WA_DOCUMENT,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _WA_DOCUMENT,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _WA_DOCUMENT,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _WA_DOCUMENT,
}
WHATSAPP_CAPTIONED = frozenset({"image", "video", "document"})

_IG_MEDIA = 25 * MB
INSTAGRAM: dict[str, Taken] = {
    "image/jpeg": Taken("image", 8 * MB),
    "image/png": Taken("image", 8 * MB),
    "image/gif": Taken("image", 8 * MB),
    "audio/aac": Taken("audio", _IG_MEDIA),
    "audio/mp4": Taken("audio", _IG_MEDIA),
    "audio/wav": Taken("audio", _IG_MEDIA),
    "video/mp4": Taken("video", _IG_MEDIA),
    "video/quicktime": Taken("video", _IG_MEDIA),
    "video/webm": Taken("video", _IG_MEDIA),
    "application/pdf": Taken("file", _IG_MEDIA),
}

MESSENGER_MAX = 25 * MB  # every attachment type, uploaded as a file
_SEND_API_TYPES = {"image": "image", "audio": "audio", "video": "video"}

_TITLES = {
    ChannelKind.WHATSAPP: "WhatsApp",
    ChannelKind.MESSENGER: "Messenger",
    ChannelKind.INSTAGRAM: "Instagram",
}


def taken(kind: ChannelKind, content_type: str) -> Taken | None:
    """How the platform of `kind` takes a file of `content_type`; None when it does not."""
    if kind == ChannelKind.WHATSAPP:
        return WHATSAPP.get(content_type)
    if kind == ChannelKind.INSTAGRAM:
        return INSTAGRAM.get(content_type)
    if kind == ChannelKind.MESSENGER:
        family = content_type.split("/", 1)[0]
        return Taken(_SEND_API_TYPES.get(family, "file"), MESSENGER_MAX)
    return None


def refuse(kind: ChannelKind, content_type: str, size: int) -> MediaRefusal | None:
    return refusal(_TITLES.get(kind, str(kind)), taken(kind, content_type), content_type, size)


def caption_limit(kind: ChannelKind, content_type: str) -> int:
    """How long a caption the file can carry; 0: none, the text is sent on its own."""
    found = taken(kind, content_type)
    if kind == ChannelKind.WHATSAPP and found is not None and found.kind in WHATSAPP_CAPTIONED:
        return CAPTION_LIMIT
    return 0


def _taken_or_refuse(out: Outgoing, file: OutgoingFile) -> Taken:
    found = taken(out.kind, file.content_type)
    if found is None:
        raise Unsendable(f"{_TITLES[out.kind]} does not take {file.content_type} files")
    if out.comment_id is not None:
        raise Unsendable("files are not sent in answer to a comment")
    if out.text and caption_limit(out.kind, file.content_type) == 0:
        raise Unsendable(f"a {found.kind} on {_TITLES[out.kind]} carries no caption")
    return found


def whatsapp_upload_form(file: OutgoingFile) -> dict[str, str]:
    return {"messaging_product": "whatsapp", "type": file.content_type}


def whatsapp_message(out: Outgoing, file: OutgoingFile) -> dict[str, Any]:
    """The `/messages` body naming an uploaded file (`file.media_id`)."""
    found = _taken_or_refuse(out, file)
    if file.media_id is None:
        raise Unsendable("the file was not uploaded to WhatsApp")
    media: dict[str, Any] = {"id": file.media_id}
    if out.text:
        check_length(out.text, CAPTION_LIMIT)
        media["caption"] = out.text
    if found.kind == "document":
        media["filename"] = file.name
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": out.recipient,
        "type": found.kind,
        found.kind: media,
    }
    if out.reply_to:
        body["context"] = {"message_id": out.reply_to}
    return body


def messenger_form(out: Outgoing, file: OutgoingFile) -> dict[str, str]:
    """The Send API's fields as multipart form values (objects as JSON strings)."""
    found = _taken_or_refuse(out, file)
    attachment = {"type": found.kind, "payload": {"is_reusable": False}}
    form = {
        "recipient": json.dumps({"id": out.recipient}),
        "message": json.dumps({"attachment": attachment}),
    }
    if out.human_agent:
        form |= {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    else:
        form["messaging_type"] = "RESPONSE"
    return form


def instagram_body(out: Outgoing, file: OutgoingFile) -> dict[str, Any]:
    found = _taken_or_refuse(out, file)
    if not file.url:
        raise NoPublicUrl(
            "Instagram fetches files from the hub, which has no public URL (HUB_PUBLIC_URL)"
        )
    body: dict[str, Any] = {
        "recipient": {"id": out.recipient},
        "message": {"attachment": {"type": found.kind, "payload": {"url": file.url}}},
    }
    if out.human_agent:
        body |= {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    return body
