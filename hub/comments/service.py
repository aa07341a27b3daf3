"""Agents moderate public comments: hide one (nobody but its author and their friends sees it),
show it again, or delete it, on Instagram or a Facebook Page (`adapters.meta.moderation`).

The platform is called first, from the web node, and the agent gets its answer: a change the
platform refused is not shown as done. What it accepted is published as `message.updated`
(`changes.hidden` or `changes.deleted`), so every open inbox sees it at once and the persist
group keeps it (a reload shows it), and audited (`comment.hidden`, `comment.unhidden`,
`comment.deleted`, ids only). A Page's own webhooks (`verb: hide | unhide | remove`) change
the same state when the comment is moderated elsewhere (`adapters.meta.messenger`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
from sqlmodel import select

from adapters.meta import moderation
from adapters.meta.moderation import Action
from adapters.outbound import TIMEOUT_S, MissingSecret, Outcome, Platforms, Unsendable, redact
from hub.accounts.auth import Principal
from hub.accounts.members import Actor, by_member
from hub.bus import Bus
from hub.channels.service import Channels
from hub.errors import BadRequest, Conflict, HubError, NotFound
from hub.storage import audit, tenancy
from hub.storage.inbox import Sessions
from hub.storage.models import MessageRow
from schemas.events import MessageChanges, MessageUpdated
from schemas.rest.comments import ModerationOut

log = logging.getLogger("hub.comments")

AUDITED = {"hide": "comment.hidden", "unhide": "comment.unhidden", "delete": "comment.deleted"}


class PlatformRefused(HubError):
    """The platform did not make the change; the message is its reason, in words."""

    status = 502
    code = "platform_refused"


class Moderation:
    def __init__(
        self,
        sessions: Sessions,
        bus: Bus,
        channels: Channels,
        platforms: Platforms,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.sessions, self.bus, self.channels = sessions, bus, channels
        self.platforms, self.client = platforms, client

    async def moderate(
        self,
        principal: Principal,
        actor: Actor,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
        action: Action,
    ) -> ModerationOut:
        row = await self._comment(principal.workspace_id, conversation_id, message_id)
        if row.deleted:
            raise Conflict("The comment is deleted.")
        if action != "delete" and row.direction != "in":
            raise BadRequest("Only a person's comment is hidden or shown; delete our own reply.")
        resolved = await self.channels.by_id(row.channel_id)
        if resolved is None:
            raise Conflict("The channel is disconnected.")
        if resolved.status == "needs_reconnect":
            raise Conflict("The channel needs to be reconnected.")
        outcome = await self._call(
            resolved.context.kind, row.platform_message_id, action, resolved.secrets
        )
        if outcome.kind == "needs_reconnect":
            await self.channels.mark(row.channel_id, "needs_reconnect")
        if outcome.kind != "sent":
            raise PlatformRefused(f"The platform did not {action} the comment: {outcome.reason}")
        changes = (
            MessageChanges(deleted=True)
            if action == "delete"
            else MessageChanges(hidden=action == "hide")
        )
        data = MessageUpdated(
            channel_id=row.channel_id,
            conversation_id=row.conversation_id,
            platform_message_id=row.platform_message_id,
            message_id=row.id,
            changes=changes,
            by=principal.user_id,
        )
        published = await self.bus.publish(
            str(principal.workspace_id),
            data.NAME,
            data.dump(),
            conversation_id=str(row.conversation_id),
        )
        with tenancy.acting_for(principal.workspace_id):
            async with self.sessions() as s, s.begin():
                detail = {
                    "conversation_id": str(row.conversation_id),
                    "channel_id": str(row.channel_id),
                }
                await audit.append(
                    s,
                    by_member(
                        principal.workspace_id, actor, AUDITED[action], row.id, detail, "message"
                    ),
                )
        return ModerationOut(
            message_id=row.id,
            hidden=row.hidden if action == "delete" else action == "hide",
            deleted=action == "delete",
            event_id=published.id,
        )

    async def _comment(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> MessageRow:
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s:
                found = await s.exec(
                    select(MessageRow).where(
                        MessageRow.workspace_id == workspace_id,
                        MessageRow.conversation_id == conversation_id,
                        MessageRow.id == message_id,
                    )
                )
                row = found.first()
        if row is None:
            raise NotFound("No such message in this conversation.")
        if row.kind != "comment" or row.private_reply or row.note:
            raise BadRequest("Only a public comment is hidden, shown or deleted.")
        return row

    async def _call(self, kind: str, comment_id: str, action: Action, secrets: Any) -> Outcome:
        try:
            request = moderation.build(kind, comment_id, action, secrets, self.platforms)
        except MissingSecret as exc:
            return Outcome.needs_reconnect(str(exc), exc.code)
        except Unsendable as exc:
            return Outcome.failed(str(exc), exc.code)
        try:
            if self.client is not None:
                response = await self._perform(self.client, request)
            else:
                async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                    response = await self._perform(client, request)
        except httpx.TransportError as exc:
            log.warning("moderating a comment failed: %s", redact(f"{type(exc).__name__}: {exc}"))
            return Outcome.failed("The platform could not be reached; try again.", "network")
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return moderation.interpret(response.status_code, body, response.headers, comment_id)

    @staticmethod
    async def _perform(client: httpx.AsyncClient, request: Any) -> httpx.Response:
        return await client.request(
            request.method,
            request.url,
            json=request.json,
            headers=request.headers,
            timeout=TIMEOUT_S,
        )
