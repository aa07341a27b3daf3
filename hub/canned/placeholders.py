"""Placeholders in text an agent or the hub sends on their behalf (canned responses, and the
replies that automation sends): `{{contact.name}}`, with an optional fallback for when the
value is not known, `{{contact.first_name | there}}`.

Known names: `contact.name`, `contact.first_name`, `agent.name`, `agent.first_name`. Anything
else in double braces is refused when the text is saved (`unknown_placeholder`), so a typo
never reaches a customer as `{{contact.nmae}}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hub.errors import BadRequest

NAMES = ("contact.name", "contact.first_name", "agent.name", "agent.first_name")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|\s*([^{}]*?)\s*)?\}\}")


class UnknownPlaceholder(BadRequest):
    code = "unknown_placeholder"
    default_message = "Placeholders are {{contact.name}}, {{contact.first_name}}, {{agent.name}}."


def check(text: str) -> None:
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in NAMES:
            raise UnknownPlaceholder(
                f"Unknown placeholder {match.group(0)[:60]}: use one of "
                + ", ".join("{{" + name + "}}" for name in NAMES)
                + "."
            )


def values(contact_name: str | None, agent_name: str | None) -> dict[str, str]:
    """The placeholders' values for a contact and an agent (an unknown name is empty)."""
    contact, agent = (contact_name or "").strip(), (agent_name or "").strip()
    return {
        "contact.name": contact,
        "contact.first_name": contact.split()[0] if contact else "",
        "agent.name": agent,
        "agent.first_name": agent.split()[0] if agent else "",
    }


def render(text: str, known: Mapping[str, str]) -> str:
    """Each placeholder replaced by its value, else its fallback, else nothing."""

    def one(match: re.Match[str]) -> str:
        return known.get(match.group(1), "") or (match.group(2) or "")

    return _PLACEHOLDER.sub(one, text)
