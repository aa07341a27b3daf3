"""What a custom attribute's value may be, by its type: pure checks that turn what an agent,
a filter or a rule gives into the stored form (`Stored`), or refuse it with
`invalid_attribute_value`.

- text: up to 500 characters, trimmed;
- number: a finite number (a JSON number or its text), kept as a float for ranges;
- date: an ISO calendar date, YYYY-MM-DD (kept as that text, which sorts as dates do);
- list: one of the definition's options, exactly;
- link: an absolute http(s) URL with a host (nothing else is ever shown as a link).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal
from urllib.parse import urlsplit

from hub.errors import BadRequest

AttributeType = Literal["text", "number", "date", "list", "link"]
Subject = Literal["contact", "conversation"]
TYPES: tuple[str, ...] = ("text", "number", "date", "list", "link")
MAX_TEXT = 500
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InvalidValue(BadRequest):
    code = "invalid_attribute_value"


class UnknownAttribute(BadRequest):
    code = "unknown_attribute"


@dataclass(frozen=True, slots=True)
class Stored:
    text: str
    number: float | None = None

    def value(self, kind: str) -> str | float:
        """As the API answers it: a number for a number, text otherwise."""
        if kind == "number" and self.number is not None:
            return int(self.number) if self.number.is_integer() else self.number
        return self.text


def parse(kind: str, options: list[str], key: str, given: object) -> Stored:
    """`given` as `kind` stores it; InvalidValue (400) when it does not fit."""
    if isinstance(given, bool) or not isinstance(given, str | int | float):
        raise InvalidValue(f"{key}: a {kind} attribute takes a string or a number.")
    if kind == "number":
        try:
            number = float(given.strip()) if isinstance(given, str) else float(given)
        except (ValueError, OverflowError):  # float(10**400): an int too large for a float
            raise InvalidValue(f"{key} must be a number.") from None
        if not math.isfinite(number):
            raise InvalidValue(f"{key} must be a finite number.")
        return Stored(repr(int(number)) if number.is_integer() else repr(number), number)
    text = str(given).strip()
    if not text or len(text) > MAX_TEXT or "\x00" in text:
        raise InvalidValue(f"{key} must be 1 to {MAX_TEXT} characters (null clears it).")
    if kind == "date":
        try:
            if not _DATE.match(text):
                raise ValueError
            date.fromisoformat(text)
        except ValueError:
            raise InvalidValue(f"{key} must be a date, YYYY-MM-DD.") from None
    elif kind == "list" and text not in options:
        raise InvalidValue(f"{key} must be one of its options.")
    elif kind == "link" and not is_web_link(text):
        raise InvalidValue(f"{key} must be an http or https link.")
    return Stored(text)


def is_web_link(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in text
