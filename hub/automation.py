"""The "automation" consumer group: what the hub does by itself when a contact writes.

The away auto-reply: a contact's message that arrives while its channel is closed (the
channel's business hours, `settings.hours`, see `hub.hours`) is answered with the channel's
`hours.auto_reply`, made out to the contact (`hub.placeholders`). Once per conversation and
closed period: a second message before the channel opens gets none. Closed means closed both
when the contact sent it and now, so a message the worker reads late, after opening time,
is not told that nobody is there. Comments get none (an automatic public reply under a post
is not what a business wants), and neither do notes or our own messages.

Never twice: the reply is claimed on the bus (`remember(only_new=True)`) before it is
published, and its id comes from the conversation and the period. A worker that dies between
the claim and the publish leaves that period without a reply, never with two.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hub import placeholders
from hub.bus import Event
from hub.cache import Cached
from hub.channelsettings import Hours
from hub.message import Direction, utc_now

if TYPE_CHECKING:
    from hub.services import Services

log = logging.getLogger("hub.automation")

AUTOMATION_GROUP = "automation"
NEVER_OPENS_TTL_S = 7 * 24 * 3600


class Automation:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._hours: Cached[tuple[str, uuid.UUID], Hours | None] = Cached(
            services.settings.cache_ttl_s, 10_000
        )

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        for event in events:
            if event.name != "message.created":
                continue
            data: dict[str, Any] = event.payload()
            message: dict[str, Any] = data.get("message") or {}
            if (
                message.get("direction") != Direction.IN
                or message.get("note")
                or message.get("kind") == "comment"
            ):
                continue
            await self._away(workspace_id, message, data.get("contact") or {})

    async def _away(
        self, workspace_id: str, message: dict[str, Any], contact: dict[str, Any]
    ) -> None:
        hours = await self.hours(workspace_id, uuid.UUID(str(message["channel_id"])))
        if hours is None or not hours.auto_reply:
            return
        schedule, now = hours.business_hours(), utc_now()
        if schedule.is_open(now) or schedule.is_open(datetime.fromisoformat(message["sent_at"])):
            return
        opens = schedule.next_open(now)
        period = opens.isoformat() if opens else "never"
        ttl_s = int((opens - now).total_seconds()) + 3600 if opens else NEVER_OPENS_TTL_S
        conversation_id = uuid.UUID(str(message["conversation_id"]))
        bus, ingress = self.services.bus, self.services.ingress
        if not await bus.remember(
            workspace_id, f"away:{conversation_id}:{period}", "1", ttl_s=ttl_s, only_new=True
        ):
            return
        ref = await ingress.conversation(uuid.UUID(workspace_id), conversation_id)
        known = placeholders.values(contact.get("name"), None)
        await ingress.system_message(
            ref, f"away:{period}", placeholders.render(hours.auto_reply, known)
        )

    async def hours(self, workspace_id: str, channel_id: uuid.UUID) -> Hours | None:
        """The channel's business hours (None: always open), cached for `cache_ttl_s`."""

        async def load() -> Hours | None:
            channel = await self.services.store.channel(uuid.UUID(workspace_id), channel_id)
            raw = (channel.settings or {}).get("hours") if channel else None
            if not isinstance(raw, dict):
                return None
            try:
                return Hours.model_validate(raw)
            except ValidationError:
                log.warning("channel %s has hours that do not validate", channel_id)
                return None

        return await self._hours.load((workspace_id, channel_id), load)
