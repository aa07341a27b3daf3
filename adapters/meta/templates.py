"""WhatsApp message templates as the WhatsApp Business Account (WABA) holds them: the list
call, reading its pages, the shape of one template (its variables, per component), and the
`message_template_status_update` webhook. Pure: requests and answers are values.

- List: `GET {graph}/{waba_id}/message_templates?fields=...&limit=100` with the number's
  bearer token; the answer is `{data: [...], paging: {cursors: {after}, next}}`. The next
  page is asked for with `after=<cursor>` on the same URL rather than by following
  `paging.next`, which is an absolute URL: following it would send the token wherever the
  answer says.
- A template: `{id, name, language, status, category, parameter_format, components: [{type:
  HEADER, format: TEXT|IMAGE|VIDEO|DOCUMENT|LOCATION, text}, {type: BODY, text}, {type:
  FOOTER, text}, {type: BUTTONS, buttons: [{type: URL|QUICK_REPLY|PHONE_NUMBER|COPY_CODE|...,
  text, url}]}]}`. Variables are `{{1}}`, `{{2}}`... or, with `parameter_format: NAMED`,
  `{{first_name}}`.
- Status webhook (field `message_template_status_update` on the WABA, entry id = WABA id):
  `value {event, message_template_id, message_template_name, message_template_language,
  reason, ...}`; tests/fixtures/whatsapp/template_status_approved_doc_example.json.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from adapters.base import as_id, as_list, nonempty_text
from adapters.outbound import Platforms, Request

STATUS_FIELD = "message_template_status_update"
FIELDS = "id,name,language,status,category,parameter_format,components,rejected_reason"
PAGE_SIZE = 100
MAX_PAGES = 50  # 5000 templates: past Meta's own per-WABA limit, so a loop is cut short
VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_HEADERS = ("IMAGE", "VIDEO", "DOCUMENT")
# Buttons that take a value when sent, and the parameter type it travels as.
VALUED_BUTTONS = {"URL": "url", "COPY_CODE": "copy_code"}
# Status events that name the status a template now has under another word.
EVENT_STATUS = {"REINSTATED": "APPROVED", "PENDING_DELETION": "DELETED", "UNPAUSED": "APPROVED"}


def list_request(
    platforms: Platforms, waba_id: str, token: str, after: str | None = None
) -> Request:
    query = {"fields": FIELDS, "limit": str(PAGE_SIZE)} | ({"after": after} if after else {})
    url = f"{platforms.graph}/{quote(waba_id, safe='')}/message_templates?{urlencode(query)}"
    return Request("GET", url, headers={"Authorization": f"Bearer {token}"})


@dataclass(frozen=True, slots=True)
class Page:
    templates: list[dict[str, Any]]
    after: str | None  # the cursor of the next page; None on the last


def read_page(status: int, body: Any) -> Page | str:
    """One page of templates, or why there is none (the platform's words)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) or not 200 <= status < 300 or not isinstance(body, dict):
        message = nonempty_text(error.get("message")) if isinstance(error, dict) else None
        return message or f"HTTP {status}"
    templates = [t for t in as_list(body.get("data")) if _usable(t)]
    paging = body.get("paging")
    cursors = paging.get("cursors") if isinstance(paging, dict) else None
    after = nonempty_text(cursors.get("after")) if isinstance(cursors, dict) else None
    more = isinstance(paging, dict) and bool(paging.get("next"))
    return Page(templates, after if more else None)


def _usable(template: Any) -> bool:
    return (
        isinstance(template, dict)
        and nonempty_text(template.get("name")) is not None
        and nonempty_text(template.get("language")) is not None
    )


@dataclass(frozen=True, slots=True)
class Button:
    index: int
    type: str
    text: str
    url: str | None = None
    variables: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Shape:
    """What an agent fills in: the variables of the header, body and buttons, in order."""

    header_format: str | None = None  # TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION
    header_text: str | None = None
    header_variables: list[str] = field(default_factory=list)
    body_text: str = ""
    body_variables: list[str] = field(default_factory=list)
    footer_text: str | None = None
    buttons: list[Button] = field(default_factory=list)
    named: bool = False

    @property
    def header_media(self) -> str | None:
        """image, video or document when the header is a file."""
        return self.header_format.lower() if self.header_format in MEDIA_HEADERS else None


def variables(text: str | None) -> list[str]:
    """The distinct variables of a text, in the order they are filled: by number when
    positional, by first appearance when named."""
    found = list(dict.fromkeys(VARIABLE.findall(text or "")))
    if found and all(v.isdigit() for v in found):
        return sorted(found, key=int)
    return found


def shape(components: Any, parameter_format: str | None = None) -> Shape:
    header_format = header_text = body_text = footer_text = None
    buttons: list[Button] = []
    for component in as_list(components):
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header_format = str(component.get("format") or "TEXT").upper()
            header_text = nonempty_text(component.get("text"))
        elif kind == "BODY":
            body_text = nonempty_text(component.get("text"))
        elif kind == "FOOTER":
            footer_text = nonempty_text(component.get("text"))
        elif kind == "BUTTONS":
            for index, button in enumerate(as_list(component.get("buttons"))):
                if not isinstance(button, dict):
                    continue
                button_type = str(button.get("type", "")).upper()
                url = nonempty_text(button.get("url"))
                valued = variables(url) if button_type == "URL" else []
                if button_type == "COPY_CODE":
                    valued = ["code"]
                text = nonempty_text(button.get("text")) or button_type.lower()
                buttons.append(Button(index, button_type, text, url, valued))
    return Shape(
        header_format=header_format,
        header_text=header_text,
        header_variables=variables(header_text) if header_format == "TEXT" else [],
        body_text=body_text or "",
        body_variables=variables(body_text),
        footer_text=footer_text,
        buttons=buttons,
        named=(parameter_format or "").upper() == "NAMED",
    )


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    waba_id: str
    template_id: str | None
    name: str | None
    language: str | None
    status: str
    reason: str | None


def is_status_change(entry: Any) -> bool:
    changes = entry.get("changes") if isinstance(entry, dict) else None
    return any(isinstance(c, dict) and c.get("field") == STATUS_FIELD for c in as_list(changes))


def parse_status(entry: Any) -> list[StatusUpdate]:
    """Every status change of an entry of the WABA webhook; malformed ones are left out."""
    if not isinstance(entry, dict):
        return []
    waba_id = as_id(entry.get("id"))
    updates: list[StatusUpdate] = []
    for change in as_list(entry.get("changes")):
        if not isinstance(change, dict) or change.get("field") != STATUS_FIELD:
            continue
        value = change.get("value")
        event = nonempty_text(value.get("event")) if isinstance(value, dict) else None
        if waba_id is None or not isinstance(value, dict) or event is None:
            continue
        updates.append(
            StatusUpdate(
                waba_id=waba_id,
                template_id=as_id(value.get("message_template_id")),
                name=nonempty_text(value.get("message_template_name")),
                language=nonempty_text(value.get("message_template_language")),
                status=EVENT_STATUS.get(event.upper(), event.upper()),
                reason=_reason(value),
            )
        )
    return updates


def _reason(value: dict[str, Any]) -> str | None:
    """Why, in the most specific words the change has: a rejection's explanation, a pause's
    title and description, then the reason code ("NONE" says nothing)."""
    rejection = value.get("rejection_info")
    if isinstance(rejection, dict) and nonempty_text(rejection.get("reason")):
        return nonempty_text(rejection.get("reason"))
    other = value.get("other_info")
    if isinstance(other, dict):
        words = [nonempty_text(other.get(k)) for k in ("title", "description")]
        if any(words):
            return ": ".join(w for w in words if w)
    reason = nonempty_text(value.get("reason"))
    return None if reason in (None, "NONE") else reason


__all__ = [
    "STATUS_FIELD",
    "Button",
    "Page",
    "Shape",
    "StatusUpdate",
    "is_status_change",
    "list_request",
    "parse_status",
    "read_page",
    "shape",
    "variables",
]
