"""The conversations list's custom attribute filters: `attr.<key>=value` query parameters, a
conversation's own attributes and its contact's alike (keys are unique in a workspace)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hub.attributes.kinds import UnknownAttribute
from hub.web.operation import param

PREFIX = "attr."
MAX_FILTERS = 10
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

ATTRIBUTE_PARAM: dict[str, Any] = param(
    "attr.{key}",
    "query",
    "Only those whose custom attribute `key` (the conversation's, or its contact's) has this "
    "value: exactly, a number or a date (YYYY-MM-DD) as one. Up to 10 such parameters, all "
    "of which must hold. 400 `unknown_attribute`, `invalid_attribute_value`",
    {"type": "string"},
)


def attribute_filters(query: Mapping[str, str]) -> dict[str, str]:
    """The `attr.<key>` parameters, by key."""
    found = {k[len(PREFIX) :]: v for k, v in query.items() if k.startswith(PREFIX)}
    if len(found) > MAX_FILTERS:
        raise UnknownAttribute(f"At most {MAX_FILTERS} attribute filters.")
    for key in found:
        if not _KEY.match(key):
            raise UnknownAttribute(f"No attribute {key[:40]!r} in this workspace.")
    return found
