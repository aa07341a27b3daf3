"""Answers about WhatsApp message templates (synced from the WhatsApp Business Account)."""

from __future__ import annotations

import uuid

from pydantic import Field

from schemas.rest.base import Out, Timestamp


class TemplateButton(Out):
    index: int = Field(description="The button's position, as the send names it")
    type: str = Field(description="URL, QUICK_REPLY, PHONE_NUMBER, COPY_CODE, ...")
    text: str
    url: str | None = None
    variables: int = Field(description="How many values it takes when sent (0 or 1)")


class TemplateParameters(Out):
    header_format: str | None = Field(
        description="TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION; null without a header"
    )
    header: list[str] = Field(description="A text header's variables, in order")
    body: list[str] = Field(description="The body's variables, in order ('1', '2' or names)")
    buttons: list[TemplateButton]


class TemplateOut(Out):
    id: uuid.UUID
    channel_id: uuid.UUID
    template_id: str = Field(description="WhatsApp's id of the template")
    name: str
    language: str = Field(description="As WhatsApp names it: en_US, tr...")
    status: str = Field(description="APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...")
    category: str = Field(description="MARKETING, UTILITY or AUTHENTICATION")
    reason: str | None = Field(default=None, description="Why it is rejected, paused or disabled")
    sendable: bool = Field(description="Approved, so an agent can send it")
    header_text: str | None = None
    body_text: str
    footer_text: str | None = None
    parameters: TemplateParameters
    updated_at: Timestamp


class TemplatePage(Out):
    items: list[TemplateOut] = Field(description="By name, then language")
    synced_at: Timestamp | None = Field(description="When the list was last read from WhatsApp")


class TemplateSync(Out):
    count: int = Field(description="Templates the WhatsApp Business Account holds now")
    synced_at: Timestamp


class TemplatePreview(Out):
    text: str = Field(description="What the customer reads, variables filled in")
    components: list[dict[str, object]] = Field(description="The send's `components`")
