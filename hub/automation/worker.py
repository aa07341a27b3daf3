"""The "automation" consumer group: what the hub does by itself, the away auto-reply and the
admins' automation rules (`hub.automation.rules`).

The away auto-reply: a contact's message that arrives while its channel is closed (the
channel's business hours, `settings.hours`, see `hub.channels.hours`) is answered with the channel's
`hours.auto_reply`, made out to the contact (`hub.canned.placeholders`). Once per conversation and
closed period: a second message before the channel opens gets none. Closed means closed both
when the contact sent it and now, so a message the worker reads late, after opening time,
is not told that nobody is there. Comments get none (an automatic public reply under a post
is not what a business wants), and neither do notes, our own messages, or standby messages
(Meta's handover protocol: another app owns that thread, the hub only watches it).

Rules: a contact's message triggers `message.received` (and `conversation.created` when it
is the conversation's first), a person's resolution `conversation.resolved`. The enabled
rules are kept under their version on the bus (`hub.storage.cache.Versioned`) and read again
once an admin's change has set a new one, so the change applies to the next event. A rule
whose conditions hold acts once per event: its auto-reply (a system message, never under a
public comment), one `conversation.updated` with its changes and `rule: {id, name}`, a note
in the conversation saying what it did, and a `rule.applied` audit row. What a rule publishes
never triggers a rule (a rule's change carries `rule`, its messages are ours), so rules
cannot loop.

Comments: a new comment from a person (not our own reply, not a mention) also triggers
`comment.created`, whose rules may answer it in public (`public_reply`, one per comment from
rules) and with a private reply (`private_reply`): a direct message through
`recipient.comment_id`, which Meta allows once per comment and within 7 days of it. The
private reply is reserved in the database for one message before it is published
(`hub.comments.replies`), so a redelivered webhook, a second rule or a retried event never
makes a second; a comment past 7 days, or one that had its reply, gets none, and the rule's
note says why.

Never twice: a reply, and a rule's action, is claimed on the bus
(`remember(only_new=True)`) before it is published, and its id comes from the conversation
and the period (or the rule and the event). A worker that dies between the claim and the
publish leaves it undone, never done twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hub.accounts.members import Members
from hub.attributes.service import Attributes
from hub.automation import rules
from hub.bus import Bus, Event
from hub.canned import placeholders
from hub.channels.options import Hours, hours_of, open_at
from hub.comments.replies import CommentReplies, within_window
from hub.errors import NotFound
from hub.realtime.ingress import ConversationRef, Ingress
from hub.reports.service import stream_time
from hub.routing.teams import Teams
from hub.storage import audit, tenancy
from hub.storage.cache import Cached
from hub.storage.models import AutomationRule
from hub.storage.store import Store
from schemas.events import ConversationChanges, ConversationUpdated, MessageCreated, RuleRef
from schemas.message import Direction, Message, message_id_for, utc_now

log = logging.getLogger("hub.automation")

AUTOMATION_GROUP = "automation"
NEVER_OPENS_TTL_S = 7 * 24 * 3600
RULE_CLAIM_TTL_S = 24 * 3600  # longer than any redelivery of the event
FIRST_TTL_S = 30 * 24 * 3600  # a conversation's "created" claim (the database decides later)
LIVE = "live_comments"  # Instagram: "You cannot reply to comments on a live video" in public


class Automation:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        ingress: Ingress,
        members: Members,
        teams: Teams,
        *,
        cache_ttl_s: float,
    ) -> None:
        self.bus, self.store, self.ingress = bus, store, ingress
        self.members, self.teams = members, teams
        self._hours: Cached[tuple[str, uuid.UUID], Hours | None] = Cached(cache_ttl_s, 10_000)
        self._rules = rules.Rules(store.sessions, bus)
        self.replies = CommentReplies(store.sessions)
        self.attributes = Attributes(store.sessions)

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        with tenancy.acting_for(workspace_id):
            batch = _Batch(self, workspace_id)
            for event in events:
                if event.name == "message.created":
                    data = event.typed_or_none(log)
                    if not isinstance(data, MessageCreated):
                        continue
                    message, name = data.message, data.contact.name if data.contact else None
                    if message.direction != Direction.IN or message.note:
                        continue
                    if message.kind != "comment" and not message.standby:
                        await self._away(workspace_id, message, name)
                    await batch.message(event, message, name)
                    if message.kind == "comment" and not message.platform_message_id.startswith(
                        "mention:"  # names the comment, not what it says: not a new comment
                    ):
                        await batch.comment(event, message, name)
                elif event.name == "conversation.updated" and '"resolved"' in event.data:
                    update = event.typed_or_none(log)
                    if (
                        isinstance(update, ConversationUpdated)
                        and update.changes is not None
                        and update.changes.status == "resolved"
                        and not update.rule
                        and not update.routed
                    ):
                        await batch.resolved(event, update.conversation_id)

    async def _away(self, workspace_id: str, message: Message, name: str | None) -> None:
        """`name`: the contact's, as its message says."""
        hours = await self.hours(workspace_id, message.channel_id)
        if hours is None or not hours.auto_reply:
            return
        schedule, now = hours.business_hours(), utc_now()
        if schedule.is_open(now) or schedule.is_open(message.sent_at):
            return
        opens = schedule.next_open(now)
        period = opens.isoformat() if opens else "never"
        ttl_s = int((opens - now).total_seconds()) + 3600 if opens else NEVER_OPENS_TTL_S
        conversation_id = message.conversation_id
        bus, ingress = self.bus, self.ingress
        if not await bus.remember(
            workspace_id, f"away:{conversation_id}:{period}", "1", ttl_s=ttl_s, only_new=True
        ):
            return
        ref = await ingress.conversation(uuid.UUID(workspace_id), conversation_id)
        known = placeholders.values(name, None)
        await ingress.system_message(
            ref, f"away:{period}", placeholders.render(hours.auto_reply, known)
        )

    async def enabled(self, workspace_id: uuid.UUID) -> list[AutomationRule]:
        """The workspace's enabled rules, in order, read again only when their version on the
        bus has changed: a batch costs one bus read, not a query."""
        return await self._rules.versions.load(
            str(workspace_id), lambda: self._rules.all(workspace_id, enabled=True)
        )

    async def is_open(self, workspace_id: str, channel_id: uuid.UUID, at: datetime) -> bool:
        return open_at(await self.hours(workspace_id, channel_id), at)

    async def hours(self, workspace_id: str, channel_id: uuid.UUID) -> Hours | None:
        """The channel's business hours (None: always open), cached for `cache_ttl_s`."""

        async def load() -> Hours | None:
            channel = await self.store.channel(uuid.UUID(workspace_id), channel_id)
            return hours_of(channel.settings) if channel else None

        return await self._hours.load((workspace_id, channel_id), load)


