"""The fake platform's checks for files the hub sends (tests/fakeplatform.py calls them), as
strict as the rest of it: the multipart shape (every field named once, the file in the field
the endpoint names, with a file name and a content type), the token, each platform's types
and size limits (docs/channels.md "Files the hub sends"), and the JSON that names a file.

- WhatsApp: `POST /{phone_number_id}/media` keeps the upload (`FakePlatform.uploads`, by the
  media id it answers) and a media message must name one of those ids, of a matching type.
- Messenger: the Send API as multipart, `filedata` beside `recipient` and `message` (JSON).
- Instagram: JSON with `attachment.payload.url`, an absolute https URL.
- Telegram: `sendPhoto`, `sendDocument`, `sendVoice`, `sendAudio`, `sendVideo` as multipart.

What each accepted request carried is in `FakePlatform.requests` (its body a `Multipart` with
the files' bytes), so tests compare bytes.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from tests import fakeplatform as fp

MB = 1_000_000
CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class Part:
    filename: str
    content_type: str
    data: bytes = b""

    def __repr__(self) -> str:
        return f"Part({self.filename!r}, {self.content_type!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class Multipart:
    fields: dict[str, str]
    files: dict[str, Part]


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_multipart(request: Request) -> Multipart:
    """The form, each name once; a file without a file name or a content type is refused."""
    fields: dict[str, str] = {}
    files: dict[str, Part] = {}
    async with request.form(max_part_size=1024 * 1024) as form:
        for name, value in form.multi_items():
            if name in fields or name in files:
                raise fp.Reject(f"fake: the form field {name} is given twice")
            if isinstance(value, UploadFile):
                if not value.filename or not value.content_type:
                    raise fp.Reject(f"fake: the file in {name} needs a name and a content type")
                files[name] = Part(value.filename, value.content_type, await value.read())
            else:
                fields[name] = value
    return Multipart(fields, files)


def _form(
    body: Any, *, fields: set[str], optional: frozenset[str] = frozenset(), file: str
) -> Part:
    if not isinstance(body, Multipart):
        raise fp.Reject("fake: this call takes multipart/form-data")
    if missing := fields - body.fields.keys():
        raise fp.Reject(f"fake: the form lacks {sorted(missing)}")
    if unknown := body.fields.keys() - fields - optional:
        raise fp.Reject(f"fake: the form has unknown fields {sorted(unknown)}")
    if set(body.files) != {file}:
        raise fp.Reject(f"fake: the file goes in the field {file}, alone, not {sorted(body.files)}")
    return body.files[file]


# WhatsApp

WA_TYPES = {
    "image/jpeg": ("image", 5 * MB),
    "image/png": ("image", 5 * MB),
    "image/webp": ("sticker", 100_000),
    "audio/aac": ("audio", 16 * MB),
    "audio/amr": ("audio", 16 * MB),
    "audio/mpeg": ("audio", 16 * MB),
    "audio/mp4": ("audio", 16 * MB),
    "audio/ogg": ("audio", 16 * MB),
    "video/mp4": ("video", 16 * MB),
    "video/3gpp": ("video", 16 * MB),
    "application/pdf": ("document", 100 * MB),
    "text/plain": ("document", 100 * MB),
}
WA_CAPTIONED = {"image", "video", "document"}
WA_MESSAGE_TYPES = {"image", "audio", "video", "document", "sticker"}


def whatsapp_upload(fake: fp.FakePlatform, request: Request, body: Any) -> dict[str, Any]:
    fake._auth(request, fake._node_account(request, fp.WA))
    part = _form(body, fields={"messaging_product", "type"}, file="file")
    if body.fields["messaging_product"] != "whatsapp":
        raise fp.Reject('fake: messaging_product must be "whatsapp"')
    if body.fields["type"] != part.content_type:
        raise fp.Reject("fake: type must be the file's MIME type")
    taken = WA_TYPES.get(part.content_type)
    if taken is None:
        raise fp.Reject(f"Param file must be a file of a supported type, not {part.content_type}")
    if len(part.data) > taken[1]:
        raise fp.Reject(f"fake: a {taken[0]} is at most {taken[1]} bytes", code=131053)
    media_id = str(next(fake._ids) * 1_000_003)
    fake.uploads[media_id] = part
    return {"id": media_id}


def whatsapp_message(fake: fp.FakePlatform, body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("type")
    required = {"messaging_product", "recipient_type", "to", "type", str(kind)}
    fp._keys(body, required=required, allowed=required | {"context"})
    if body["messaging_product"] != "whatsapp" or body["recipient_type"] != "individual":
        raise fp.Reject('fake: messaging_product "whatsapp", recipient_type "individual"')
    allowed = {"id"}
    if kind in WA_CAPTIONED:
        allowed.add("caption")
    if kind == "document":
        allowed.add("filename")
    media = body[kind]
    fp._keys(media, required={"id"}, allowed=allowed, where=str(kind))
    upload = fake.uploads.get(media["id"])
    if upload is None:
        raise fp.Reject("fake: no uploaded media has this id", code=131053)
    if WA_TYPES[upload.content_type][0] != kind:
        raise fp.Reject(f"fake: the media is {upload.content_type}, not a {kind}")
    caption = media.get("caption")
    if caption is not None and (not fp._str(caption) or len(caption) > CAPTION_LIMIT):
        raise fp.Reject("fake: a caption is 1 to 1024 characters")
    if "filename" in media and not fp._str(media["filename"]):
        raise fp.Reject("fake: filename must be a non-empty string")
    if "context" in body:
        fp._keys(body["context"], required={"message_id"}, allowed={"message_id"}, where="context")
    to = body["to"]
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
        "messages": [{"id": f"wamid.{uuid.uuid4().hex.upper()}"}],
    }


# Messenger and Instagram

SEND_API_TYPES = {"image", "audio", "video", "file"}
MESSENGER_MAX = 25 * MB


def _family(content_type: str) -> str:
    family = content_type.split("/", 1)[0]
    return family if family in ("image", "audio", "video") else "file"


def _messaging_type(body: dict[str, Any], *, required: bool) -> None:
    kind = body.get("messaging_type")
    if required and kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        raise fp.Reject("fake: messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG")
    if (kind == "MESSAGE_TAG") != ("tag" in body) or body.get("tag", "HUMAN_AGENT") != (
        "HUMAN_AGENT"
    ):
        raise fp.Reject("fake: a MESSAGE_TAG send needs tag HUMAN_AGENT, and only it has a tag")


def messenger_file(fake: fp.FakePlatform, request: Request, body: Any) -> dict[str, Any]:
    fake._auth(request, fake._node_account(request, fp.FB))
    part = _form(
        body,
        fields={"recipient", "message", "messaging_type"},
        optional=frozenset({"tag"}),
        file="filedata",
    )
    try:
        recipient = json.loads(body.fields["recipient"])
        message = json.loads(body.fields["message"])
    except ValueError:
        raise fp.Reject("fake: recipient and message are JSON in the form") from None
    _messaging_type(body.fields, required=True)
    fp._keys(recipient, required={"id"}, allowed={"id"}, where="recipient")
    if not fp._str(recipient["id"]):
        raise fp.Reject("fake: recipient.id must be a non-empty string")
    fp._keys(message, required={"attachment"}, allowed={"attachment"}, where="message")
    attachment = message["attachment"]
    fields = {"type", "payload"}
    fp._keys(attachment, required=fields, allowed=fields, where="attachment")
    fp._keys(attachment["payload"], required=set(), allowed={"is_reusable"}, where="payload")
    if not isinstance(attachment["payload"].get("is_reusable", False), bool):
        raise fp.Reject("fake: payload.is_reusable must be a boolean")
    if attachment["type"] != _family(part.content_type):
        raise fp.Reject(f"fake: a {part.content_type} is sent as {_family(part.content_type)}")
    if len(part.data) > MESSENGER_MAX:
        raise fp.Reject("fake: an attachment is at most 25 MB")
    return {"recipient_id": recipient["id"], "message_id": f"m_{uuid.uuid4().hex}"}


def instagram_file(body: dict[str, Any]) -> dict[str, Any]:
    allowed = {"recipient", "message", "messaging_type", "tag"}
    fp._keys(body, required={"recipient", "message"}, allowed=allowed)
    _messaging_type(body, required=False)
    fp._keys(body["recipient"], required={"id"}, allowed={"id"}, where="recipient")
    fp._keys(body["message"], required={"attachment"}, allowed={"attachment"}, where="message")
    attachment = body["message"]["attachment"]
    fields = {"type", "payload"}
    fp._keys(attachment, required=fields, allowed=fields, where="attachment")
    fp._keys(attachment["payload"], required={"url"}, allowed={"url"}, where="payload")
    if attachment["type"] not in SEND_API_TYPES:
        raise fp.Reject(f"fake: attachment.type must be one of {sorted(SEND_API_TYPES)}")
    url = attachment["payload"]["url"]
    if not fp._str(url) or not url.startswith("https://"):
        raise fp.Reject("fake: payload.url must be an absolute https URL")
    return {"recipient_id": body["recipient"]["id"], "message_id": f"m_{uuid.uuid4().hex}"}


# Telegram

TG_FIELDS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendVideo": "video",
}
TG_TYPES = {
    "sendVoice": {"audio/ogg"},
    "sendAudio": {"audio/mpeg", "audio/mp4"},
    "sendVideo": {"video/mp4"},
    "sendPhoto": {"image/jpeg", "image/png", "image/gif", "image/webp"},
}


def telegram_file(
    fake: fp.FakePlatform, method: str, request: Request, body: Any
) -> dict[str, Any]:
    bot = fake._bot(request)
    field = TG_FIELDS[method]
    part = _form(
        body,
        fields={"chat_id"},
        optional=frozenset({"caption", "message_thread_id", "reply_parameters"}),
        file=field,
    )
    fields = body.fields
    chat = fields["chat_id"]
    if not (chat.lstrip("-").isdigit() or chat.startswith("@")):
        raise fp.Reject("fake: chat_id must be an integer or an @username")
    if "caption" in fields and not 0 < len(fields["caption"]) <= CAPTION_LIMIT:
        raise fp.Reject("fake: caption is 0-1024 characters")
    if "message_thread_id" in fields and not fields["message_thread_id"].isdigit():
        raise fp.Reject("fake: message_thread_id must be an integer")
    if "reply_parameters" in fields:
        reply = json.loads(fields["reply_parameters"])
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise fp.Reject("fake: reply_parameters is a JSON object with an integer message_id")
    allowed = TG_TYPES.get(method)
    if allowed is not None and part.content_type not in allowed:
        raise fp.Reject(f"fake: {method} does not take {part.content_type}")
    limit = 10 * MB if method == "sendPhoto" else 50 * MB
    if len(part.data) > limit:
        raise fp.Reject("Request Entity Too Large", status=413, code=413)
    chat_id = int(chat) if chat.lstrip("-").isdigit() else -1000000000000 - next(fake._ids)
    result: dict[str, Any] = {
        "message_id": next(fake._ids),
        "from": {"id": int(bot.account_id), "is_bot": True, "first_name": "Fake bot"},
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "date": int(time.time()),
        field: {"file_id": uuid.uuid4().hex, "file_size": len(part.data)},
    }
    if "caption" in fields:
        result["caption"] = fields["caption"]
    return {"ok": True, "result": result}
