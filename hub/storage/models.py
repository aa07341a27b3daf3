"""Tables (SQLModel). Every workspace-owned row carries `workspace_id`; `hub.storage.store` scopes
every query by it. Schema changes are Alembic migrations under `hub/storage/migrations`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Re-exported: every table is reached through this module.
from hub.storage.agentmodels import Mention as Mention
from hub.storage.agentmodels import NotificationPrefs as NotificationPrefs
from hub.storage.agentmodels import PushKey as PushKey
from hub.storage.agentmodels import PushSubscription as PushSubscription
from hub.storage.columns import (
    SEALED as SEALED,
)
from hub.storage.columns import (
    JSONType,
    UTCDateTime,
    json_field,
    json_or_none,
    timestamp,
    trigram_index,
)
from hub.storage.mergemodels import ContactMerge as ContactMerge


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    retention_days: int | None = None
    # Meta's data-deletion callback for the person who connected a channel also erases the
    # channel's conversations (hub.privacy.platform); False: it disconnects the channel only.
    platform_deletion_erases: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )
    # Admins sign in with a second factor (`hub.accounts.twofactor`); agents are not asked.
    require_two_factor_for_admins: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )
    created_at: datetime = timestamp()


class User(SQLModel, table=True):
    """An account. Global, with no workspace and no row-level security: one person may be a
    member of several workspaces (`memberships`), and the row holds no workspace data
    (hub.storage.tenancy.GLOBAL_TABLES). Its password and its second factor are the person's,
    not a workspace's."""

    __tablename__ = "users"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    password_hash: str = Field(max_length=200)
    created_at: datetime = timestamp()
    # The TOTP secret, sealed (hub.storage.vault): pending while two_factor_enabled_at is
    # None, in use once it is set. `info={"sealed": True}` is how `hub rotate-keys` finds it.
    totp_secret: str | None = Field(
        default=None, sa_type=sa.Text, sa_column_kwargs={"info": SEALED}
    )
    two_factor_enabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The last 30-second step a code was accepted for: a code is never accepted twice.
    totp_last_step: int | None = Field(default=None, sa_type=sa.BigInteger)


