"""The "profile" consumer group: after a new Instagram or Messenger contact writes, fetch
their name, username and picture from the Graph user-profile endpoint, off the webhook
path, and publish `contact.updated`. A profile is refreshed at most daily; a failure
leaves the id shown and is tried again on a later message (after a short pause)."""

from __future__ import annotations

import logging

import httpx

from adapters import registry
from adapters.outbound import Platforms
from hub.bus import Bus, Event
from hub.channels.service import Channels
from hub.privacy import erasure
from schemas.events import ContactUpdated
from schemas.message import Message

log = logging.getLogger("hub.profiles")

FRESH_S = 24 * 3600
RETRY_AFTER_FAILURE_S = 300


class Profiler:
    def __init__(
        self, bus: Bus, channels: Channels, platforms: Platforms, client: httpx.AsyncClient
    ) -> None:
        self.bus, self.channels, self.platforms = bus, channels, platforms
        self.client = client

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        for event in events:
            if (data := event.created(log)) is None:
                continue
            message = data.message
            user_id = data.contact.platform_user_id if data.contact else None
            adapter = registry.get(message.channel_kind)
            fetches = adapter is not None and adapter.fetches_profiles
            if message.direction != "in" or not fetches or not user_id:
                continue
            await self._refresh(workspace_id, message, user_id, event.id)

    async def _refresh(
        self, workspace_id: str, message: Message, user_id: str, event_id: str
    ) -> None:
        bus = self.bus
        contact_id = str(message.contact_id)
        if not await bus.remember(
            workspace_id, f"profile:{contact_id}", "asked", ttl_s=FRESH_S, only_new=True
        ):
            return  # fetched (or being fetched) within the day
        resolved = await self.channels.by_id(message.channel_id)
        if resolved is None:
            return
        adapter = registry.adapter_for(resolved.context.kind)
        profile = await adapter.fetch_profile(
            self.client, user_id, resolved.secrets, self.platforms
        )
        if profile is None:
            await bus.remember(
                workspace_id, f"profile:{contact_id}", "failed", ttl_s=RETRY_AFTER_FAILURE_S
            )
            return
        if await erasure.erased_after(bus, workspace_id, contact_id, event_id):
            # The person was erased while we asked: their profile is not kept, and if they
            # write again it is asked for again.
            await bus.forget(workspace_id, [f"profile:{contact_id}"])
            return
        update = ContactUpdated(
            contact_id=message.contact_id,
            name=profile.name,
            username=profile.username,
            picture_url=profile.picture_url,
        )
        await bus.publish(workspace_id, update.NAME, update.dump())
