"""Sending a WhatsApp template: checking an agent's values against the template's shape,
building the `template` object of a `type: template` message, the text it renders to, and
the template errors in words. Pure.

The message (`POST {graph}/{phone_number_id}/messages`):

    {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "<wa_id>",
     "type": "template",
     "template": {"name": "order_update", "language": {"code": "en_US"},
                  "components": [
                    {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://..."}}]},
                    {"type": "body", "parameters": [{"type": "text", "text": "Ada"}]},
                    {"type": "button", "sub_type": "url", "index": "0",
                     "parameters": [{"type": "text", "text": "A-1001"}]}]}}

A header file the hub keeps is uploaded first (`/media`, as for any file) and named by
`{"id": <media id>}`; a link is given as `{"link": ...}`. Named templates add
`parameter_name` to each text parameter.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from adapters.meta.templates import VARIABLE, Shape
from adapters.outbound import Unsendable

MAX_VALUE_CHARS = 1024  # a body parameter; Meta caps the whole body text too (132005)

# Meta's template error codes (and the re-engagement one), in words an agent can act on.
WORDS = {
    131047: "More than 24 hours have passed since the customer last wrote: only an approved "
    "template reaches them until they write again (WhatsApp error 131047).",
    132000: "The number of values does not match the template's variables (WhatsApp error "
    "132000). Sync the templates: it may have been edited.",
    132001: "WhatsApp has no template of this name in this language (error 132001): it may "
    "have been deleted or not be approved yet. Sync the templates.",
    132005: "The template's text, once filled in, is too long (WhatsApp error 132005).",
    132007: "The filled-in template breaks WhatsApp's content policy (error 132007).",
    132012: "A value does not have the format the template expects, such as the header's "
    "file type (WhatsApp error 132012).",
    132015: "The template is paused because of its low quality (WhatsApp error 132015); "
    "it cannot be sent until it is unpaused.",
    132016: "The template is disabled (WhatsApp error 132016) and can no longer be sent.",
}


def words(code: int | None) -> str | None:
    return WORDS.get(code) if code is not None else None


def template_words(code: int | None) -> str | None:
    """The words for a template error (132xxx), which win over Meta's terse details; other
    codes keep the platform's own text when it has one."""
    return words(code) if code is not None and 132000 <= code < 133000 else None


class TemplateMismatch(Unsendable):
    """The values do not fit the template; the message says what is missing, in words."""

    code = "template_parameters"


@dataclass(frozen=True, slots=True)
class Values:
    """What an agent filled in. `header_media`: `{"link": url}` or `{"file": ...}` (a file
    the hub keeps: its media id is known only after the upload, `with_media_id`)."""

    header: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    buttons: dict[int, str] = field(default_factory=dict)
    header_media_link: str | None = None
    header_media_file: bool = False
    header_media_name: str | None = None  # a document's file name, shown to the customer


def check(shape: Shape, values: Values) -> None:
    """Raises TemplateMismatch, in words, when a count or a kind does not fit."""
    _count("header", shape.header_variables, values.header)
    _count("body", shape.body_variables, values.body)
    for value in [*values.header, *values.body, *values.buttons.values()]:
        if not value.strip():
            raise TemplateMismatch("Every variable needs a value; one is empty.")
        if len(value) > MAX_VALUE_CHARS:
            raise TemplateMismatch(f"A value is longer than {MAX_VALUE_CHARS} characters.")
    valued = {b.index: b for b in shape.buttons if b.variables}
    if missing := sorted(set(valued) - set(values.buttons)):
        labels = ", ".join(f"“{valued[i].text}”" for i in missing)
        raise TemplateMismatch(f"The button {labels} needs a value.")
    if extra := sorted(set(values.buttons) - set(valued)):
        raise TemplateMismatch(f"Button {extra[0]} of this template takes no value.")
    media = shape.header_media
    given = values.header_media_link is not None or values.header_media_file
    if media and not given:
        article = "an" if media[0] in "aeiou" else "a"
        raise TemplateMismatch(
            f"The template's header is {article} {media}: give a link or a file."
        )
    if not media and given:
        raise TemplateMismatch("The template's header takes no file.")
    if shape.header_format == "LOCATION":
        raise TemplateMismatch("Templates with a location header cannot be sent from the inbox.")
    link = values.header_media_link
    if link is not None and not link.startswith("https://"):
        raise TemplateMismatch("A header link must be an https:// URL.")


