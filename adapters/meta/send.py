"""Sending on Meta's Graph API: Instagram, Messenger and WhatsApp (docs/platforms.md §2c, §3b,
§4b). Pure: `build` makes the request, `interpret` reads the answer; `adapters.sending.send`
does the I/O.

Endpoints, all POST with `Authorization: Bearer <access_token>` and a JSON body:
- Instagram DM: `{instagram}/{ig_id}/messages` `{recipient:{id}, message:{text}}`
- Messenger DM: `{graph}/{page_id}/messages`, the same plus `messaging_type: RESPONSE`
- private reply to a comment: the DM call with `recipient: {comment_id}`
- public reply: Instagram `{instagram}/{comment_id}/replies`, Facebook
  `{graph}/{comment_id}/comments`, both `{message}`; the answer is `{id}`
- WhatsApp: `{graph}/{phone_number_id}/messages` `{messaging_product, recipient_type, to,
  type: text, text:{body, preview_url}}`, plus `context:{message_id}` for a reply

Files (`Outgoing.file`): `adapters.meta.send_media` says what each platform takes and how;
WhatsApp's upload is a step of its own (`build_upload`, `interpret_upload`).

`reply_to` is ignored on Instagram and Messenger DMs: the platform reference documents no
reply field for their Send API, and an unknown field risks a (#100) rejection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from adapters.meta import send_media, send_template
from adapters.meta.whatsapp import sent_message_id
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
from schemas.message import ChannelKind

# Characters. Meta documents 2000 for the Messenger Send API; Instagram's is 1000.
LIMITS = {ChannelKind.INSTAGRAM: 1000, ChannelKind.MESSENGER: 2000, ChannelKind.WHATSAPP: 4096}

# Graph error codes that mean "slow down", not "this message is wrong": 4 app, 17 user,
# 32 page, 613 custom rate limits; WhatsApp 80007 account, 130429 throughput, 131056 pair.
THROTTLED = frozenset({4, 17, 32, 613, 80007, 130429, 131056})
# Meta's error-handling guide says to wait and retry these: 1 unknown ("possibly a
# temporary issue due to downtime"), 2 service; WhatsApp 131016 service unavailable.
TRANSIENT = frozenset({1, 2, 131016})
TOKEN_EXPIRED = 190
# Subcodes that mean the token no longer works whatever the code: 458 app not installed,
# 460 password changed, 463 expired, 467 invalid.
TOKEN_SUBCODES = frozenset({458, 460, 463, 467})


def build(out: Outgoing, platforms: Platforms) -> Request:
    """Raises `TooLong` past the channel's limit, `MissingSecret` without `access_token`,
    `Unsendable` for what the channel cannot carry (a WhatsApp comment reply)."""
    limit = LIMITS.get(out.kind)
    if limit is None:
        raise Unsendable(f"{out.kind} is not sent through the Graph API")
    if out.reaction is not None:
        return _reaction(out, platforms)
    if out.template is not None:
        return _template(out, platforms)
    if out.file is not None:
        return _file(out, out.file, platforms)
    check_length(out.text, limit)
    headers = {"Authorization": f"Bearer {secret(out, 'access_token')}"}
    base, node = _sender(out, platforms)
    if out.kind == ChannelKind.WHATSAPP:
        if out.comment_id is not None:
            raise Unsendable("WhatsApp has no comments to reply to")
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": out.recipient,
            "type": "text",
            "text": {"body": out.text, "preview_url": False},
        }
        if out.reply_to:
            body["context"] = {"message_id": out.reply_to}
        return Request("POST", f"{base}/{_seg(out.account_id)}/messages", body, headers=headers)
    if out.comment_id is not None and out.public:
        edge = "replies" if out.kind == ChannelKind.INSTAGRAM else "comments"
        url = f"{base}/{_seg(out.comment_id)}/{edge}"
        return Request("POST", url, {"message": out.text}, headers=headers)
    recipient = {"comment_id": out.comment_id} if out.comment_id else {"id": out.recipient}
    body = {"recipient": recipient, "message": {"text": out.text}}
    if out.human_agent:  # a person's reply between 24 hours and 7 days after the last message
        body |= {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    elif out.kind == ChannelKind.MESSENGER or node != out.account_id:
        body["messaging_type"] = "RESPONSE"  # answering the person within the 24 h window
    return Request("POST", f"{base}/{_seg(node)}/messages", body, headers=headers)


def _sender(out: Outgoing, platforms: Platforms) -> tuple[str, str]:
    """Where a send goes and which node sends it. An Instagram account connected through its
    Facebook Page (Facebook Login for Business, or a pasted Page token with the Page's id in
    its secrets) sends with the Page token through the Page's Send API on the Graph API;
    one connected with Business Login for Instagram through graph.instagram.com."""
    if out.kind != ChannelKind.INSTAGRAM:
        return platforms.graph, out.account_id
    page_id = out.secrets.get("page_id")
    return (platforms.graph, page_id) if page_id else (platforms.instagram, out.account_id)


def _file(out: Outgoing, file: OutgoingFile, platforms: Platforms) -> Request:
    """One file: WhatsApp's message naming the uploaded media, Messenger's multipart send,
    Instagram's attachment by URL."""
    headers = {"Authorization": f"Bearer {secret(out, 'access_token')}"}
    if out.kind == ChannelKind.WHATSAPP:
        body = send_media.whatsapp_message(out, file)
        url = f"{platforms.graph}/{_seg(out.account_id)}/messages"
        return Request("POST", url, body, headers=headers)
    if out.kind == ChannelKind.INSTAGRAM:
        body = send_media.instagram_body(out, file)
        base, node = _sender(out, platforms)
        return Request("POST", f"{base}/{_seg(node)}/messages", body, headers=headers)
    form = send_media.messenger_form(out, file)
    return Request(
        "POST",
        f"{platforms.graph}/{_seg(out.account_id)}/messages",
        form=form,
        files={"filedata": (file.name, file.data, file.content_type)},
        headers=headers,
    )


