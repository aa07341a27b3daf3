"""Automation rules' REST endpoints (`hub.automation.rules`), admins only: list, create,
change, delete, and try a rule on a sample message before saving it.

A rule may only name the workspace's own channels, members and teams (400 `invalid_rule`
otherwise), and its auto-reply only known placeholders (400 `unknown_placeholder`). Every
change is audited (`rule.created`, `rule.updated`, `rule.deleted`) and sets a new version of
the rules on the bus, so workers read them again for the next event.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.attributes.service import Attributes
from hub.automation.bodies import InvalidRule, RuleBody, RulePatch, TryBody
from hub.automation.rules import Facts, Rules, changes, dumped, evaluate, rule_out
from hub.canned import placeholders
from hub.channels.options import hours_of, open_at
from hub.web.http import admin_actor, answer, parse_uuid, read_body, services
from hub.web.operation import Operation, id_param, route
from schemas.message import utc_now
from schemas.rest.automation import ConditionOutcome, RuleOut, RulePage, TryOut


async def list_rules(request: Request) -> Response:
    principal, _ = await admin_actor(request)
    rows = await _rules(request).all(principal.workspace_id)
    return answer(RulePage(items=[rule_out(r) for r in rows]))


async def add_rule(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, RuleBody)
    made = await _rules(request).create(principal.workspace_id, actor, body)
    return answer(made, 201)


async def change_rule(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    rule_id = parse_uuid(request.path_params["rule_id"], "rule")
    patch = await read_body(request, RulePatch)
    changed = await _rules(request).change(principal.workspace_id, actor, rule_id, patch)
    return answer(changed)


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
    attributes = Attributes(svc.store.sessions)
    facts = Facts(
        channel_id=str(sample.channel_id or ""),
        channel_kind=channel.kind if channel else "",
        text=sample.text,
        contact_name=sample.contact_name,
        contact_email=sample.contact_email,
        labels=sorted(set(sample.labels)),
        open=open_at(hours_of(channel.settings) if channel else None, at),
        post_id=sample.post_id,
        attributes={
            "conversation": await attributes.typed(
                principal.workspace_id, "conversation", sample.conversation_attributes
            ),
            "contact": await attributes.typed(
                principal.workspace_id, "contact", sample.contact_attributes
            ),
        },
    )
    conditions = dumped(body.rule.conditions)
    outcomes = evaluate(conditions, facts)
    matched = all(outcomes)
    actions = dumped(body.rule.actions)
    reply = next((a["text"] for a in actions if a["type"] in _REPLIES), None)
    known = placeholders.values(sample.contact_name or None, None)
    return answer(
        TryOut(
            matched=matched,
            conditions=[
                ConditionOutcome(**c, holds=h) for c, h in zip(conditions, outcomes, strict=True)
            ],
            changes=changes(actions, at) if matched else {},
            reply=placeholders.render(reply, known) if matched and reply else None,
        )
    )


_REPLIES = ("send_reply", "private_reply", "public_reply")


def _rules(request: Request) -> Rules:
    svc = services(request)
    return Rules(svc.store.sessions, svc.bus)


_ONE = "/api/automation-rules/{rule_id}"
_RULE = id_param("rule_id", "A rule id")
_INVALID = (
    "400 `invalid_rule` for a channel, member or team not of this workspace, "
    "`unknown_placeholder` for an auto-reply's unknown placeholder."
)

routes = [
    route(
        "/api/automation-rules",
        list_rules,
        "GET",
        op=Operation(
            "Automation rules (admins)",
            {200: ("Every rule, in the order they run", RulePage)},
            (401, 403),
        ),
    ),
    route(
        "/api/automation-rules",
        add_rule,
        "POST",
        op=Operation(
            "Add an automation rule (admins)",
            {201: ("Added, last in order", RuleOut)},
            (400, 401, 403, 409, 413),
            body=RuleBody,
            description="When the trigger happens and every condition holds, the hub takes "
            "the actions, notes them in the conversation and audits them (`rule.applied`). "
            "Rules react only to contacts and people, never to what a rule did, so they "
            "cannot loop. " + _INVALID,
        ),
    ),
    # Before the rule id route, which it would otherwise match.
    route(
        "/api/automation-rules/try",
        try_rule,
        "POST",
        op=Operation(
            "Try a rule on a sample message (admins)",
            {200: ("What the rule would do; nothing is stored or sent", TryOut)},
            (400, 401, 403, 413),
            body=TryBody,
            description=_INVALID,
        ),
    ),
    route(
        _ONE,
        change_rule,
        "PATCH",
        op=Operation(
            "Change, switch off or move an automation rule (admins)",
            {200: ("Changed", RuleOut)},
            (400, 401, 403, 404, 413),
            body=RulePatch,
            params=(_RULE,),
        ),
    ),
    route(
        _ONE,
        delete_rule,
        "DELETE",
        op=Operation(
            "Delete an automation rule (admins)",
            {204: ("Deleted", None)},
            (401, 403, 404),
            params=(_RULE,),
        ),
    ),
]
