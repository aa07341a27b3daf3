"""The "push" consumer group: Web Push to the agents an event concerns, as their preferences
(`hub.notify.prefs`) allow.

- `conversation.updated` whose changes assign it: the assignee ("assigned"), unless they
  assigned it to themselves.
- `conversation.updated` whose changes put it in a team while it has no assignee: the team's
  members ("team", it waits in their queue), but not the agent who moved it.
- `mention.created`: each member named ("mention"), with the note's preview.

A batch read twice may push twice; a notice is only a hint, and the inbox shows the truth."""

from __future__ import annotations

import logging
import uuid

from sqlmodel import col, select

from hub.bus import Event
from hub.notify.prefs import Prefs
from hub.notify.push import Pusher
from hub.storage import tenancy
from hub.storage.models import Conversation, TeamMember
from hub.storage.store import Sessions
from schemas.events import ConversationUpdated, MentionCreated, parse_event

log = logging.getLogger("hub.notify")

PUSH_GROUP = "push"
WANTED = (ConversationUpdated.NAME, MentionCreated.NAME)


class PushWorker:
    def __init__(self, sessions: Sessions, prefs: Prefs, pusher: Pusher) -> None:
        self.sessions, self.prefs, self.pusher = sessions, prefs, pusher

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        wanted = [e for e in events if e.name in WANTED]
        if not wanted:
            return
        workspace = uuid.UUID(workspace_id)
        with tenancy.acting_for(workspace_id):
            for event in wanted:
                try:
                    data = parse_event(event.name, event.data)
                except ValueError:
                    log.warning("event %s (%s) does not fit its model", event.id, event.name)
                    continue
                if isinstance(data, MentionCreated):
                    await self._mentioned(workspace, data)
                elif isinstance(data, ConversationUpdated) and data.changes is not None:
                    await self._moved(workspace, data)

    async def _moved(self, workspace: uuid.UUID, data: ConversationUpdated) -> None:
        changes = data.changes
        assert changes is not None
        assignee = changes.assignee_id if isinstance(changes.assignee_id, uuid.UUID) else None
        team = changes.team_id if isinstance(changes.team_id, uuid.UUID) else None
        if assignee is None and team is None:
            return
        conversation = await self._conversation(workspace, data.conversation_id)
        preview = conversation.last_message_preview if conversation else None
        if assignee is not None and assignee != data.by:
            await self._push(workspace, [assignee], "push_assigned", "assigned", data, preview)
        elif team is not None and assignee is None:
            if conversation is not None and conversation.assignee_id is not None:
                return  # not in the queue
            async with self.sessions() as s:
                members = await s.exec(
                    select(TeamMember.user_id).where(
                        TeamMember.workspace_id == workspace, TeamMember.team_id == team
                    )
                )
                users = [u for u in members.all() if u != data.by]
            await self._push(workspace, users, "push_team", "team", data, preview)

    async def _mentioned(self, workspace: uuid.UUID, data: MentionCreated) -> None:
        users = [u for u in data.user_ids if u != data.by]
        await self._push(workspace, users, "push_mentions", "mention", data, data.preview)

    async def _push(
        self,
        workspace: uuid.UUID,
        users: list[uuid.UUID],
        pref: str,
        kind: str,
        data: ConversationUpdated | MentionCreated,
        preview: str | None,
    ) -> None:
        if not users:
            return
        prefs = await self.prefs.of_many(workspace, users)
        allowed = [u for u in users if getattr(prefs[u], pref)]
        await self.pusher.notify(workspace, allowed, kind, data.conversation_id, preview)

    async def _conversation(
        self, workspace: uuid.UUID, conversation_id: uuid.UUID
    ) -> Conversation | None:
        async with self.sessions() as s:
            found = await s.exec(
                select(Conversation).where(
                    Conversation.workspace_id == workspace,
                    col(Conversation.id) == conversation_id,
                )
            )
            return found.first()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.pusher.stop()
