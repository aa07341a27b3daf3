"""Notifications: an agent's preferences, the hub's Web Push key and a browser's subscription."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from schemas.rest.base import Out


class NotificationPrefs(BaseModel):
    """What the inbox and Web Push tell this agent of; every field has its default."""

    model_config = ConfigDict(extra="forbid")
    sound_new_conversation: bool = Field(
        default=True, description="A sound in the inbox for a new conversation"
    )
    sound_own_messages: bool = Field(
        default=True, description="A sound for a new message in a conversation assigned to me"
    )
    sound_mentions: bool = Field(default=True, description="A sound when I am @mentioned")
    desktop: bool = Field(
        default=True, description="Desktop notifications while the inbox's tab is hidden"
    )
    push_assigned: bool = Field(
        default=True, description="Web Push when a conversation is assigned to me"
    )
    push_team: bool = Field(
        default=True, description="Web Push when a conversation lands in my team's queue"
    )
    push_mentions: bool = Field(default=True, description="Web Push when I am @mentioned")


class PushKeyOut(Out):
    public_key: str = Field(
        description="The hub's VAPID public key (uncompressed P-256 point, base64url): the "
        "applicationServerKey of PushManager.subscribe"
    )


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")
    p256dh: str = Field(min_length=80, max_length=200, pattern=r"^[A-Za-z0-9_-]+=*$")
    auth: str = Field(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+=*$")


class SubscriptionBody(BaseModel):
    """PushSubscription.toJSON() as the browser gives it."""

    model_config = ConfigDict(extra="ignore")
    endpoint: str = Field(min_length=10, max_length=2000, description="The push service's URL")
    keys: SubscriptionKeys
    expirationTime: int | None = None


class UnsubscribeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str = Field(min_length=10, max_length=2000)


class SubscriptionOut(Out):
    id: uuid.UUID
    endpoint: str


class LogoutBody(BaseModel):
    """POST /api/auth/logout's optional body: this browser's push subscription, forgotten with
    the session so a shared browser gets no more notices of the agent who left."""

    model_config = ConfigDict(extra="forbid")
    push_endpoint: str | None = Field(
        default=None,
        max_length=2000,
        description="This browser's push endpoint: its subscription (the caller's) is deleted",
    )