def _count(where: str, expected: list[str], given: list[str]) -> None:
    if len(expected) != len(given):
        raise TemplateMismatch(
            f"The template's {where} has {len(expected)} variable"
            f"{'' if len(expected) == 1 else 's'}; {len(given)} value"
            f"{' was' if len(given) == 1 else 's were'} given."
        )


def components(shape: Shape, values: Values) -> list[dict[str, Any]]:
    """The `components` of the send (after `check`). A header file is left as `{}` for
    `with_media_id` to fill once it is uploaded."""
    out: list[dict[str, Any]] = []
    if shape.header_variables:
        out.append(
            {"type": "header", "parameters": _texts(shape.header_variables, values.header, shape)}
        )
    media = shape.header_media
    if media:
        medium: dict[str, Any] = (
            {"link": values.header_media_link} if values.header_media_link is not None else {}
        )
        if media == "document" and values.header_media_name:
            medium["filename"] = values.header_media_name
        out.append({"type": "header", "parameters": [{"type": media, media: medium}]})
    if shape.body_variables:
        out.append({"type": "body", "parameters": _texts(shape.body_variables, values.body, shape)})
    for button in shape.buttons:
        if button.index not in values.buttons:
            continue
        value = values.buttons[button.index]
        if button.type == "COPY_CODE":
            parameter = {"type": "coupon_code", "coupon_code": value}
            sub_type = "copy_code"
        else:
            parameter, sub_type = {"type": "text", "text": value}, "url"
        out.append(
            {
                "type": "button",
                "sub_type": sub_type,
                "index": str(button.index),
                "parameters": [parameter],
            }
        )
    return out


def _texts(names: list[str], given: list[str], shape: Shape) -> list[dict[str, Any]]:
    if shape.named:
        return [
            {"type": "text", "parameter_name": n, "text": v}
            for n, v in zip(names, given, strict=True)
        ]
    return [{"type": "text", "text": v} for v in given]


def template_object(name: str, language: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parts:
        body["components"] = parts
    return body


def with_media_id(template: dict[str, Any], media_id: str | None) -> dict[str, Any]:
    """The template object with its header file named by the uploaded media id."""
    filled = copy.deepcopy(template)
    for component in filled.get("components", []):
        if component.get("type") != "header":
            continue
        for parameter in component.get("parameters", []):
            medium = parameter.get(parameter.get("type"))
            if isinstance(medium, dict) and "link" not in medium and "id" not in medium:
                if media_id is None:
                    raise Unsendable("the template's header file was not uploaded")
                medium["id"] = media_id
    return filled


def render(shape: Shape, values: Values) -> str:
    """The text the customer reads: header, body and footer, variables filled in."""
    parts = [
        _fill(shape.header_text, shape.header_variables, values.header)
        if shape.header_format == "TEXT"
        else None,
        _fill(shape.body_text, shape.body_variables, values.body),
        shape.footer_text,
    ]
    return "\n\n".join(p for p in parts if p)


def _fill(text: str | None, names: list[str], given: list[str]) -> str | None:
    if not text:
        return None
    filled = dict(zip(names, given, strict=False))
    return VARIABLE.sub(lambda m: filled.get(m.group(1), m.group(0)), text)


__all__ = [
    "TemplateMismatch",
    "Values",
    "check",
    "components",
    "render",
    "template_object",
    "with_media_id",
    "words",
]