class _Batch:
    """One batch's rules: read once, when the first trigger comes."""

    def __init__(self, automation: Automation, workspace_id: str) -> None:
        self.automation = automation
        self.workspace_id = workspace_id
        self.workspace = uuid.UUID(workspace_id)
        self._rules: list[AutomationRule] | None = None

    async def enabled(self) -> list[AutomationRule]:
        if self._rules is None:
            self._rules = await self.automation.enabled(self.workspace)
        return self._rules

    async def message(self, event: Event, message: Message, name: str | None) -> None:
        found = await self.enabled()
        if not found:
            return
        ref = await self._conversation(message.conversation_id)
        if ref is None:
            return
        sent_at = message.sent_at
        triggers = {"message.received"}
        if any(r.trigger == "conversation.created" for r in found) and await self._first(
            ref, sent_at
        ):
            triggers.add("conversation.created")
        fitting = [r for r in found if r.trigger in triggers]
        if fitting:
            text = message.text or ""
            await self._run(fitting, event, ref, sent_at, text, name, answer=not message.standby)

    async def comment(self, event: Event, message: Message, name: str | None) -> None:
        fitting = [r for r in await self.enabled() if r.trigger == "comment.created"]
        ref = await self._conversation(message.conversation_id) if fitting else None
        if ref is not None:
            text = message.text or ""
            await self._run(fitting, event, ref, message.sent_at, text, name, comment=message)

    async def resolved(self, event: Event, conversation_id: uuid.UUID) -> None:
        fitting = [r for r in await self.enabled() if r.trigger == "conversation.resolved"]
        ref = await self._conversation(conversation_id) if fitting else None
        if ref is not None:
            await self._run(fitting, event, ref, stream_time(event.id), "", None)

    async def _conversation(self, conversation_id: uuid.UUID) -> ConversationRef | None:
        """None for a conversation that is gone (erased since): there is nothing to act on."""
        try:
            return await self.automation.ingress.conversation(self.workspace, conversation_id)
        except NotFound:
            return None

    async def _first(self, ref: ConversationRef, sent_at: datetime) -> bool:
        """Whether this message began its conversation: none stored before it, and the first
        to claim the conversation (a replayed or a second early message does not)."""
        stored = await self.automation.store.conversation(self.workspace, ref.id)
        if stored is not None and stored.created_at < sent_at:
            return False
        return await self.automation.bus.remember(
            self.workspace_id, f"rule-first:{ref.id}", "1", ttl_s=FIRST_TTL_S, only_new=True
        )

    async def _run(
        self,
        fitting: list[AutomationRule],
        event: Event,
        ref: ConversationRef,
        at: datetime,
        text: str,
        name: str | None,
        *,
        answer: bool = True,
        comment: Message | None = None,
    ) -> None:
        """Without `answer` (a standby message), a rule's reply is left out; its other
        actions are the hub's own business and still apply."""
        facts = await self._facts(fitting, ref, at, text, name)
        facts.post_id = post_of(comment) if comment is not None else ""
        for rule in fitting:
            if not all(rules.evaluate(rule.conditions, facts)):
                continue
            claim = f"rule:{rule.id}:{event.id}"
            if await self.automation.bus.remember(
                self.workspace_id, claim, "1", ttl_s=RULE_CLAIM_TTL_S, only_new=True
            ):
                await self._act(rule, event, ref, facts.contact_name, answer, comment)

    async def _facts(
        self,
        fitting: list[AutomationRule],
        ref: ConversationRef,
        at: datetime,
        text: str,
        name: str | None,
    ) -> rules.Facts:
        """What the conditions need, and only that: the stored contact for its e-mail (or a
        name the event lacks), the labels, the channel's hours, the custom attributes."""
        wanted = {c["field"] for r in fitting for c in r.conditions}
        store = self.automation.store
        facts = rules.Facts(
            channel_id=str(ref.channel_id),
            channel_kind=ref.channel_kind,
            text=text,
            contact_name=name or "",
        )
        if "contact_email" in wanted or not facts.contact_name:
            stored = (await store.contacts(self.workspace, [ref.contact_id])).get(ref.contact_id)
            if stored is not None:
                facts.contact_name = facts.contact_name or stored.name or stored.username or ""
                facts.contact_email = stored.email or ""
        if "label" in wanted:
            facts.labels = (await store.labels(self.workspace, [ref.id])).get(ref.id, [])
        if "business_hours" in wanted:
            facts.open = await self.automation.is_open(self.workspace_id, ref.channel_id, at)
        if "conversation_attribute" in wanted:
            found = self.automation.attributes
            facts.attributes["conversation"] = await found.values(
                self.workspace, "conversation", ref.id
            )
        if "contact_attribute" in wanted:
            found = self.automation.attributes
            facts.attributes["contact"] = await found.values(
                self.workspace, "contact", ref.contact_id
            )
        return facts

    async def _act(
        self,
        rule: AutomationRule,
        event: Event,
        ref: ConversationRef,
        contact_name: str,
        answer: bool = True,
        comment: Message | None = None,
    ) -> None:
        """The rule's actions on the conversation, then its note and audit row."""
        ingress, now, key = self.automation.ingress, utc_now(), f"rule:{rule.id}:{event.id}"
        # No automatic public reply under a post: a rule's reply goes to direct messages only.
        answer = answer and ref.kind != "comment"
        done = [a for a in rule.actions if answer or a["type"] != "send_reply"]
        if not done:  # only a reply, under a public comment: nothing to do or to record
            return
        known = placeholders.values(contact_name or None, None)
        reply = next((a["text"] for a in done if a["type"] == "send_reply"), None)
        if reply is not None:
            await ingress.system_message(ref, key, placeholders.render(reply, known))
        refused: dict[str, str] = {}  # action type -> why it was not taken, for the note
        for action in done:
            kind = action["type"]
            if comment is None or kind not in ("public_reply", "private_reply"):
                continue
            text = placeholders.render(action["text"], known)
            if kind == "public_reply" and (comment.raw or {}).get("field") == LIVE:
                refused[kind] = "no public reply (Instagram takes none under a live video)"
            elif kind == "public_reply":  # one per comment from rules, whichever
                await ingress.system_message(ref, f"public:{comment.platform_message_id}", text)
            elif why := await self._private_reply(rule, ref, comment, text):
                refused[kind] = why
        done = [a for a in done if a["type"] not in refused]
        changes = rules.changes(done, now)
        if changes:
            data = ConversationUpdated(
                conversation_id=ref.id,
                changes=ConversationChanges.model_validate(changes),
                rule=RuleRef(id=rule.id, name=rule.name),
            )
            await self.automation.bus.publish(
                self.workspace_id, data.NAME, data.dump(), dedupe_key=key
            )
        said = rules.describe(done, await self._names(done), now) + list(refused.values())
        if said:
            note = f"Rule “{rule.name}”: " + ", ".join(said) + "."
            await ingress.system_message(ref, f"note:{key}", note, note=True)
        async with self.automation.store.sessions() as s, s.begin():
            await audit.append(
                s,
                audit.record(
                    self.workspace,
                    "rule.applied",
                    "conversation",
                    ref.id,
                    actor_id=f"rule:{rule.id}",
                    detail={
                        "rule_id": str(rule.id),
                        "trigger": rule.trigger,
                        "event": event.id,
                        "actions": [a["type"] for a in done],
                    },
                ),
            )

    async def _private_reply(
        self, rule: AutomationRule, ref: ConversationRef, comment: Message, text: str
    ) -> str:
        """Publish the comment's one private reply; or say, for the rule's note, why not
        ("" when this rule's reply was published before: the comment came again)."""
        if not within_window(comment.sent_at, utc_now()):
            return (
                "no private reply (Instagram and Facebook allow one only within 7 days of "
                "the comment)"
            )
        key = f"private:{rule.id}:{comment.platform_message_id}"
        mine = message_id_for(ref.channel_id, f"s:{ref.id}:{key}")
        replies = self.automation.replies
        holder = await replies.holder(self.workspace, ref.channel_id, comment.platform_message_id)
        # Reserved for this rule's reply before: published again, since a worker may have
        # died between reserving and publishing (the same key is one message, published once).
        fresh = holder is None
        if holder != mine and (
            holder is not None
            or not await replies.reserve(
                self.workspace, ref.channel_id, comment.platform_message_id, mine
            )
        ):
            return "no private reply (this comment already had its one private reply)"
        published = await self.automation.ingress.system_message(
            ref, key, text, private_reply=True, reply_to=comment.platform_message_id
        )
        if fresh and published.duplicate:
            # Published and tried before, and its reservation released since (its send
            # failed): the reply is not sent again, so the comment keeps its private reply.
            await replies.release(
                self.workspace, ref.channel_id, comment.platform_message_id, mine, marked=False
            )
            return "no private reply (this rule's earlier one to this comment failed)"
        return ""

    async def _names(self, actions: list[dict[str, Any]]) -> Callable[[str, str], str]:
        """`name_of` for `rules.describe`: the members' and teams' names, read when needed."""
        names: dict[tuple[str, str], str] = {}
        if any(a["type"] == "assign_agent" for a in actions):
            for member in await self.automation.members.roster(self.workspace):
                names[("user", str(member.user.id))] = member.user.name or "an agent"
        if any(a["type"] == "assign_team" for a in actions):
            for team in await self.automation.teams.all(self.workspace):
                names[("team", str(team.id))] = team.name
        return lambda kind, id_: names.get((kind, id_), "someone" if kind == "user" else "?")


def post_of(comment: Message) -> str:
    """The post a comment is on, as the adapters keep it: Instagram's `media.id`, a Page's
    `post_id`."""
    raw = comment.raw or {}
    media = raw.get("media")
    if isinstance(media, dict) and media.get("id"):
        return str(media["id"])
    return str(raw.get("post_id") or "")
