"""Automation rules: when something happens in a conversation and every condition holds, the
hub acts on the conversation by itself (the "automation" worker group runs them, see
`hub.automation.worker`).

A rule is a trigger, conditions that must all hold, and actions:

- triggers: `conversation.created` (a contact's first message), `message.received` (any
  message from the contact), `conversation.resolved` (a person resolved it);
- conditions: the channel or its kind, the contact's name or e-mail, the message's text, the
  conversation's labels, and whether the channel is open (its business hours, `hub.channels.hours`);
  text conditions match any of their values, without regard to case;
- actions: assign to an agent or a team, add a label, set the priority, send an auto-reply
  (with placeholders, `hub.canned.placeholders`), resolve, snooze.

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
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.accounts.members import Actor, by_member
from hub.bus import Bus
from hub.canned import placeholders
from hub.errors import BadRequest, Conflict, NotFound
from hub.storage import audit
from hub.storage.cache import Versioned
from hub.storage.models import AutomationRule, Channel, Membership, Team
from hub.storage.store import Sessions
from schemas.message import ChannelKind, utc_now
from schemas.rest.automation import RuleOut, Trigger

TRIGGERS: tuple[str, ...] = ("conversation.created", "message.received", "conversation.resolved")
Priority = Literal["low", "medium", "high", "urgent"]
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")
MAX_RULES = 100
VERSION_KEY = "rules:version"
MAX_SNOOZE_MINUTES = 30 * 24 * 60

ConditionField = Literal[
    "channel", "channel_kind", "contact_name", "contact_email", "text", "label", "business_hours"
]
Op = Literal["in", "not_in", "contains", "not_contains", "open", "closed"]
# The operators each field takes.
OPS: dict[str, tuple[str, ...]] = {
    "channel": ("in", "not_in"),
    "channel_kind": ("in", "not_in"),
    "label": ("in", "not_in"),
    "contact_name": ("contains", "not_contains"),
    "contact_email": ("contains", "not_contains"),
    "text": ("contains", "not_contains"),
    "business_hours": ("open", "closed"),
}
Value = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)
]


class InvalidRule(BadRequest):
    code = "invalid_rule"


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: ConditionField
    op: Op = Field(
        description="channel, channel_kind, label: in | not_in; contact_name, contact_email, "
        "text: contains | not_contains (any of the values, ignoring case); business_hours: "
        "open | closed (the channel's hours when the event happened)"
    )
    values: list[Value] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _fits(self) -> Condition:
        if self.op not in OPS[self.field]:
            raise ValueError(f"{self.field} takes {' or '.join(OPS[self.field])}, not {self.op}")
        if self.field == "business_hours":
            if self.values:
                raise ValueError("business_hours takes no values")
            return self
        if not self.values:
            raise ValueError(f"{self.field} needs at least one value")
        if self.field == "channel":
            self.values = [str(uuid.UUID(v)) for v in self.values]
        elif self.field == "channel_kind":
            kinds = {k.value for k in ChannelKind}
            if unknown := [v for v in self.values if v not in kinds]:
                raise ValueError(f"unknown channel kind {unknown[0]!r}")
        elif self.field == "label":
            self.values = sorted({v.lower() for v in self.values})
        return self


class AssignAgent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["assign_agent"]
    user_id: uuid.UUID = Field(description="A member of the workspace")


class AssignTeam(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["assign_team"]
    team_id: uuid.UUID


class AddLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["add_label"]
    label: Label


class SetPriority(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["set_priority"]
    priority: Priority


class SendReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["send_reply"]
    text: str = Field(
        min_length=1,
        max_length=4000,
        description="Sent to the contact (not under public comments); placeholders as in "
        "canned responses",
    )


class Resolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["resolve"]


class Snooze(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["snooze"]
    minutes: int = Field(ge=1, le=MAX_SNOOZE_MINUTES, description="For how long")


Action = Annotated[
    AssignAgent | AssignTeam | AddLabel | SetPriority | SendReply | Resolve | Snooze,
    Field(discriminator="type"),
]
# At most one of each, but any number of labels; resolve and snooze exclude each other.
_SINGLE = ("assign_agent", "assign_team", "set_priority", "send_reply", "resolve", "snooze")


def check_shape(trigger: str, conditions: Sequence[Any], actions: Sequence[Any]) -> None:
    """What a rule's parts must be together (`invalid_rule`): one action of each type but
    labels, resolve or snooze, and no text condition where there is no message."""
    field_of = [c["field"] if isinstance(c, dict) else c.field for c in conditions]
    types = [a["type"] if isinstance(a, dict) else a.type for a in actions]
    for name in _SINGLE:
        if types.count(name) > 1:
            raise InvalidRule(f"A rule takes one {name} action.")
    if "resolve" in types and "snooze" in types:
        raise InvalidRule("A rule either resolves or snoozes, not both.")
    if trigger == "conversation.resolved" and "text" in field_of:
        raise InvalidRule("conversation.resolved has no message: a text condition never holds.")


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    enabled: bool = True
    trigger: Trigger
    conditions: list[Condition] = Field(
        default_factory=list, max_length=20, description="All must hold; none: always"
    )
    actions: list[Action] = Field(min_length=1, max_length=10, description="Taken in order")


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    enabled: bool | None = None
    trigger: Trigger | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=20)
    actions: list[Action] | None = Field(default=None, min_length=1, max_length=10)
    position: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="Its place in the run order, 0 first; the others are numbered afresh",
    )


class Sample(BaseModel):
    """A made-up event to try a rule on: nothing is stored or sent."""

    model_config = ConfigDict(extra="forbid")
    channel_id: uuid.UUID | None = Field(default=None, description="The channel it came in on")
    text: str = Field(default="", max_length=4000, description="The contact's message")
    contact_name: str = Field(default="", max_length=200)
    contact_email: str = Field(default="", max_length=320)
    labels: list[Label] = Field(default_factory=list, max_length=20)
    at: datetime | None = Field(default=None, description="When; now if left out")


class TryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: RuleBody
    sample: Sample = Field(default_factory=Sample)


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


def holds(condition: dict[str, Any], facts: Facts) -> bool:
    name, op, values = condition["field"], condition["op"], condition.get("values") or []
    if name == "business_hours":
        return bool(facts.open == (op == "open"))
    if name in ("channel", "channel_kind", "label"):
        have = {"channel": [facts.channel_id], "channel_kind": [facts.channel_kind]}.get(
            name, facts.labels
        )
        found = any(v in have for v in values)
    else:
        text = {"contact_name": facts.contact_name, "contact_email": facts.contact_email}.get(
            name, facts.text
        )
        found = any(v.casefold() in text.casefold() for v in values)
    return found == (op in ("in", "contains"))


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
        "conditions": [c["field"] for c in rule.conditions],
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
        if action.type == "send_reply":
            placeholders.check(action.text)


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
    return [item.model_dump(mode="json") for item in items]
