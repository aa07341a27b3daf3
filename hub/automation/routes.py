"""Automation rules' REST endpoints (`hub.automation.rules`), admins only: list, create,
change, delete, and try a rule on a sample message before saving it.

A rule may only name the workspace's own channels, members and teams (400 `invalid_rule`
otherwise), and its auto-reply only known placeholders (400 `unknown_placeholder`). Every
change is audited (`rule.created`, `rule.updated`, `rule.deleted`) and sets a new version of
the rules on the bus, so workers read them again for the next event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.automation.rules import (
    Facts,
    InvalidRule,
    RuleBody,
    RulePatch,
    Rules,
    Trigger,
    TryBody,
    changes,
    dumped,
    evaluate,
    rule_json,
)
from hub.canned import placeholders
from hub.channels.options import hours_of, open_at
from hub.web.http import admin_actor, parse_uuid, read_body, services
from schemas.message import utc_now


class RuleOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID
    name: str
    enabled: bool
    trigger: Trigger
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    position: int = Field(description="Rules run in this order, lowest first")
    updated_at: datetime


class RulePage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[RuleOut] = Field(description="In the order they run")


class ConditionOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str
    op: str
    values: list[str]
    holds: bool


class TryOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matched: bool = Field(description="Whether every condition holds")
    conditions: list[ConditionOutcome]
    changes: dict[str, Any] = Field(
        description="What the rule would change on the conversation (none when not matched)"
    )
    reply: str | None = Field(description="The auto-reply it would send, placeholders filled in")


# Endpoints


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """Keyword arguments of `hub.web.openapi._Op`, per (path, method)."""
    one = "/api/automation-rules/{rule_id}"
    rule = {
        "name": "rule_id",
        "in": "path",
        "required": True,
        "description": "A rule id",
        "schema": {"type": "string", "format": "uuid"},
    }
    what = (
        "400 `invalid_rule` for a channel, member or team not of this workspace, "
        "`unknown_placeholder` for an auto-reply's unknown placeholder."
    )
    return {
        ("/api/automation-rules", "get"): dict(
            summary="Automation rules (admins)",
            ok={200: ("Every rule, in the order they run", RulePage)},
            errors=(401, 403),
        ),
        ("/api/automation-rules", "post"): dict(
            summary="Add an automation rule (admins)",
            ok={201: ("Added, last in order", RuleOut)},
            errors=(400, 401, 403, 409, 413),
            body=RuleBody,
            description="When the trigger happens and every condition holds, the hub takes "
            "the actions, notes them in the conversation and audits them (`rule.applied`). "
            "Rules react only to contacts and people, never to what a rule did, so they "
            "cannot loop. " + what,
        ),
        ("/api/automation-rules/try", "post"): dict(
            summary="Try a rule on a sample message (admins)",
            ok={200: ("What the rule would do; nothing is stored or sent", TryOut)},
            errors=(400, 401, 403, 413),
            body=TryBody,
            description=what,
        ),
        (one, "patch"): dict(
            summary="Change, switch off or move an automation rule (admins)",
            ok={200: ("Changed", RuleOut)},
            errors=(400, 401, 403, 404, 413),
            body=RulePatch,
            params=(rule,),
        ),
        (one, "delete"): dict(
            summary="Delete an automation rule (admins)",
            ok={204: ("Deleted", None)},
            errors=(401, 403, 404),
            params=(rule,),
        ),
    }


async def list_rules(request: Request) -> Response:
    principal, _ = await admin_actor(request)
    rows = await _rules(request).all(principal.workspace_id)
    return JSONResponse({"items": [rule_json(r) for r in rows]})


async def add_rule(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, RuleBody)
    made = await _rules(request).create(principal.workspace_id, actor, body)
    return JSONResponse(made, status_code=201)


async def change_rule(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    rule_id = parse_uuid(request.path_params["rule_id"], "rule")
    patch = await read_body(request, RulePatch)
    changed = await _rules(request).change(principal.workspace_id, actor, rule_id, patch)
    return JSONResponse(changed)


async def delete_rule(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    rule_id = parse_uuid(request.path_params["rule_id"], "rule")
    await _rules(request).delete(principal.workspace_id, actor, rule_id)
    return Response(status_code=204)


async def try_rule(request: Request) -> Response:
    """The rule's conditions on the sample, and what it would do: the same code the worker
    runs (`hub.automation.rules.evaluate`), with the channel's real business hours."""
    principal, _ = await admin_actor(request)
    body = await read_body(request, TryBody)
    svc = services(request)
    await _rules(request).check(principal.workspace_id, body.rule)
    sample, at = body.sample, body.sample.at or utc_now()
    channel = (
        await svc.store.channel(principal.workspace_id, sample.channel_id)
        if sample.channel_id
        else None
    )
    if sample.channel_id and channel is None:
        raise InvalidRule("No such channel in this workspace.")
    facts = Facts(
        channel_id=str(sample.channel_id or ""),
        channel_kind=channel.kind if channel else "",
        text=sample.text,
        contact_name=sample.contact_name,
        contact_email=sample.contact_email,
        labels=sorted(set(sample.labels)),
        open=open_at(hours_of(channel.settings) if channel else None, at),
    )
    conditions = dumped(body.rule.conditions)
    outcomes = evaluate(conditions, facts)
    matched = all(outcomes)
    actions = dumped(body.rule.actions)
    reply = next((a["text"] for a in actions if a["type"] == "send_reply"), None)
    known = placeholders.values(sample.contact_name or None, None)
    return JSONResponse(
        {
            "matched": matched,
            "conditions": [c | {"holds": h} for c, h in zip(conditions, outcomes, strict=True)],
            "changes": changes(actions, at) if matched else {},
            "reply": placeholders.render(reply, known) if matched and reply else None,
        }
    )


def _rules(request: Request) -> Rules:
    svc = services(request)
    return Rules(svc.store.sessions, svc.bus)


routes = [
    Route("/api/automation-rules", list_rules, methods=["GET"]),
    Route("/api/automation-rules", add_rule, methods=["POST"]),
    # Before the rule id route, which it would otherwise match.
    Route("/api/automation-rules/try", try_rule, methods=["POST"]),
    Route("/api/automation-rules/{rule_id}", change_rule, methods=["PATCH"]),
    Route("/api/automation-rules/{rule_id}", delete_rule, methods=["DELETE"]),
]