class RecoveryCode(SQLModel, table=True):
    """One of a user's single-use recovery codes, as a sha256 of the code (which has 80
    random bits, so a slow hash would add nothing). Global like `users`: it belongs to the
    account, which may be in several workspaces, and is reached only through its user."""

    __tablename__ = "recovery_codes"
    __table_args__ = (sa.UniqueConstraint("user_id", "code_hash"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = timestamp()


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "user_id"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    role: str = Field(max_length=20)  # admin | agent
    capacity: int | None = None  # open conversations routing gives this agent; None: no limit
    last_assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # by routing
    created_at: datetime = timestamp()


class Invitation(SQLModel, table=True):
    """An admin's invitation to the workspace (`hub.accounts.invitations`): pending until the
    person follows the e-mailed link, or it expires or is revoked. Holds the SHA-256 of the
    link's token, never the token."""

    __tablename__ = "invitations"
    __table_args__ = (sa.Index("ix_invitations_workspace_email", "workspace_id", "email"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    email: str = Field(max_length=320)  # normalized: trimmed, lowercase
    role: str = Field(max_length=20)  # admin | agent
    invited_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = timestamp()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PasswordReset(SQLModel, table=True):
    """A password-reset link sent to a user (`hub.accounts.resets`). Global like `users`: an
    account may belong to several workspaces, and a reset happens before any is known.
    Holds the SHA-256 of the link's token, never the token."""

    __tablename__ = "password_resets"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = timestamp()
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Team(SQLModel, table=True):
    """A group of agents that conversations can be routed to (`hub.routing.service`)."""

    __tablename__ = "teams"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=100)
    assignment: str = Field(default="manual", max_length=20)  # manual | round_robin | least_busy
    created_at: datetime = timestamp()


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_members"
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    team_id: uuid.UUID = Field(foreign_key="teams.id", ondelete="CASCADE", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)


class CannedResponse(SQLModel, table=True):
    """A saved reply an agent inserts with `/shortcut`: the workspace's (`user_id` None, kept
    by admins) or one agent's own."""

    __tablename__ = "canned_responses"
    __table_args__ = (sa.Index("ix_canned_responses_owner", "workspace_id", "user_id", "shortcut"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE")
    shortcut: str = Field(max_length=40)
    text: str = Field(sa_type=sa.Text)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class AutomationRule(SQLModel, table=True):
    """An admin's rule (`hub.automation.rules`): when `trigger` happens and every condition
    holds, the automation worker takes the actions. Rules run in `position` order."""

    __tablename__ = "automation_rules"
    __table_args__ = (sa.Index("ix_automation_rules_workspace", "workspace_id", "position"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    name: str = Field(max_length=100)
    enabled: bool = Field(default=True)
    trigger: str = Field(max_length=30)
    conditions: list[dict[str, Any]] = json_field(list)
    actions: list[dict[str, Any]] = json_field(list)
    position: int = Field(default=0)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    name: str = Field(max_length=200)
    token_hash: str = Field(max_length=64, unique=True)  # sha256 hex; the token is shown once
    created_at: datetime = timestamp()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserSession(SQLModel, table=True):
    """A signed-in browser (hub.accounts.sessions): the cookie carries the id and a random
    secret, the row only the secret's SHA-256. Deleted when the session ends."""

    __tablename__ = "user_sessions"
    __table_args__ = (sa.Index("ix_user_sessions_created_at", "created_at"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    secret_hash: str = Field(max_length=64)  # sha256 hex of the cookie's secret
    created_at: datetime = timestamp()
    last_seen_at: datetime = timestamp()
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=200)


class Channel(SQLModel, table=True):
    __tablename__ = "channels"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=20)
    name: str = Field(max_length=200)
    public_key: str | None = Field(default=None, max_length=64, unique=True)
    account_ids: dict[str, str] = json_field(dict)
    secrets: str | None = Field(  # Fernet token of a JSON object
        default=None, sa_type=sa.Text, sa_column_kwargs={"info": SEALED}
    )
    allowed_origins: list[str] = json_field(list)
    settings: dict[str, Any] = json_field(dict)
    status: str = Field(default="connected", max_length=20)
    created_at: datetime = timestamp()
    last_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Who connected it: the app-scoped id Meta's deauthorize and data-deletion callbacks name,
    # and how (instagram_login, facebook_login, embedded_signup, token).
    connected_by: str | None = Field(default=None, max_length=100, index=True)
    connected_via: str | None = Field(default=None, max_length=20)


class ChannelAccount(SQLModel, table=True):
    """Which channel an account id on a platform belongs to: how `/webhooks/meta` routes."""

    __tablename__ = "channel_accounts"
    __table_args__ = (sa.UniqueConstraint("kind", "account_id"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=20)
    account_id: str = Field(max_length=100)


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    __table_args__ = (trigram_index("ix_contacts_search", "search"),)
    id: uuid.UUID = Field(primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    username: str | None = Field(default=None, max_length=200)
    picture_url: str | None = Field(default=None, sa_type=sa.Text)
    phone: str | None = Field(default=None, max_length=40)
    company: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, sa_type=sa.Text)
    visitor: dict[str, Any] | None = json_or_none()  # a web-chat visitor's page and browser
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    search: str | None = Field(default=None, sa_type=sa.Text)  # name, e-mail, username folded


class ContactIdentity(SQLModel, table=True):
    __tablename__ = "contact_identities"
    __table_args__ = (sa.UniqueConstraint("channel_id", "platform_user_id"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    contact_id: uuid.UUID = Field(foreign_key="contacts.id", ondelete="CASCADE", index=True)
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE")
    platform_user_id: str = Field(max_length=200)
    created_at: datetime = timestamp()


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        sa.Index("ix_conversations_activity", "workspace_id", "last_activity_at", "id"),
        # routing: each agent's open load, and the queue of unassigned ones
        sa.Index("ix_conversations_assignee", "workspace_id", "assignee_id", "status"),
    )
    id: uuid.UUID = Field(primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE")
    contact_id: uuid.UUID = Field(foreign_key="contacts.id", ondelete="CASCADE", index=True)
    kind: str = Field(default="dm", max_length=20)
    channel_kind: str | None = Field(default=None, max_length=20)
    thread: str | None = Field(default=None, max_length=300)  # the platform address to reply to
    last_inbound_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # opens the window
    status: str = Field(default="open", max_length=20)  # open | pending | resolved | snoozed
    assignee_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    team_id: uuid.UUID | None = Field(default=None, foreign_key="teams.id", ondelete="SET NULL")
    snoozed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    priority: str | None = Field(default=None, max_length=10)  # low | medium | high | urgent
    last_activity_at: datetime = timestamp()
    last_message_preview: str | None = Field(default=None, max_length=200)
    last_event_id: str | None = Field(default=None, max_length=45)
    created_at: datetime = timestamp()
    title: str | None = Field(default=None, max_length=200)  # a group's, as its newest message says


class ConversationRead(SQLModel, table=True):
    """How far each agent has read each conversation."""

    __tablename__ = "conversation_reads"
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    conversation_id: uuid.UUID = Field(
        foreign_key="conversations.id", ondelete="CASCADE", primary_key=True
    )
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    up_to: str = Field(max_length=45)  # an event id
    up_to_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # that message's time
    read_at: datetime = timestamp()


class ConversationLabel(SQLModel, table=True):
    __tablename__ = "conversation_labels"
    __table_args__ = (sa.Index("ix_conversation_labels_workspace_label", "workspace_id", "label"),)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    conversation_id: uuid.UUID = Field(
        foreign_key="conversations.id", ondelete="CASCADE", primary_key=True
    )
    label: str = Field(max_length=50, primary_key=True)


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("channel_id", "platform_message_id"),
        sa.Index("ix_messages_conversation_time", "conversation_id", "sent_at", "id"),
        sa.Index("ix_messages_workspace_time", "workspace_id", "sent_at"),  # reports
        trigram_index("ix_messages_search", "search"),
    )
    id: uuid.UUID = Field(primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    conversation_id: uuid.UUID = Field(foreign_key="conversations.id", ondelete="CASCADE")
    contact_id: uuid.UUID = Field(foreign_key="contacts.id", ondelete="CASCADE")
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE")
    channel_kind: str = Field(max_length=20)
    kind: str = Field(default="dm", max_length=20)
    direction: str = Field(max_length=4)
    sender_type: str = Field(max_length=10)
    sender_id: str | None = Field(default=None, max_length=64)
    sender_name: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, sa_type=sa.Text)
    attachments: list[dict[str, Any]] = json_field(list)
    reply_to: str | None = Field(default=None, max_length=200)
    reactions: list[dict[str, Any]] = json_field(list)
    edited: bool = False
    deleted: bool = False
    platform_message_id: str = Field(max_length=200)
    client_id: str | None = Field(default=None, max_length=100)
    private_reply: bool = False
    note: bool = False
    hidden: bool = False  # a public comment hidden on the platform (by us or there)
    sent_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(max_length=20)
    error: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    raw: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    event_id: str | None = Field(default=None, max_length=45)
    created_at: datetime = timestamp()
    group_chat: dict[str, Any] | None = Field(default=None, sa_type=JSONType)  # Message.group
    standby: bool = False
    story: str | None = Field(default=None, max_length=10)
    referral: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    captions: str | None = Field(default=None, sa_type=sa.Text)  # its attachments', for search
    search: str | None = Field(default=None, sa_type=sa.Text)  # text and captions folded


class ReportEvent(SQLModel, table=True):
    """What reports count (`hub.reports.service`): a conversation opened, its first response, a
    resolution. Written by the persist group; the id is derived from what it records."""

    __tablename__ = "report_events"
    __table_args__ = (sa.Index("ix_report_events_workspace_at", "workspace_id", "at"),)
    id: uuid.UUID = Field(primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    conversation_id: uuid.UUID = Field(
        foreign_key="conversations.id", ondelete="CASCADE", index=True
    )
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE")
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    name: str = Field(max_length=20)  # opened | first_response | resolved
    at: datetime = Field(sa_type=UTCDateTime)
    value_s: float | None = None  # first_response, resolved: seconds since it opened


class WebhookEndpoint(SQLModel, table=True):
    """A URL of the workspace's own systems that hears of its events (`hub.hooks.service`)."""

    __tablename__ = "webhook_endpoints"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=2000)
    secret: str = Field(  # Fernet token of {"secret": ...}; shown once
        sa_type=sa.Text, sa_column_kwargs={"info": SEALED}
    )
    events: list[str] = json_field(list)
    created_at: datetime = timestamp()


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: pending (due at `next_attempt_at`), delivered, or dead
    (the dead-letter list, kept for a replay). The body is dropped once delivered."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_workspace", "workspace_id", "status", "created_at"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoints.id", ondelete="CASCADE")
    event_id: str = Field(max_length=45)
    event_name: str = Field(max_length=40)
    conversation_id: uuid.UUID | None = Field(default=None, index=True)  # for erasure
    body: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(default="pending", max_length=20)  # pending | delivered | dead
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = timestamp()
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """Append-only; holds ids and hashes, never message text or contact details."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_workspace_at", "workspace_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: uuid.UUID | None = Field(default=None, index=True)
    at: datetime = timestamp()
    ip: str | None = Field(default=None, max_length=45)
    actor_type: str = Field(max_length=20)  # user | system | platform
    actor_id: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=60)
    target_type: str | None = Field(default=None, max_length=30)
    target_id: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = json_field(dict)
    prev_hash: str | None = Field(default=None, max_length=64)  # the previous row's `hash`
    hash: str | None = Field(default=None, max_length=64)  # sha256 over prev_hash and this row


class DeletionRequest(SQLModel, table=True):
    """An erasure in progress or done. Keeps no personal data: the subject is a hash, and
    `progress` holds counts and ids of our own rows, which are gone once it is done."""

    __tablename__ = "deletion_requests"
    __table_args__ = (sa.Index("ix_deletion_requests_status", "status"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    confirmation_code: str = Field(max_length=40, unique=True)
    workspace_id: uuid.UUID | None = Field(
        default=None, foreign_key="workspaces.id", ondelete="CASCADE"
    )
    source: str = Field(max_length=20)  # meta | admin
    status: str = Field(max_length=20)  # received | in_progress | done | no_data
    subject_hash: str = Field(max_length=64)
    progress: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WhatsAppTemplate(SQLModel, table=True):
    """A message template of a WhatsApp channel's Business Account, as last synced (or as a
    status webhook changed it). `components` are WhatsApp's, kept as they came."""

    __tablename__ = "whatsapp_templates"
    __table_args__ = (
        sa.UniqueConstraint("channel_id", "name", "language"),
        sa.Index("ix_whatsapp_templates_waba", "waba_id", "template_id"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE")
    waba_id: str = Field(max_length=100)
    template_id: str = Field(max_length=100)
    name: str = Field(max_length=512)
    language: str = Field(max_length=20)
    status: str = Field(max_length=30)
    category: str = Field(max_length=30)
    parameter_format: str = Field(default="POSITIONAL", max_length=20)
    components: list[dict[str, Any]] = json_field(list)
    reason: str | None = Field(default=None, max_length=1000)
    synced_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class CommentReply(SQLModel, table=True):
    """The one private reply a comment may have (Meta allows one, within 7 days): reserved
    for a message before it is published, marked sent when the send group calls the platform
    (`hub.comments.replies`)."""

    __tablename__ = "comment_replies"
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE", primary_key=True)
    comment_id: str = Field(max_length=200, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    message_id: uuid.UUID
    reserved_at: datetime = timestamp(index=True)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WaitingChange(SQLModel, table=True):
    """A platform's change to a message the database does not have yet (an edit, a reaction,
    an unsend, a status or a read receipt delivered before its message): kept until the
    message comes (`hub.workers.persist`) or `waiting_change_ttl_s` passes (the retention
    sweep). Its own table, not a column of messages: there is no message row to hang it on."""

    __tablename__ = "waiting_changes"
    __table_args__ = (
        sa.Index("ix_waiting_changes_message", "channel_id", "platform_message_id"),
        sa.Index("ix_waiting_changes_received", "received_at"),
    )
    workspace_id: uuid.UUID = Field(
        foreign_key="workspaces.id", ondelete="CASCADE", primary_key=True
    )
    event_id: str = Field(max_length=45, primary_key=True)  # the change's own stream entry
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE")
    # Derived from the platform's thread, so an erasure finds it without a stored conversation.
    conversation_id: uuid.UUID | None = Field(default=None, index=True)
    platform_message_id: str = Field(max_length=200)
    name: str = Field(max_length=30)  # the event's name
    data: dict[str, Any] = json_field(dict)  # the event's data, as published
    received_at: datetime = timestamp()


class AttributeDefinition(SQLModel, table=True):
    """A custom attribute an admin defines for the workspace's contacts or conversations
    (`hub.attributes`). Its key is unique in the workspace, whichever it applies to, so a
    filter or a rule condition names it by key alone."""

    __tablename__ = "attribute_definitions"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "key"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    key: str = Field(max_length=40)
    label: str = Field(max_length=100)
    type: str = Field(max_length=10)  # text | number | date | list | link
    applies_to: str = Field(max_length=15)  # contact | conversation
    options: list[str] = json_field(list)  # a list's choices
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class AttributeValue(SQLModel, table=True):
    """One attribute's value on one contact or one conversation (exactly one of the two ids).
    A row per value, typed columns beside the text, rather than a JSON column: the same
    B-tree indexes answer equality (`value_text`) and ranges (`value_number`, and ISO dates,
    which sort as text) on SQLite and Postgres alike, and a definition's, a contact's or a
    conversation's values go with it by foreign key."""

    __tablename__ = "attribute_values"
    __table_args__ = (
        sa.UniqueConstraint("definition_id", "contact_id"),
        sa.UniqueConstraint("definition_id", "conversation_id"),
        sa.Index("ix_attribute_values_text", "definition_id", "value_text"),
        sa.Index("ix_attribute_values_number", "definition_id", "value_number"),
        sa.CheckConstraint(
            "(contact_id IS NULL) <> (conversation_id IS NULL)", name="ck_attribute_values_subject"
        ),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    definition_id: uuid.UUID = Field(foreign_key="attribute_definitions.id", ondelete="CASCADE")
    contact_id: uuid.UUID | None = Field(
        default=None, foreign_key="contacts.id", ondelete="CASCADE", index=True
    )
    conversation_id: uuid.UUID | None = Field(
        default=None, foreign_key="conversations.id", ondelete="CASCADE", index=True
    )
    value_text: str = Field(max_length=500)  # the value as the API gives it back
    value_number: float | None = Field(default=None)  # a number's, for ranges
    updated_at: datetime = timestamp()
