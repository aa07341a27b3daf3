"""The "send" consumer group: agents' replies in platform conversations go out through the
platform's API, and the result comes back as `message.updated`.

Never twice: before calling the platform a worker claims the message on the bus
(`remember(only_new=True)`). Only answers that prove nothing was sent (5xx, 429, a
connection that could not be opened) are retried, by the claim holder, with backoff that
honours the platform's wait. A timeout or a connection lost after the request left proves
nothing: the send is failed ("unknown_outcome"), not retried. A claim found without an
outcome means a worker died mid-call: the platform may or may not have the message, so it
is marked failed ("interrupted") rather than sent again.

A message with files goes out as one send per file, in order: the text is the first file's
caption where the platform shows one that long (`Adapter.caption_limit`), otherwise a text
message of its own before the files; `reply_to` goes with the first send. Every file is read
and checked against the platform's limits before anything is sent. The message is `sent` once
every part is, with the first part's platform id (status webhooks of any part find it); a
part that fails stops the rest and fails the message, saying how many parts went out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any

import httpx

from adapters import registry
from adapters.outbound import Outcome, Outgoing, OutgoingFile, Platforms
from adapters.sending import send
from adapters.window import window
from hub.bus import Bus, Event
from hub.channels.service import Channels
from hub.comments.replies import PRIVATE_REPLY_WINDOW, CommentReplies, within_window
from hub.media.library import MediaLibrary, NoSuchFile
from hub.media.links import MediaLinks
from hub.realtime.ingress import Ingress
from hub.storage.store import Store
from hub.web.metrics import Metrics
from schemas.events import MessageChanges, MessageCreated, MessageUpdated
from schemas.message import (
    Attachment,
    DeliveryError,
    DeliveryStatus,
    Direction,
    Message,
    utc_now,
)

log = logging.getLogger("hub.sender")

CLAIM_TTL_S = 7 * 24 * 3600
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # about half a minute in all, then failed
MAX_WAIT_S = 60.0  # a platform asking for longer than this gets the send failed, not a stall


class Sender:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        ingress: Ingress,
        channels: Channels,
        platforms: Platforms,
        metrics: Metrics,
        client: httpx.AsyncClient,
        library: MediaLibrary,
        links: MediaLinks,
    ) -> None:
        self.bus, self.store, self.ingress, self.channels = bus, store, ingress, channels
        self.platforms, self.metrics = platforms, metrics
        self.client = client
        self.library, self.links = library, links
        self.replies = CommentReplies(store.sessions)

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        for event in events:
            if event.name == "message.updated" and '"send"' in event.data:
                await self._react_once(workspace_id, event)
            if event.name != "message.created":
                continue
            data = event.typed_or_none(log)
            if not isinstance(data, MessageCreated):
                continue
            message = data.message
            if (
                message.direction != Direction.OUT
                or message.status != DeliveryStatus.PENDING
                or registry.get(message.channel_kind) is None  # the web chat
            ):
                continue
            await self._send_once(workspace_id, message)

    async def _send_once(self, workspace_id: str, message: Message) -> None:
        bus = self.bus
        message_id = str(message.id)
        if not await bus.remember(
            workspace_id, f"send:{message_id}", "claimed", ttl_s=CLAIM_TTL_S, only_new=True
        ):
            if await bus.recall(workspace_id, f"sent:{message_id}") is None:
                self.metrics.sent(message.channel_kind, "failed", "interrupted")
                await self._update(
                    workspace_id,
                    message,
                    _failed(
                        "interrupted",
                        "The send was interrupted; it is "
                        "not retried automatically, so the message cannot arrive twice.",
                    ),
                )
            return
        outcome, part_ids = await self._attempt(workspace_id, message)
        self.metrics.sent(message.channel_kind, outcome.kind, outcome.code)
        await bus.remember(workspace_id, f"sent:{message_id}", outcome.kind, ttl_s=CLAIM_TTL_S)
        if outcome.kind == "sent" and outcome.platform_message_id:
            # Status webhooks name the platform's id (of any part): let them find our message.
            for platform_id in part_ids or [outcome.platform_message_id]:
                await bus.remember(
                    workspace_id,
                    f"pmid:{message.channel_id}:{platform_id}",
                    message_id,
                    ttl_s=CLAIM_TTL_S,
                )
            await self._update(
                workspace_id,
                message,
                MessageChanges(
                    status=DeliveryStatus.SENT, platform_message_id=outcome.platform_message_id
                ),
            )
        elif outcome.kind == "needs_reconnect":
            await self.channels.mark(message.channel_id, "needs_reconnect")
            await self._update(workspace_id, message, _failed("needs_reconnect", outcome.reason))
        else:
            await self._update(
                workspace_id, message, _failed(outcome.code or outcome.kind, outcome.reason)
            )

    async def _react_once(self, workspace_id: str, event: Event) -> None:
        """An agent's reaction: claimed like a message, so it is sent at most once; if the
        platform refuses it, the reaction is taken back in the inbox."""
        data = event.typed_or_none(log)
        if (
            not isinstance(data, MessageUpdated)
            or data.send is None
            or data.conversation_id is None
            or data.changes.reaction is None
        ):
            return
        key = f"send:react:{event.id}"
        if not await self.bus.remember(
            workspace_id, key, "claimed", ttl_s=CLAIM_TTL_S, only_new=True
        ):
            return
        outgoing = await self._outgoing(workspace_id, data.channel_id, data.conversation_id)
        if isinstance(outgoing, Outgoing):
            outgoing = dataclasses.replace(
                outgoing,
                reaction=data.send.reaction,
                reply_to=data.platform_message_id,
            )
            outcome = await self._retrying(outgoing, str(data.message_id))
        else:
            outcome = outgoing
        if outcome.kind != "sent":
            reaction = data.changes.reaction.model_copy(update={"action": "unreact", "emoji": None})
            taken_back = MessageUpdated(
                channel_id=data.channel_id,
                conversation_id=data.conversation_id,
                platform_message_id=data.platform_message_id,
                message_id=data.message_id,
                changes=MessageChanges(reaction=reaction),
                error=DeliveryError(code=outcome.code or outcome.kind, message=outcome.reason),
            )
            await self.bus.publish(
                workspace_id,
                taken_back.NAME,
                taken_back.dump(),
                conversation_id=str(data.conversation_id),
            )

    async def _attempt(self, workspace_id: str, message: Message) -> tuple[Outcome, list[str]]:
        """The message's outcome, and the platform ids of its parts when it has several."""
        template = _template_of(message)
        outgoing = await self._outgoing(
            workspace_id,
            message.channel_id,
            message.conversation_id,
            text=message.text or "",
            reply_to=message.reply_to,
            private_reply=message.private_reply,
            template=template is not None,
        )
        if isinstance(outgoing, Outcome):
            return outgoing, []
        if template is not None:
            return await self._template(workspace_id, message, outgoing, template), []
        comment = outgoing.comment_id if not outgoing.public else None
        if comment is not None:
            # Meta allows one private reply per comment: the database decides which message
            # it is, whatever Redis remembers.
            if not await self.replies.mark_sent(
                message.workspace_id, message.channel_id, comment, message.id
            ):
                return Outcome.failed(
                    "This comment already has its private reply: Instagram and Facebook "
                    "allow one per comment.",
                    "already_replied",
                ), []
        outcome, taken = await self._deliver(workspace_id, message, outgoing)
        unsent = outcome.kind != "sent" and not taken and outcome.code != "unknown_outcome"
        if comment is not None and unsent:
            # The platform has nothing of it (refused, unreachable, or never asked): the
            # comment keeps its one private reply for a later message. An unknown outcome
            # keeps the mark: the platform may have it.
            await self.replies.release(
                message.workspace_id, message.channel_id, comment, message.id
            )
        return outcome, taken if outcome.kind == "sent" else []

    async def _deliver(
        self, workspace_id: str, message: Message, outgoing: Outgoing
    ) -> tuple[Outcome, list[str]]:
        """The outcome, and the platform ids of the parts of several the platform took (also
        when a later part failed)."""
        files = [a for a in message.attachments if a.file]
        if not files:
            return await self._retrying(outgoing, str(message.id)), []
        parts = await self._parts(workspace_id, message, outgoing, files)
        if isinstance(parts, Outcome):
            return parts, []
        sent: list[str] = []
        for number, part in enumerate(parts, 1):
            outcome = await self._retrying(part, f"{message.id} ({number}/{len(parts)})")
            if outcome.kind != "sent" or not outcome.platform_message_id:
                if sent:
                    reason = f"{len(sent)} of {len(parts)} parts were sent, then: {outcome.reason}"
                    outcome = dataclasses.replace(outcome, reason=reason)
                return outcome, sent
            sent.append(outcome.platform_message_id)
        return Outcome.sent(sent[0]), sent

    async def _template(
        self,
        workspace_id: str,
        message: Message,
        outgoing: Outgoing,
        template: dict[str, Any],
    ) -> Outcome:
        """A WhatsApp template (`hub.templates.sending`): one send, its header file (when the
        hub keeps it) uploaded first like any file."""
        header: OutgoingFile | None = None
        files = [a for a in message.attachments if a.file]
        if files:
            adapter = registry.adapter_for(outgoing.kind)
            attachment = files[0]
            try:
                data, content_type = await self.library.read(
                    uuid.UUID(workspace_id), message.conversation_id, attachment.file or ""
                )
            except NoSuchFile:
                return Outcome.failed("The template's header file is no longer kept.", "file_gone")
            except Exception:
                log.warning("the header file of %s could not be read", message.id, exc_info=True)
                return Outcome.failed("The template's header file could not be read.", "storage")
            refusal = adapter.refuse_media(content_type, len(data))
            if refusal is not None:
                return Outcome.failed(refusal.message, refusal.code)
            header = OutgoingFile(content_type, attachment.name or attachment.file or "", data)
        out = dataclasses.replace(outgoing, text="", reply_to=None, template=template, file=header)
        return await self._retrying(out, str(message.id))

    async def _parts(
        self, workspace_id: str, message: Message, outgoing: Outgoing, files: list[Attachment]
    ) -> list[Outgoing] | Outcome:
        """One send per file (and the text on its own when no caption can carry it), every
        file read and checked against the platform's limits first."""
        adapter = registry.adapter_for(outgoing.kind)
        workspace = uuid.UUID(workspace_id)
        loaded: list[OutgoingFile] = []
        for attachment in files:
            file = attachment.file or ""
            try:
                if adapter.media_by_url:  # the platform fetches it: a link, not the bytes
                    found = await self.library.find(workspace, message.conversation_id, file)
                    content_type, size = found.kind.content_type, found.stored.size_bytes
                    data, url = b"", self.links.url(workspace, message.conversation_id, file)
                else:
                    data, content_type = await self.library.read(
                        workspace, message.conversation_id, file
                    )
                    size, url = len(data), None
            except NoSuchFile:
                return Outcome.failed("A file of the message is no longer kept.", "file_gone")
            except Exception:  # the store is unreachable: the agent learns it, nothing is sent
                log.warning("a file of %s could not be read", message.id, exc_info=True)
                return Outcome.failed("A file of the message could not be read.", "storage")
            refusal = adapter.refuse_media(content_type, size)
            if refusal is not None:
                return Outcome.failed(refusal.message, refusal.code)
            loaded.append(OutgoingFile(content_type, attachment.name or file, data, url))
        text = outgoing.text
        fits = bool(text) and len(text) <= adapter.caption_limit(loaded[0].content_type)
        parts = [] if fits or not text else [dataclasses.replace(outgoing)]
        for index, one in enumerate(loaded):
            parts.append(
                dataclasses.replace(
                    outgoing,
                    text=text if fits and index == 0 else "",
                    file=one,
                    reply_to=outgoing.reply_to if not parts else None,
                )
            )
        return parts

    async def _retrying(self, outgoing: Outgoing, label: str) -> Outcome:
        platforms = self.platforms
        outcome = await send(self.client, outgoing, platforms)
        for delay in RETRY_DELAYS_S:
            if outcome.kind != "retry":
                return outcome
            wait = outcome.after_s if outcome.after_s is not None else delay
            if wait > MAX_WAIT_S:
                break
            log.info("send of %s retried in %.1fs: %s", label, wait, outcome.reason)
            await asyncio.sleep(wait)
            outcome = await send(self.client, outgoing, platforms)
        if outcome.kind == "retry":
            return Outcome.failed(
                f"The platform did not accept it: {outcome.reason}", "unavailable"
            )
        return outcome

    async def _outgoing(
        self,
        workspace_id: str,
        channel_id: uuid.UUID,
        conversation_id: uuid.UUID,
        *,
        text: str = "",
        reply_to: str | None = None,
        private_reply: bool = False,
        template: bool = False,
    ) -> Outgoing | Outcome:
        resolved = await self.channels.by_id(channel_id)
        if resolved is None:
            return Outcome.failed("The channel is disconnected.", "channel_disconnected")
        if resolved.status == "needs_reconnect":
            return Outcome.failed("The channel needs to be reconnected.", "needs_reconnect")
        ref = await self.ingress.conversation(uuid.UUID(workspace_id), conversation_id)
        if not ref.thread:
            return Outcome.failed("The conversation has no platform address.", "no_address")
        comment = ref.thread.split(":", 1)[1] if ref.thread.startswith("comment:") else None
        row = await self.store.conversation(uuid.UUID(workspace_id), ref.id)
        now = utc_now()
        current = window(ref.channel_kind, row.last_inbound_at if row else None, now)
        private = comment is not None and private_reply
        if private and comment is not None:
            # Meta: one private reply to a comment, within 7 days of that comment. `reply_to`
            # names the comment answered (a reply in the thread); else the thread's first.
            comment = reply_to or comment
            at = await self.replies.commented_at(uuid.UUID(workspace_id), channel_id, comment)
            at = at or (row.last_inbound_at if row else None) or now
            if not within_window(at, now):
                return Outcome.failed(
                    f"Instagram and Facebook allow a private reply only within 7 days of the "
                    f"comment; this one was written at {at.isoformat()}, so the window closed "
                    f"at {(at + PRIVATE_REPLY_WINDOW).isoformat()}.",
                    "window_closed",
                )
        elif comment is None and not current.open and not template:
            # Public replies have no window; a template is what WhatsApp lets through a closed one.
            closed = current.closes_at.isoformat() if current.closes_at else "earlier"
            return Outcome.failed(
                f"The messaging window closed at {closed}: the person has to write first.",
                "window_closed",
            )
        return Outgoing(
            kind=resolved.context.kind,
            account_id=resolved.context.account_id,
            recipient="" if comment else ref.thread,
            text=text,
            reply_to=reply_to,
            comment_id=comment,
            public=comment is not None and not private,
            secrets=resolved.secrets,
            human_agent=current.human_agent and comment is None,
        )

    async def _update(self, workspace_id: str, message: Message, changes: MessageChanges) -> None:
        data = MessageUpdated(
            channel_id=message.channel_id,
            conversation_id=message.conversation_id,
            platform_message_id=message.platform_message_id,
            message_id=message.id,
            changes=changes,
        )
        await self.bus.publish(
            workspace_id, data.NAME, data.dump(), conversation_id=str(message.conversation_id)
        )


def _template_of(message: Message) -> dict[str, Any] | None:
    """The `template` object of an agent's WhatsApp template message (`raw.template`)."""
    adapter = registry.get(message.channel_kind)
    raw = message.raw if adapter is not None and adapter.sends_templates else None
    template = raw.get("template") if isinstance(raw, dict) else None
    return template if isinstance(template, dict) else None


def _failed(code: str, reason: str | None) -> MessageChanges:
    error = DeliveryError(code=code, message=reason or "The send failed.")
    return MessageChanges(status=DeliveryStatus.FAILED, error=error)
