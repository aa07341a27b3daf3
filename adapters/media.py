"""Media as the adapters see it: where an inbound file can be downloaded from, and whether a
platform takes a file the hub would send.

The hub does the downloading (bounded in size and time, off the live path) and the storing;
an adapter only says where the bytes are (`locate_media`, which may ask the platform first,
as WhatsApp's and Telegram's media ids need) and what the platform accepts (`refuse_media`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import httpx


@dataclass(frozen=True, slots=True)
class MediaSource:
    """Where an inbound attachment's bytes are: GET `url` with `headers` (the channel's token
    when the platform wants it; never logged)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    name: str | None = None  # the platform's file name, when it gives one
    size: int | None = None  # what the platform says, when it says (checked before download)


class MediaGone(Exception):
    """The platform says the file cannot be had, for good (deleted, expired, not found): the
    attachment is shown as not available with this reason."""


class NoMedia(Exception):
    """The attachment holds no file to fetch (a location, a share without a link)."""


@dataclass(frozen=True, slots=True)
class MediaRefusal:
    """Why a platform would not take a file: too large for its type, or a type it does not
    take; the hub answers 413 or 415 with `code`."""

    code: Literal["media_too_large", "media_refused_by_channel"]
    message: str


MB = 1_000_000  # the platforms' "MB"; decimal, so a file at the limit is never refused there


@dataclass(frozen=True, slots=True)
class Taken:
    """How a platform takes files of one content type: as its `kind` (WhatsApp's message
    type, Telegram's method, the Send API's attachment type), up to `max_bytes`."""

    kind: str
    max_bytes: int


def refusal(title: str, taken: Taken | None, content_type: str, size: int) -> MediaRefusal | None:
    """`refuse_media` from a platform's table: None when `taken` allows `size`."""
    if taken is None:
        return MediaRefusal(
            "media_refused_by_channel", f"{title} does not take {content_type} files."
        )
    if size > taken.max_bytes:
        limit = (
            f"{taken.max_bytes / MB:g} MB"
            if taken.max_bytes >= MB
            else (f"{taken.max_bytes // 1000} KB")
        )
        return MediaRefusal(
            "media_too_large", f"{title} takes {content_type} files of up to {limit}."
        )
    return None


def raise_if_passing(response: httpx.Response) -> None:
    """A 5xx or 429 is the platform unable to answer now: raised as httpx's error, so the
    lookup is tried again. The message names no URL (a Telegram URL holds the token)."""
    status = response.status_code
    if status >= 500 or status == 429:
        raise httpx.HTTPStatusError(
            f"the platform answered {status}", request=response.request, response=response
        )
