"""An agent's template message: checked against the stored template (approved, the right
number of values, a header file where the header is one), rendered to the text the customer
reads, and published like any reply, with the `template` object of the send in `raw`
(`{"template": {name, language, components}}`). The send group sends it as `type: template`
(`hub.workers.sender`), window or not: a template is how a business writes first.

Sending a template opens no window: only the customer's reply moves `last_inbound_at`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import Field

from adapters.meta import send_template, templates
from hub.accounts.auth import Principal
from hub.bus import Published
from hub.errors import BadRequest, Conflict
from hub.media.library import MediaLibrary
from hub.media.uploads import UploadedFile
from hub.realtime.ingress import Ingress
from hub.storage.models import WhatsAppTemplate
from hub.templates.service import Templates, has_templates
from hub.web.http import Body
from schemas.message import (
    DeliveryStatus,
    Direction,
    Sender,
    SenderType,
)

TEMPLATE_KEY = "template"  # Message.raw[TEMPLATE_KEY]: the send's `template` object

# Why a template that is not approved cannot be sent, by its status.
NOT_SENDABLE = {
    "PENDING": "is still in WhatsApp's review",
    "REJECTED": "was rejected by WhatsApp",
    "PAUSED": "is paused by WhatsApp because of its low quality",
    "DISABLED": "is disabled by WhatsApp",
    "DELETED": "was deleted",
    "IN_APPEAL": "is in appeal",
    "LIMIT_EXCEEDED": "is over the account's template limit",
    "ARCHIVED": "is archived",
}


class TemplateNotApproved(Conflict):
    code = "template_not_approved"
    default_message = "Only an approved template can be sent."


class TemplateParameters(BadRequest):
    code = "template_parameters"
    default_message = "The values do not fit the template."


class TemplateFill(Body):
    name: str = Field(min_length=1, max_length=512, description="The template's name")
    language: str = Field(min_length=1, max_length=20, description="Its language, e.g. en_US")
    header: list[str] = Field(
        default_factory=list, max_length=1, description="A text header's value"
    )
    body: list[str] = Field(
        default_factory=list, max_length=100, description="The body's values, in order"
    )
    buttons: dict[int, str] = Field(
        default_factory=dict,
        description="By button index: a URL button's suffix or a copy-code button's code",
    )
    header_link: str | None = Field(
        default=None,
        max_length=2000,
        description="A media header's file by https link (or send the file, multipart)",
    )


class TemplateSendBody(TemplateFill):
    client_id: str = Field(min_length=1, max_length=100)


class TemplateSendForm(Body):
    """The multipart form of a template whose header file the hub keeps."""

    client_id: str = Field(min_length=1, max_length=100)
    template: str = Field(
        max_length=100_000, description="The other fields (TemplateFill), as a JSON object"
    )
    attachments: list[bytes] = Field(
        default_factory=list,
        max_length=1,
        description="The header's image, video or document",
        json_schema_extra={"items": {"type": "string", "format": "binary"}},
    )


def values_of(fill: TemplateFill, file: UploadedFile | None) -> send_template.Values:
    return send_template.Values(
        header=fill.header,
        body=fill.body,
        buttons=fill.buttons,
        header_media_link=fill.header_link,
        header_media_file=file is not None,
        header_media_name=file.name if file is not None else None,
    )


def prepared(row: WhatsAppTemplate, values: send_template.Values) -> tuple[dict[str, object], str]:
    """The `template` object and the rendered text; raises what the agent should read."""
    if row.status != "APPROVED":
        why = NOT_SENDABLE.get(row.status, f"has the status {row.status}")
        raise TemplateNotApproved(f"The template “{row.name}” {why}: it cannot be sent.")
    shape = templates.shape(row.components, row.parameter_format)
    try:
        send_template.check(shape, values)
    except send_template.TemplateMismatch as exc:
        raise TemplateParameters(str(exc)) from None
    parts = send_template.components(shape, values)
    return (
        send_template.template_object(row.name, row.language, parts),
        send_template.render(shape, values),
    )


@dataclass(frozen=True, slots=True)
class TemplateSending:
    templates: Templates
    ingress: Ingress
    library: MediaLibrary

    async def send(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        client_id: str,
        fill: TemplateFill,
        file: UploadedFile | None,
    ) -> tuple[uuid.UUID, Published]:
        ref = await self.ingress.conversation(principal.workspace_id, conversation_id)
        if not has_templates(ref.channel_kind) or ref.kind != "dm":
            raise BadRequest("Templates are sent in WhatsApp conversations.")
        row = await self.templates.find(
            principal.workspace_id, ref.channel_id, fill.name, fill.language
        )
        template, text = prepared(row, values_of(fill, file))
        sender = Sender(
            type=SenderType.AGENT, id=str(principal.user_id), name=principal.name or None
        )

        async def publish(attachments: list[dict[str, object]]) -> tuple[uuid.UUID, Published]:
            message = ref.message(
                f"a:{principal.user_id}:{client_id}",
                client_id,
                text,
                attachments,
                direction=Direction.OUT,
                status=DeliveryStatus.PENDING,
                sender=sender,
            ).model_copy(update={"raw": {TEMPLATE_KEY: template}})
            return message.id, await self.ingress.publish_message(message, inbound=False)

        if file is None:
            return await publish([])
        async with self.library.kept(
            ref.workspace_id,
            ref.id,
            ref.channel_kind,
            [(file.name, file.data)],
            seed=(principal.user_id, client_id),
        ) as upload:
            message_id, published = await publish(
                [a.model_dump(exclude_none=True) for a in upload.attachments]
            )
        if published.duplicate:
            await self.library.forget_files(ref.workspace_id, ref.id, upload.added)
        return message_id, published
