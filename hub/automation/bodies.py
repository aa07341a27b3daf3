"""What an automation rule is made of, as an admin writes it (`hub.automation.rules` keeps and
runs them): its conditions and actions, the shape they must have together (`check_shape`,
400 `invalid_rule`), and the sample a rule is tried on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from hub.errors import BadRequest
from schemas.message import ChannelKind
from schemas.rest.automation import Trigger

TRIGGERS: tuple[str, ...] = (
    "conversation.created",
    "message.received",
    "conversation.resolved",
    "comment.created",
)
Priority = Literal["low", "medium", "high", "urgent"]
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")
MAX_SNOOZE_MINUTES = 30 * 24 * 60

ConditionField = Literal[
    "channel",
    "channel_kind",
    "contact_name",
    "contact_email",
    "text",
    "label",
    "business_hours",
    "post",
    "conversation_attribute",
    "contact_attribute",
]
Op = Literal[
    "in",
    "not_in",
    "contains",
    "not_contains",
    "open",
    "closed",
    "equals",
    "greater",
    "less",
    "is_set",
    "not_set",
]
# A custom attribute's operators (`key` names it): any of the values, exactly (a number or a
# date as one) or as a substring; greater or less than the one value (numbers and dates);
# whether it has a value at all.
ATTRIBUTE_OPS = ("equals", "contains", "greater", "less", "is_set", "not_set")
ATTRIBUTE_FIELDS = ("conversation_attribute", "contact_attribute")
# The operators each field takes.
OPS: dict[str, tuple[str, ...]] = {
    "channel": ("in", "not_in"),
    "channel_kind": ("in", "not_in"),
    "label": ("in", "not_in"),
    "contact_name": ("contains", "not_contains"),
    "contact_email": ("contains", "not_contains"),
    "text": ("contains", "not_contains"),
    "business_hours": ("open", "closed"),
    "post": ("in", "not_in"),
    "conversation_attribute": ATTRIBUTE_OPS,
    "contact_attribute": ATTRIBUTE_OPS,
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
        "text: contains | not_contains (any of the values, ignoring case and diacritics, "
        "Turkish i's included); business_hours: open | closed (the channel's hours when the "
        "event happened); post (comment.created only): in | not_in, Instagram media ids or "
        "Facebook post ids; conversation_attribute, contact_attribute (the custom attribute "
        "`key`): equals | contains (any of the values) | greater | less (one value, numbers "
        "and dates) | is_set | not_set (no values)"
    )
    key: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="conversation_attribute and contact_attribute: the attribute's key",
    )
    values: list[Value] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _fits(self) -> Condition:
        if self.op not in OPS[self.field]:
            raise ValueError(f"{self.field} takes {' or '.join(OPS[self.field])}, not {self.op}")
        if (self.key is not None) != (self.field in ATTRIBUTE_FIELDS):
            raise ValueError(
                f"key is for attribute conditions only, and {self.field} needs one"
                if self.key is not None
                else f"{self.field} needs a key"
            )
        if self.op in ("is_set", "not_set"):
            if self.values:
                raise ValueError(f"{self.op} takes no values")
            return self
        if self.op in ("greater", "less") and len(self.values) != 1:
            raise ValueError(f"{self.op} takes one value")
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


class PrivateReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["private_reply"]
    text: str = Field(
        min_length=1,
        max_length=1000,
        description="comment.created only: a direct message to the comment's author, "
        "answering that comment. Meta allows one per comment, within 7 days of it; a "
        "comment that had one, or is older, gets none (the rule's note says why)",
    )


class PublicReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["public_reply"]
    text: str = Field(
        min_length=1,
        max_length=1000,
        description="comment.created only: a public reply under the comment",
    )


class Resolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["resolve"]


class Snooze(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["snooze"]
    minutes: int = Field(ge=1, le=MAX_SNOOZE_MINUTES, description="For how long")


Action = Annotated[
    AssignAgent
    | AssignTeam
    | AddLabel
    | SetPriority
    | SendReply
    | PrivateReply
    | PublicReply
    | Resolve
    | Snooze,
    Field(discriminator="type"),
]
# At most one of each, but any number of labels; resolve and snooze exclude each other.
_SINGLE = (
    "assign_agent",
    "assign_team",
    "set_priority",
    "send_reply",
    "private_reply",
    "public_reply",
    "resolve",
    "snooze",
)
COMMENT_ONLY = ("private_reply", "public_reply", "post")


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
    if trigger != "comment.created" and (
        found := next((n for n in COMMENT_ONLY if n in types or n in field_of), None)
    ):
        raise InvalidRule(f"{found} is for comments: it needs the comment.created trigger.")
    if trigger == "comment.created" and "send_reply" in types:
        raise InvalidRule("A comment is answered with private_reply or public_reply.")


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
    conversation_attributes: dict[str, Value] = Field(
        default_factory=dict, max_length=50, description="Custom attribute values by key"
    )
    contact_attributes: dict[str, Value] = Field(
        default_factory=dict, max_length=50, description="Custom attribute values by key"
    )
    post_id: str = Field(default="", max_length=200, description="A comment's post or media id")
    at: datetime | None = Field(default=None, description="When; now if left out")


class TryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: RuleBody
    sample: Sample = Field(default_factory=Sample)
