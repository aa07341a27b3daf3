"""A contact, a conversation and a message as the REST API answers them."""

from __future__ import annotations

import uuid

from adapters.window import PRIVATE_REPLY, conversation_window, window
from hub.storage.models import Contact, Conversation, MessageRow
from schemas.message import Sender, utc_now
from schemas.rest.conversations import ContactOut, ConversationOut, MessagingWindow, StoredMessage


def contact_out(contact_id: uuid.UUID, row: Contact | None) -> ContactOut:
    return ContactOut(
        id=contact_id,
        name=row.name if row else None,
        username=row.username if row else None,
        picture_url=row.picture_url if row else None,
    )


def conversation_out(
    row: Conversation,
    contact: Contact | None = None,
    unread: int = 0,
    labels: list[str] | None = None,
) -> ConversationOut:
    now = utc_now()
    open_window = conversation_window(row.channel_kind or "", row.kind, row.last_inbound_at, now)
    private = window(PRIVATE_REPLY, row.last_inbound_at, now) if row.kind == "comment" else None
    return ConversationOut(
        id=row.id,
        contact=contact_out(row.contact_id, contact),
        unread=unread,
        channel_id=row.channel_id,
        channel_kind=row.channel_kind,
        last_inbound_at=row.last_inbound_at,
        window=MessagingWindow(
            open=open_window.open,
            closes_at=open_window.closes_at,
            human_agent=open_window.human_agent,
            private_reply_closes_at=private.closes_at if private else None,
        ),
        contact_id=row.contact_id,
        kind=row.kind,
        status=row.status,
        assignee_id=row.assignee_id,
        team_id=row.team_id,
        snoozed_until=row.snoozed_until,
        labels=labels or [],
        priority=row.priority,
        last_activity_at=row.last_activity_at,
        last_message_preview=row.last_message_preview,
        last_event_id=row.last_event_id,
        title=row.title,
    )


def stored_message(row: MessageRow) -> StoredMessage:
    sender = {"type": row.sender_type, "id": row.sender_id, "name": row.sender_name}
    return StoredMessage(
        id=row.id,
        workspace_id=row.workspace_id,
        channel_id=row.channel_id,
        conversation_id=row.conversation_id,
        contact_id=row.contact_id,
        channel_kind=row.channel_kind,
        kind=row.kind,
        direction=row.direction,
        sender=Sender(**{k: v for k, v in sender.items() if v is not None}),
        text=row.text,
        attachments=row.attachments,
        reply_to=row.reply_to,
        reactions=row.reactions,
        edited=row.edited,
        deleted=row.deleted,
        platform_message_id=row.platform_message_id,
        client_id=row.client_id,
        private_reply=row.private_reply,
        note=row.note,
        hidden=row.hidden,
        sent_at=row.sent_at,
        status=row.status,
        error=row.error,
        raw=row.raw,
        event_id=row.event_id,
        group=row.group_chat,
        standby=row.standby,
        story=row.story,
        referral=row.referral,
    )
