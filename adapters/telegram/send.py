"""Sending on the Telegram Bot API (docs/platforms.md §5c). Pure: `build` makes the request,
`interpret` reads the answer; `adapters.sending.send` does the I/O.

`POST {telegram}/bot<token>/sendMessage` with JSON `{chat_id, text}`, plus
`message_thread_id` when the recipient is a forum topic ("chat:thread") and
`reply_parameters: {message_id, allow_sending_without_reply: true}` for a reply (so a
since-deleted original does not make the whole reply fail). The token is in the path,
as the Bot API documents; `Request.redacted_url` is the form to log.

A file (`Outgoing.file`) goes with its caption to `sendPhoto`, `sendVoice`, `sendAudio`,
`sendVideo` or `sendDocument` as multipart (`adapters.telegram.send_media`); the answer is
the same Message, read by the same `interpret`.

Message ids are per chat, so the platform id is "<chat id>:<message_id>", as inbound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.outbound import (
    Outcome,
    Outgoing,
    OutgoingFile,
    Platforms,
    Request,
    Unsendable,
    check_length,
    retry_after_header,
    secret,
)
from adapters.telegram import send_media
from schemas.message import ChannelKind

LIMIT = 4096  # "1-4096 characters after entities parsing"; we send no entities
_INTEGER = re.compile(r"-?\d+")


def build(out: Outgoing, platforms: Platforms) -> Request:
    """Raises `TooLong` past 4096 characters, `MissingSecret` without `bot_token`,
    `Unsendable` for a comment reply or a malformed thread / reply id."""
    if out.kind != ChannelKind.TELEGRAM:
        raise Unsendable(f"{out.kind} is not sent through the Telegram Bot API")
    if out.comment_id is not None:
        raise Unsendable("Telegram has no comments to reply to")
    if out.file is not None:
        return _file(out, out.file, platforms)
    check_length(out.text, LIMIT)
    token = secret(out, "bot_token")
    chat, _, thread = out.recipient.partition(":")
    body: dict[str, Any] = {"chat_id": _chat_id(chat), "text": out.text}
    if thread:
        body["message_thread_id"] = _number(thread, "thread id")
    if out.reply_to:
        _, _, message_id = out.reply_to.rpartition(":")
        body["reply_parameters"] = {
            "message_id": _number(message_id, "reply_to message id"),
            "allow_sending_without_reply": True,
        }
    return Request("POST", f"{platforms.telegram}/bot{token}/sendMessage", body)


def _file(out: Outgoing, file: OutgoingFile, platforms: Platforms) -> Request:
    check_length(out.text, send_media.CAPTION_LIMIT)
    token = secret(out, "bot_token")
    chat, _, thread = out.recipient.partition(":")
    reply_to = None
    if out.reply_to:
        reply_to = _number(out.reply_to.rpartition(":")[2], "reply_to message id")
    fields = send_media.form(
        _chat_id(chat), out.text, _number(thread, "thread id") if thread else None, reply_to
    )
    name, files = send_media.files(file)
    url = f"{platforms.telegram}/bot{token}/{name}"
    return Request("POST", url, form=fields, files=files)


def interpret(status: int, body: Any, headers: Mapping[str, str]) -> Outcome:
    answer = body if isinstance(body, dict) else {}
    if 200 <= status < 300 and answer.get("ok") is True:
        result = answer.get("result")
        result = result if isinstance(result, dict) else {}
        chat = result.get("chat")
        chat_id = _id(chat.get("id")) if isinstance(chat, dict) else None
        message_id = _id(result.get("message_id"))
        if chat_id is None or message_id is None:
            return Outcome.failed("Telegram answered without a message id", "bad_response")
        return Outcome.sent(f"{chat_id}:{message_id}")
    code = _id(answer.get("error_code")) or str(status)
    description = answer.get("description")
    reason = description if isinstance(description, str) and description else f"HTTP {status}"
    if status == 429 or code == "429":
        parameters = answer.get("parameters")
        after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        after_s = (
            float(after)
            if isinstance(after, int | float) and not isinstance(after, bool)
            else retry_after_header(headers)
        )
        return Outcome.retry(reason, code, after_s)
    if status >= 500:
        return Outcome.retry(reason, code)
    if status == 401 or code == "401":  # the token was revoked (or regenerated in BotFather)
        return Outcome.needs_reconnect(reason, code)
    return Outcome.failed(reason, code)


def _chat_id(chat: str) -> int | str:
    """An integer id, or a "@channelusername", which the Bot API takes as a string."""
    return int(chat) if _INTEGER.fullmatch(chat) else chat


def _number(value: str, what: str) -> int:
    if not _INTEGER.fullmatch(value):
        raise Unsendable(f"malformed Telegram {what}: {value!r}")
    return int(value)


def _id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None
