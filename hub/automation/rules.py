"""Automation rules: when something happens in a conversation and every condition holds, the
hub acts on the conversation by itself (the "automation" worker group runs them, see
`hub.automation.worker`).

A rule is a trigger, conditions that must all hold, and actions:

- triggers: `conversation.created` (a contact's first message), `message.received` (any
  message from the contact), `conversation.resolved` (a person resolved it), `comment.created`
  (a new Instagram or Facebook Page comment, on a post, a reel or a live);
- conditions: the channel or its kind, the contact's name or e-mail, the message's text, the
  conversation's labels, whether the channel is open (its business hours, `hub.channels.hours`),
  and for comments the post (its media or post id); text conditions match any of their
  values, without regard to case or diacritics, Turkish i's included (`keywords.fold`);
- actions: assign to an agent or a team, add a label, set the priority, send an auto-reply
  (with placeholders, `hub.canned.placeholders`), resolve, snooze; on a comment, a private
  reply (one direct message per comment, within 7 days of it) and a public reply under it.

Rules cannot loop: they react only to what contacts and people do, never to what a rule (or
routing, or an auto-reply) did. Every rule sees the conversation as it was when the event
happened, not the changes an earlier rule made for the same event. Every rule that acts
leaves a note in the conversation saying what it did, and an audit row (`rule.applied`).

`evaluate` is pure: the worker and the "try it" endpoint run the same code on a `Facts`.
`Rules` keeps them: a rule may only name the workspace's own channels, members and teams
(`invalid_rule`), and its reply only known placeholders; every change is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.accounts.members import Actor, by_member
from hub.attributes.kinds import InvalidValue, parse
from hub.automation import keywords
from hub.automation.bodies import (
    ATTRIBUTE_FIELDS,
    InvalidRule,
    RuleBody,
    RulePatch,
    check_shape,
)
from hub.bus import Bus
from hub.canned import placeholders
from hub.errors import Conflict, NotFound
from hub.storage import audit
from hub.storage.cache import Versioned
from hub.storage.models import AttributeDefinition, AutomationRule, Channel, Membership, Team
from hub.storage.store import Sessions
from schemas.message import utc_now
from schemas.rest.automation import RuleOut

TRIGGERS: tuple[str, ...] = (
    "conversation.created",
    "message.received",
    "conversation.resolved",
    "comment.created",
)

MAX_RULES = 100
VERSION_KEY = "rules:version"


@dataclass(slots=True)
class Facts:
    """What a rule's conditions are checked against."""

    channel_id: str
    channel_kind: str
    text: str = ""
    contact_name: str = ""
    contact_email: str = ""
    labels: list[str] = field(default_factory=list)
    open: bool = True  # the channel's business hours at the event's time
    post_id: str = ""  # a comment's post (Instagram media id, Facebook post id)
    # Custom attribute values by subject ("conversation", "contact"), then by key.
    attributes: dict[str, dict[str, str | float]] = field(default_factory=dict)


def holds(condition: dict[str, Any], facts: Facts) -> bool:
    name, op, values = condition["field"], condition["op"], condition.get("values") or []
    if name in ATTRIBUTE_FIELDS:
        subject = name.removesuffix("_attribute")
        return attribute_holds(op, values, facts.attributes.get(subject, {}).get(condition["key"]))
    if name == "business_hours":
        return bool(facts.open == (op == "open"))
    if name in ("channel", "channel_kind", "label", "post"):
        have = {
            "channel": [facts.channel_id],
            "channel_kind": [facts.channel_kind],
            "post": [facts.post_id],
        }.get(name, facts.labels)
        found = any(v in have for v in values)
    else:
        text = {"contact_name": facts.contact_name, "contact_email": facts.contact_email}.get(
            name, facts.text
        )
        found = keywords.contains(text, values)
    return found == (op in ("in", "contains"))


def attribute_holds(op: str, values: Sequence[str], have: str | float | None) -> bool:
    """A custom attribute condition on the value `have` (None: not set). Numbers compare as
    numbers, anything else as text (ISO dates sort as text); text equals without regard to
    case or diacritics, as keywords do."""
    if op in ("is_set", "not_set"):
        return (have is not None) == (op == "is_set")
    if have is None:
        return False
    if op == "contains":
        return keywords.contains(str(have), values)
    if op == "equals":
        return any(_order(have, v) == 0 for v in values)
    found = _order(have, values[0])
    return found is not None and (found > 0 if op == "greater" else found < 0)


def _order(have: str | float, want: str) -> int | None:
    """-1, 0 or 1 as `have` is below, at or above `want`; None when they do not compare."""
    if isinstance(have, float | int):
        try:
            other = float(want)
        except ValueError:
            return None
        return (have > other) - (have < other)
    a, b = keywords.fold(have), keywords.fold(want)
    return (a > b) - (a < b)


def evaluate(conditions: Sequence[dict[str, Any]], facts: Facts) -> list[bool]:
    """Each condition's outcome, in order (the rule matches when all are true)."""
    return [holds(c, facts) for c in conditions]


