"""The JSON of a contact, a conversation and a message as the REST API answers them."""

from __future__ import annotations

import uuid
from typing import Any

from adapters.window import window
from hub.storage.models import Contact, Conversation, MessageRow
from schemas.message import utc_now


def contact_json(contact_id: uuid.UUID, row: Contact | None) -> dict[str, Any]:
    return {
        "id": str(contact_id),
        "name": row.name if row else None,
        "username": row.username if row else None,
        "picture_url": row.picture_url if row else None,
    }


def conversation_json(
    row: Conversation,
    contact: Contact | None = None,
    unread: int = 0,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    open_window = window(row.channel_kind or "", row.last_inbound_at, utc_now())
    return {
        "unread": unread,
        "labels": labels or [],
        "snoozed_until": row.snoozed_until.isoformat() if row.snoozed_until else None,
        "contact": contact_json(row.contact_id, contact),
        "channel_kind": row.channel_kind,
        "last_inbound_at": row.last_inbound_at.isoformat() if row.last_inbound_at else None,
        "window": open_window.as_json(),
        "id": str(row.id),
        "channel_id": str(row.channel_id),
        "contact_id": str(row.contact_id),
        "kind": row.kind,
        "status": row.status,
        "assignee_id": str(row.assignee_id) if row.assignee_id else None,
        "team_id": str(row.team_id) if row.team_id else None,
        "priority": row.priority,
        "last_activity_at": row.last_activity_at.isoformat(),
        "last_message_preview": row.last_message_preview,
        "last_event_id": row.last_event_id,
    }


def message_json(row: MessageRow) -> dict[str, Any]:
    sender = {"type": row.sender_type, "id": row.sender_id, "name": row.sender_name}
    return {
        "id": str(row.id),
        "workspace_id": str(row.workspace_id),
        "channel_id": str(row.channel_id),
        "conversation_id": str(row.conversation_id),
        "contact_id": str(row.contact_id),
        "channel_kind": row.channel_kind,
        "kind": row.kind,
        "direction": row.direction,
        "sender": {k: v for k, v in sender.items() if v is not None},
        "text": row.text,
        "attachments": row.attachments,
        "reply_to": row.reply_to,
        "reactions": row.reactions,
        "edited": row.edited,
        "deleted": row.deleted,
        "platform_message_id": row.platform_message_id,
        "client_id": row.client_id,
        "private_reply": row.private_reply,
        "note": row.note,
        "sent_at": row.sent_at.isoformat(),
        "status": row.status,
        "error": row.error,
        "raw": row.raw,
        "event_id": row.event_id,
    }
