"""The one interface every platform adapter satisfies; `adapters.registry` maps a channel kind
to its adapter, and the hub asks the registry instead of branching on kinds.

An adapter is pure apart from `fetch_profile`, whose I/O goes through the client it is
given: requests in and out are values (`adapters.outbound.Request`), and the hub performs
them. Inbound types are in `adapters.base`, outbound ones in `adapters.outbound`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

from adapters.base import ChannelContext, ParseResult
from adapters.media import MediaRefusal, MediaSource
from adapters.outbound import Outcome, Outgoing, Platforms, Request
from schemas.message import Attachment, ChannelKind


@dataclass(frozen=True, slots=True)
class Given:
    """What an admin pasted to connect a channel by hand; each kind needs some of it."""

    account_id: str | None = None
    business_account_id: str | None = None
    access_token: str | None = None
    app_secret: str | None = None
    verify_token: str | None = None
    bot_token: str | None = None
    page_id: str | None = None  # an Instagram account pasted with its Facebook Page's token


@dataclass(frozen=True, slots=True)
class Credentials:
    """What connecting keeps: the secrets to seal, the platform account the channel answers
    for, and the secrets generated for the admin to paste, shown this once."""

    secrets: dict[str, str]
    account_id: str
    shown: dict[str, str]


class Refused(ValueError):
    """What was given cannot make a channel of this kind; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str | None
    username: str | None
    picture_url: str | None


@runtime_checkable
class Adapter(Protocol):
    """One platform channel kind, as the hub needs it."""

    @property
    def kind(self) -> ChannelKind: ...

    @property
    def family(self) -> str:
        """The webhook route segment: a channel's own endpoint is
        `/webhooks/{family}/{channel_id}`."""

    @property
    def title(self) -> str:
        """The platform's name, for messages to admins."""

    @property
    def account_field(self) -> str:
        """The `account_ids` key holding the account the channel answers for."""

    @property
    def fetches_profiles(self) -> bool:
        """Whether a contact's name and picture can be asked for (`fetch_profile`)."""

    @property
    def sends_templates(self) -> bool:
        """Whether the platform has message templates a business sends past the messaging
        window (WhatsApp's: `adapters.meta.templates`, `adapters.meta.send_template`)."""

    @property
    def sends_reactions(self) -> bool:
        """Whether an agent's reaction on a message can be sent."""

    @property
    def media_by_url(self) -> bool:
        """Whether the platform fetches an agent's files from a URL the hub serves (then
        `OutgoingFile.url` is given, not its bytes)."""

    # Inbound

    def handshake(self, params: Mapping[str, str], secrets: Mapping[str, str]) -> str | None:
        """The answer to a subscription check (a GET with query `params`), or None to refuse."""

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str]) -> bool:
        """Whether a delivery comes from the platform, before anything in it is parsed."""

    def parse(self, payload: dict[str, Any], ctx: ChannelContext) -> ParseResult:
        """One decoded delivery for the channel `ctx`; never raises, never does I/O."""

    # Sending

    def build_send(self, out: Outgoing, platforms: Platforms) -> Request:
        """The request that sends `out`; raises `Unsendable` (or a subclass) when it cannot."""

    def interpret_send(self, status: int, body: Any, headers: Mapping[str, str]) -> Outcome:
        """What the platform's answer to a send means."""

    def build_upload(self, out: Outgoing, platforms: Platforms) -> Request | None:
        """The call that gives the platform `out.file` before `build_send` names it (its
        answer read by `interpret_upload`), or None when the send carries the file itself."""

    def interpret_upload(self, status: int, body: Any, headers: Mapping[str, str]) -> str | Outcome:
        """The platform's id for the uploaded file, or the outcome of a send that failed."""

    def caption_limit(self, content_type: str) -> int:
        """How many characters of text a file of this type carries as its caption; 0 when it
        carries none (the text is then sent as a message of its own)."""

    # Connecting and disconnecting

    def credentials(self, given: Given) -> Credentials:
        """What to keep from what the admin gave; raises `Refused`."""

    def on_connect(
        self, secrets: Mapping[str, str], webhook_url: str, platforms: Platforms
    ) -> Request | None:
        """The call that points the platform at `webhook_url`, if the hub makes one."""

    def on_disconnect(
        self,
        account_ids: Mapping[str, Any],
        settings: Mapping[str, Any],
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> Request | str:
        """The call that stops the platform's deliveries, or why there is none to make."""

    def interpret_call(self, status: int, body: Any) -> tuple[bool, str]:
        """Whether a connect or disconnect call succeeded, and the platform's words if not."""

    def webhook_info(
        self, base_url: str, channel_id: uuid.UUID, shown: Mapping[str, str]
    ) -> dict[str, Any]:
        """What the admin pastes into the platform's dashboard."""

    # Contacts

    async def fetch_profile(
        self,
        client: httpx.AsyncClient,
        user_id: str,
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> Profile | None:
        """The contact's profile, or None when it cannot be had now."""

    # Media

    async def locate_media(
        self,
        client: httpx.AsyncClient,
        attachment: Attachment,
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> MediaSource:
        """Where to download an inbound attachment's file (asking the platform first when it
        gave only a media id). Raises `MediaGone` when the platform says it cannot be had,
        `NoMedia` when there is no file, and httpx's errors when it could not be asked now."""

    def refuse_media(self, content_type: str, size: int) -> MediaRefusal | None:
        """Why the platform would not take this file from the hub, or None when it would."""