def changes(actions: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The conversation changes the actions make (`conversation.updated`'s `changes`)."""
    found: dict[str, Any] = {}
    for action in actions:
        kind = action["type"]
        if kind == "assign_agent":
            found["assignee_id"] = action["user_id"]
        elif kind == "assign_team":
            found["team_id"] = action["team_id"]
        elif kind == "add_label":
            found.setdefault("labels_add", []).append(action["label"])
        elif kind == "set_priority":
            found["priority"] = action["priority"]
        elif kind == "resolve":
            found["status"] = "resolved"
        elif kind == "snooze":
            until = now + timedelta(minutes=int(action["minutes"]))
            found |= {"status": "snoozed", "snoozed_until": until.isoformat()}
    return found


def describe(
    actions: Sequence[dict[str, Any]],
    name_of: Callable[[str, str], str],
    now: datetime,
) -> list[str]:
    """What the actions do, in words, for the note a rule leaves in the conversation.
    `name_of(kind, id)` names an agent ("user") or a team ("team")."""
    said: list[str] = []
    for action in actions:
        kind = action["type"]
        if kind == "assign_agent":
            said.append(f"assigned to {name_of('user', action['user_id'])}")
        elif kind == "assign_team":
            said.append(f"moved to team {name_of('team', action['team_id'])}")
        elif kind == "add_label":
            said.append(f"labelled {action['label']}")
        elif kind == "set_priority":
            said.append(f"priority {action['priority']}")
        elif kind == "send_reply":
            said.append("sent an auto-reply")
        elif kind == "private_reply":
            said.append("sent a private reply")
        elif kind == "public_reply":
            said.append("replied in public")
        elif kind == "resolve":
            said.append("resolved")
        elif kind == "snooze":
            until = now + timedelta(minutes=int(action["minutes"]))
            said.append(f"snoozed until {until.strftime('%Y-%m-%d %H:%M UTC')}")
    return said


class Rules:
    """The workspace's rules in the database. Every change also sets a new version on the bus
    (`hub.storage.cache.Versioned`): workers keep the rules they read under the version they
    saw, and read them again only when it changes (`hub.automation.worker`)."""

    def __init__(self, sessions: Sessions, bus: Bus) -> None:
        self.sessions = sessions
        self.versions: Versioned[list[AutomationRule]] = Versioned(bus, VERSION_KEY)

    async def _changed(self, workspace_id: uuid.UUID) -> None:
        """After a change has committed: a new version, so every worker reads them again."""
        await self.versions.changed(str(workspace_id))

    async def all(self, workspace_id: uuid.UUID, *, enabled: bool = False) -> list[AutomationRule]:
        async with self.sessions() as s:
            query = select(AutomationRule).where(AutomationRule.workspace_id == workspace_id)
            if enabled:
                query = query.where(col(AutomationRule.enabled).is_(True))
            query = query.order_by(col(AutomationRule.position), col(AutomationRule.created_at))
            return list((await s.exec(query)).all())

    async def create(self, workspace_id: uuid.UUID, actor: Actor, body: RuleBody) -> RuleOut:
        check_shape(body.trigger, body.conditions, body.actions)
        async with self.sessions() as s, s.begin():
            await _check_refs(s, workspace_id, body.conditions, body.actions)
            count = await s.exec(
                select(sa.func.count(), sa.func.max(AutomationRule.position))
                .select_from(AutomationRule)
                .where(AutomationRule.workspace_id == workspace_id)
            )
            n, last = count.one()
            if n >= MAX_RULES:
                raise Conflict(f"A workspace has at most {MAX_RULES} rules.")
            rule = AutomationRule(
                workspace_id=workspace_id,
                name=body.name,
                enabled=body.enabled,
                trigger=body.trigger,
                conditions=dumped(body.conditions),
                actions=dumped(body.actions),
                position=(last + 1) if last is not None else 0,
            )
            s.add(rule)
            await s.flush()
            await audit.append(
                s,
                by_member(workspace_id, actor, "rule.created", rule.id, _audited(rule), "rule"),
            )
            answer = rule_out(rule)
        await self._changed(workspace_id)
        return answer

    async def change(
        self, workspace_id: uuid.UUID, actor: Actor, rule_id: uuid.UUID, patch: RulePatch
    ) -> RuleOut:
        async with self.sessions() as s, s.begin():
            rule = await _rule(s, workspace_id, rule_id)
            await _check_refs(s, workspace_id, patch.conditions or [], patch.actions or [])
            given = patch.model_dump(exclude_unset=True, mode="json")
            merged = {k: v for k, v in given.items() if v is not None}
            check_shape(
                merged.get("trigger", rule.trigger),
                merged.get("conditions", rule.conditions),
                merged.get("actions", rule.actions),
            )
            position = given.pop("position", None)
            changed = [k for k, v in given.items() if v is not None and getattr(rule, k) != v]
            for name in changed:
                setattr(rule, name, given[name])
            if position is not None and await _move(s, workspace_id, rule, position):
                changed.append("position")
            if changed:
                rule.updated_at = utc_now()
                s.add(rule)
                await audit.append(
                    s,
                    by_member(
                        workspace_id,
                        actor,
                        "rule.updated",
                        rule.id,
                        {"fields": changed} | _audited(rule),
                        "rule",
                    ),
                )
            answer = rule_out(rule)
        await self._changed(workspace_id)
        return answer

    async def delete(self, workspace_id: uuid.UUID, actor: Actor, rule_id: uuid.UUID) -> None:
        async with self.sessions() as s, s.begin():
            rule = await _rule(s, workspace_id, rule_id)
            await s.delete(rule)
            await audit.append(
                s, by_member(workspace_id, actor, "rule.deleted", rule_id, {}, "rule")
            )
        await self._changed(workspace_id)

    async def check(self, workspace_id: uuid.UUID, body: RuleBody) -> None:
        check_shape(body.trigger, body.conditions, body.actions)
        async with self.sessions() as s:
            await _check_refs(s, workspace_id, body.conditions, body.actions)


async def _move(
    s: AsyncSession, workspace_id: uuid.UUID, rule: AutomationRule, position: int
) -> bool:
    """Put the rule at `position` in the run order (the others keep theirs among themselves);
    whether it moved."""
    found = await s.exec(
        select(AutomationRule)
        .where(AutomationRule.workspace_id == workspace_id)
        .order_by(col(AutomationRule.position), col(AutomationRule.created_at))
        .with_for_update()
    )
    order = [r for r in found.all() if r.id != rule.id]
    order.insert(min(position, len(order)), rule)
    moved = False
    for index, row in enumerate(order):
        if row.position != index:
            row.position = index
            s.add(row)
            moved = True
    return moved


def _audited(rule: AutomationRule) -> dict[str, Any]:
    """Ids and types only: no reply text or condition values (they may name people)."""
    return {
        "trigger": rule.trigger,
        "enabled": rule.enabled,
        "conditions": [c["field"] for c in rule.conditions],  # attribute keys are no one's
        "actions": [a["type"] for a in rule.actions],
    }


async def _rule(s: AsyncSession, workspace_id: uuid.UUID, rule_id: uuid.UUID) -> AutomationRule:
    found = await s.exec(
        select(AutomationRule).where(
            AutomationRule.workspace_id == workspace_id, AutomationRule.id == rule_id
        )
    )
    rule = found.first()
    if rule is None:
        raise NotFound("No such rule.")
    return rule


async def _check_refs(
    s: AsyncSession, workspace_id: uuid.UUID, conditions: list[Any], actions: list[Any]
) -> None:
    """The channels, members and teams a rule names are the workspace's own, and its reply's
    placeholders are known."""
    channels = {uuid.UUID(v) for c in conditions if c.field == "channel" for v in c.values}
    users = {a.user_id for a in actions if a.type == "assign_agent"}
    teams = {a.team_id for a in actions if a.type == "assign_team"}
    for workspace, column, wanted, what in (
        (Channel.workspace_id, Channel.id, channels, "channel"),
        (Membership.workspace_id, Membership.user_id, users, "member"),
        (Team.workspace_id, Team.id, teams, "team"),
    ):
        if not wanted:
            continue
        known = await s.exec(
            select(column).where(workspace == workspace_id, col(column).in_(wanted))
        )
        if missing := wanted - set(known.all()):
            raise InvalidRule(f"No such {what} in this workspace: {sorted(map(str, missing))[0]}.")
    for action in actions:
        if action.type in ("send_reply", "private_reply", "public_reply"):
            placeholders.check(action.text)
    await _check_attributes(s, workspace_id, conditions)


async def _check_attributes(
    s: AsyncSession, workspace_id: uuid.UUID, conditions: list[Any]
) -> None:
    """An attribute condition names an attribute of its kind of record, compares numbers and
    dates only by order, and gives values its type takes."""
    wanted = [c for c in conditions if c.field in ATTRIBUTE_FIELDS]
    if not wanted:
        return
    found = await s.exec(
        select(AttributeDefinition).where(AttributeDefinition.workspace_id == workspace_id)
    )
    definitions = {d.key: d for d in found.all()}
    for condition in wanted:
        subject = condition.field.removesuffix("_attribute")
        definition = definitions.get(condition.key)
        if definition is None or definition.applies_to != subject:
            raise InvalidRule(f"No {subject} attribute {condition.key} in this workspace.")
        if condition.op in ("greater", "less") and definition.type not in ("number", "date"):
            raise InvalidRule(f"{condition.key} is {definition.type}: it has no order.")
        if condition.op in ("equals", "greater", "less"):
            for value in condition.values:
                try:
                    parse(definition.type, definition.options, condition.key, value)
                except InvalidValue as e:
                    raise InvalidRule(e.message) from None


def rule_out(row: AutomationRule) -> RuleOut:
    return RuleOut(
        id=row.id,
        name=row.name,
        enabled=row.enabled,
        trigger=row.trigger,
        conditions=row.conditions,
        actions=row.actions,
        position=row.position,
        updated_at=row.updated_at,
    )


def dumped(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """As stored; a condition's `key` only where it has one."""
    return [item.model_dump(mode="json", exclude_none=True) for item in items]
