"""WhatsApp templates' REST API: a channel's list (and a conversation's, for the composer),
a sync from WhatsApp on demand, and sending one to a conversation."""

from __future__ import annotations

import uuid

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from adapters.meta import templates as wa
from hub.errors import BadRequest
from hub.media.uploads import UploadedFile, is_multipart, read_form
from hub.storage.models import WhatsAppTemplate
from hub.templates.sending import (
    TemplateFill,
    TemplateSendBody,
    TemplateSendForm,
    TemplateSending,
)
from hub.web.http import answer, authenticate, parse_uuid, read_body, services
from hub.web.operation import Operation, id_param, route
from schemas.rest.conversations import SendResult
from schemas.rest.templates import (
    TemplateButton,
    TemplateOut,
    TemplatePage,
    TemplateParameters,
    TemplateSync,
)


def template_out(row: WhatsAppTemplate) -> TemplateOut:
    shape = wa.shape(row.components, row.parameter_format)
    return TemplateOut(
        id=row.id,
        channel_id=row.channel_id,
        template_id=row.template_id,
        name=row.name,
        language=row.language,
        status=row.status,
        category=row.category,
        reason=row.reason,
        sendable=row.status == "APPROVED",
        header_text=shape.header_text,
        body_text=shape.body_text,
        footer_text=shape.footer_text,
        parameters=TemplateParameters(
            header_format=shape.header_format,
            header=shape.header_variables,
            body=shape.body_variables,
            buttons=[
                TemplateButton(
                    index=b.index, type=b.type, text=b.text, url=b.url, variables=len(b.variables)
                )
                for b in shape.buttons
            ],
        ),
        updated_at=row.updated_at,
    )


async def _page(request: Request, channel_id: uuid.UUID) -> Response:
    principal = await authenticate(request)
    rows, synced_at = await services(request).templates().listed(principal.workspace_id, channel_id)
    return answer(TemplatePage(items=[template_out(r) for r in rows], synced_at=synced_at))


async def list_templates(request: Request) -> Response:
    return await _page(request, parse_uuid(request.path_params["channel_id"], "channel"))


async def sync_templates(request: Request) -> Response:
    principal = await authenticate(request)
    channel_id = parse_uuid(request.path_params["channel_id"], "channel")
    count, synced_at = await services(request).templates().sync(principal.workspace_id, channel_id)
    return answer(TemplateSync(count=count, synced_at=synced_at))


async def conversation_templates(request: Request) -> Response:
    principal = await authenticate(request)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    ref = await services(request).ingress.conversation(principal.workspace_id, conversation_id)
    return await _page(request, ref.channel_id)


async def send_template(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    file: UploadedFile | None = None
    fill: TemplateFill
    if is_multipart(request):
        await svc.ingress.conversation(principal.workspace_id, conversation_id)  # 404 first
        form, files = await read_form(
            request, TemplateSendForm, max_files=1, max_file_bytes=svc.settings.max_media_bytes
        )
        try:
            fill = TemplateFill.model_validate_json(form.template)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "template"
            raise BadRequest(f"Invalid form at template.{where}: {first['msg']}") from None
        client_id, file = form.client_id, files[0] if files else None
    else:
        body = await read_body(request, TemplateSendBody)
        client_id, fill = body.client_id, body
    sending = TemplateSending(svc.templates(), svc.ingress, svc.library)
    message_id, published = await sending.send(principal, conversation_id, client_id, fill, file)
    await svc.ingress.settle(principal.workspace_id)
    return answer(
        SendResult(message_id=message_id, event_id=published.id, duplicate=published.duplicate),
        200 if published.duplicate else 202,
    )


_CHANNEL = id_param("channel_id", "The WhatsApp channel")
_CONVERSATION = id_param("conversation_id", "The WhatsApp conversation")

routes = [
    route(
        "/api/channels/{channel_id}/templates",
        list_templates,
        "GET",
        op=Operation(
            "A WhatsApp channel's message templates",
            {200: ("As last synced, with their variables", TemplatePage)},
            (400, 401, 404),
            params=(_CHANNEL,),
            description="Status, language, category and what each template takes: the "
            "variables of a text header, the body and the buttons, and a media header's "
            "format. 400 `not_whatsapp` for another kind of channel.",
        ),
    ),
    route(
        "/api/channels/{channel_id}/templates/sync",
        sync_templates,
        "POST",
        op=Operation(
            "Sync a WhatsApp channel's templates now",
            {200: ("The list was replaced by WhatsApp's", TemplateSync)},
            (400, 401, 403, 404, 503),
            params=(_CHANNEL,),
            description="Reads every page of the WhatsApp Business Account's "
            "`message_templates` with the number's token. 400 `no_business_account` when the "
            "channel was connected without its WABA id; 503 `template_sync_failed` with "
            "WhatsApp's reason.",
        ),
    ),
    route(
        "/api/conversations/{conversation_id}/templates",
        conversation_templates,
        "GET",
        op=Operation(
            "The templates a WhatsApp conversation can be sent",
            {200: ("Its channel's templates", TemplatePage)},
            (400, 401, 404),
            params=(_CONVERSATION,),
        ),
    ),
    route(
        "/api/conversations/{conversation_id}/templates",
        send_template,
        "POST",
        op=Operation(
            "Send a WhatsApp template",
            {202: ("Accepted onto the stream", SendResult), 200: ("Sent before", SendResult)},
            (400, 401, 403, 404, 409, 413, 415),
            body=TemplateSendBody,
            form=TemplateSendForm,
            params=(_CONVERSATION,),
            description="Sent as `type: template` even when the 24-hour window is closed; "
            "the window stays closed until the customer writes. The message's text is the "
            "template filled in; `raw.template` is what was sent. 409 `template_not_approved` "
            "(pending, rejected, paused, disabled), 400 `template_parameters` when the "
            "values do not match the variables, 404 `template_not_found`. A media header "
            "takes `header_link` or, as multipart, the file in `attachments` (the other "
            "fields as JSON in `template`). Idempotent on `client_id`.",
        ),
    ),
]