def _template(out: Outgoing, platforms: Platforms) -> Request:
    """A WhatsApp template message (`adapters.meta.send_template`); a header file the hub
    keeps was uploaded by then and is named by its media id."""
    if out.kind != ChannelKind.WHATSAPP or out.template is None:
        raise Unsendable("templates are sent on WhatsApp")
    media_id = out.file.media_id if out.file is not None else None
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": out.recipient,
        "type": "template",
        "template": send_template.with_media_id(dict(out.template), media_id),
    }
    headers = {"Authorization": f"Bearer {secret(out, 'access_token')}"}
    return Request(
        "POST", f"{platforms.graph}/{_seg(out.account_id)}/messages", body, headers=headers
    )


def build_upload(out: Outgoing, platforms: Platforms) -> Request | None:
    """WhatsApp sends a file it holds: the upload that gives its media id, made before
    `build` (None elsewhere, and once the id is known)."""
    file = out.file
    if out.kind != ChannelKind.WHATSAPP or file is None or file.media_id is not None:
        return None
    if send_media.taken(out.kind, file.content_type) is None:
        raise Unsendable(f"WhatsApp does not take {file.content_type} files")
    headers = {"Authorization": f"Bearer {secret(out, 'access_token')}"}
    return Request(
        "POST",
        f"{platforms.graph}/{_seg(out.account_id)}/media",
        form=send_media.whatsapp_upload_form(file),
        files={"file": (file.name, file.data, file.content_type)},
        headers=headers,
    )


def interpret_upload(status: int, body: Any, headers: Mapping[str, str]) -> str | Outcome:
    """The media id of an upload (`{id}`), or what went wrong, read as a send's answer."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return _error(status, error, headers)
    media_id = body.get("id") if isinstance(body, dict) else None
    if 200 <= status < 300:
        if isinstance(media_id, str) and media_id:
            return media_id
        return Outcome.failed("WhatsApp answered the upload without a media id", "bad_response")
    return interpret(status, body, headers)


def _reaction(out: Outgoing, platforms: Platforms) -> Request:
    """WhatsApp: `type: reaction` on `/messages`; an empty emoji removes ours."""
    if out.kind != ChannelKind.WHATSAPP or not out.reply_to:
        raise Unsendable("reactions are sent on WhatsApp, to a message")
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": out.recipient,
        "type": "reaction",
        "reaction": {"message_id": out.reply_to, "emoji": out.reaction},
    }
    headers = {"Authorization": f"Bearer {secret(out, 'access_token')}"}
    return Request(
        "POST", f"{platforms.graph}/{_seg(out.account_id)}/messages", body, headers=headers
    )


def interpret(status: int, body: Any, headers: Mapping[str, str]) -> Outcome:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return _error(status, error, headers)
    if 200 <= status < 300:
        platform_id = _message_id(body)
        if platform_id is None:
            return Outcome.failed("the platform answered without a message id", "bad_response")
        return Outcome.sent(platform_id)
    if status >= 500 or status == 429:
        return Outcome.retry(f"HTTP {status}", f"http_{status}", retry_after_header(headers))
    return Outcome.failed(f"HTTP {status}", f"http_{status}")


def _error(status: int, error: dict[str, Any], headers: Mapping[str, str]) -> Outcome:
    """One ladder from a Graph error object to an outcome; codes decide, titles never do
    (Meta: "build your app's error handling logic around code values")."""
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    code_text = f"{code}/{subcode}" if subcode is not None else str(code or f"http_{status}")
    reason = (
        send_template.template_words(code)
        or _reason(error, send_template.words(code))
        or f"HTTP {status}"
    )
    if code in THROTTLED or status == 429:
        return Outcome.retry(reason, code_text, retry_after_header(headers))
    if code == TOKEN_EXPIRED or subcode in TOKEN_SUBCODES:
        return Outcome.needs_reconnect(reason, code_text)
    if code in TRANSIENT or status >= 500:
        return Outcome.retry(reason, code_text, retry_after_header(headers))
    return Outcome.failed(reason, code_text)


def _reason(error: dict[str, Any], words: str | None = None) -> str | None:
    """The most human text the error carries: the user-facing message, then WhatsApp's
    `error_data.details` (the title alone says "Re-engagement message"), then our `words`
    for the code, then `message`."""
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    for text in (error.get("error_user_msg"), details, words, error.get("message")):
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def _message_id(body: Any) -> str | None:
    """`message_id` (Instagram, Messenger), `messages[0].id` (WhatsApp) or `id` (a comment)."""
    if not isinstance(body, dict):
        return None
    for candidate in (body.get("message_id"), sent_message_id(body), body.get("id")):
        if isinstance(candidate, str) and candidate:
            return candidate
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return str(candidate)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _seg(value: str) -> str:
    """One path segment: an id with a "/" or "?" must not reach another endpoint."""
    return quote(value, safe="")
