"""The "media" consumer group: the files of new platform messages, fetched off the webhook
path and kept in the media library, then shown through one `message.updated`.

A platform's webhook carries only a media id or an expiring link, so a parsed attachment
with a file arrives `pending` (the inbox shows it as coming). For each `message.created`
with pending attachments this group asks the channel's adapter where the bytes are
(`locate_media`, with the channel's token), downloads them bounded in size
(`max_media_bytes`) and time (`media_fetch_timeout_s`, every try included), and keeps them
(`MediaLibrary.keep`: the type read from the bytes against the allowlist, images stripped of
their metadata). Passing failures (timeouts, connection errors, 5xx, 429) are tried again
with a short backoff; what cannot be had for good becomes `unavailable`, and a file over the
limit stays a `link` (the platform's, where one can be opened without a token) with the
reason. A batch's downloads run concurrently, a few at a time, so one slow file does not
hold the others.

A redelivered event keeps the same files again (their ids derive from the message and the
attachment's place) and its update is published once (a dedupe key). If the person was
erased while their files were fetched, the files are deleted and nothing is published.
URLs are never logged: a Telegram file URL holds the bot token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import httpx

from adapters import registry
from adapters.media import MediaGone, MediaSource, NoMedia
from adapters.outbound import Platforms, redact
from adapters.protocol import Adapter
from hub.bus import Bus, Event
from hub.channels.service import Channels
from hub.errors import TooBig
from hub.media import images, kinds
from hub.media.library import MediaLibrary, files_of
from hub.privacy import erasure
from hub.web.addresses import connected_to_public, origin, public_address
from hub.web.pinning import Refused, pinned_client
from schemas.events import MessageChanges, MessageUpdated
from schemas.message import Attachment, MediaState, Message, derive_id

log = logging.getLogger("hub.media")

MEDIA_GROUP = "media"
BACKOFF_S = (0.5, 2.0)  # the pauses between tries: three tries in all
CONCURRENT_DOWNLOADS = 4  # per worker and batch

SLOW = "the platform did not send the file in time"
NO_FILE = "the platform gave no file"
GONE = "the platform no longer has the file"
NO_CHANNEL = "the channel is no longer connected"
PRIVATE = "the link is not an https link to a public address"
BAD_LINK = "the platform's link cannot be read"
FAILED = "the file could not be fetched"
MAX_REDIRECTS = 3


class _TooLarge(Exception):
    """More bytes than the hub keeps."""


class _Unreachable(Exception):
    """The platform could not be asked, every try."""


class MediaFetcher:
    def __init__(
        self,
        bus: Bus,
        channels: Channels,
        library: MediaLibrary,
        platforms: Platforms,
        client: httpx.AsyncClient,
        *,
        max_bytes: int,
        timeout_s: float,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        concurrency: int = CONCURRENT_DOWNLOADS,
        allow_private: bool = False,
    ) -> None:
        self.bus, self.channels, self.library = bus, channels, library
        self.platforms, self.client = platforms, client
        self.max_bytes, self.timeout_s, self.backoff_s = max_bytes, timeout_s, backoff_s
        self.concurrency = concurrency
        self.allow_private = allow_private
        # The platforms' own APIs, as configured: trusted wherever they are (a test's loopback).
        apis = (platforms.graph, platforms.instagram, platforms.telegram)
        self.trusted = {origin(url) for url in apis}
        self._links: httpx.AsyncClient | None = None  # for the others: see `links`

    # The worker runs it as a task: its client for links is closed when the worker stops.

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        if self._links is not None:
            await self._links.aclose()
            self._links = None

    @property
    def links(self) -> httpx.AsyncClient:
        """For links the platforms' APIs did not give us: it connects to the address it
        checked (`hub.web.pinning`), so a name cannot lead elsewhere between check and fetch."""
        if self._links is None:
            self._links = pinned_client(allow_private=False)
        return self._links

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        found: list[tuple[Message, str]] = []
        for event in events:
            # Only a message with a pending file needs the parse: most have none.
            if (data := event.created(log, mentioning='"pending"')) is None:
                continue
            message = data.message
            if any(a.state == MediaState.PENDING for a in message.attachments):
                found.append((message, event.id))
        if not found:
            return
        slots = asyncio.Semaphore(self.concurrency)
        async with asyncio.TaskGroup() as group:
            for message, event_id in found:
                group.create_task(self._message(workspace_id, message, event_id, slots))

    async def _message(
        self, workspace_id: str, message: Message, event_id: str, slots: asyncio.Semaphore
    ) -> None:
        adapter = registry.get(message.channel_kind)
        if adapter is None:
            return  # not a platform's message (the web chat's files are uploaded, not fetched)
        resolved = await self.channels.by_id(message.channel_id)
        workspace = uuid.UUID(workspace_id)
        jobs = []
        for index, attachment in enumerate(message.attachments):
            if attachment.state != MediaState.PENDING:
                jobs.append(_same(attachment))
            elif resolved is None:
                jobs.append(_same(_unavailable(attachment, NO_CHANNEL)))
            else:
                jobs.append(self._one(workspace, message, index, adapter, resolved.secrets, slots))
        attachments = list(await asyncio.gather(*jobs))
        kept = files_of(
            new
            for old, new in zip(message.attachments, attachments, strict=True)
            if old.state == MediaState.PENDING and new.state == MediaState.READY
        )
        if await self._erased(workspace_id, message, event_id):
            # The person was erased while their files were fetched: none of it is kept.
            await self.library.forget_files(workspace, message.conversation_id, kept)
            return
        data = MessageUpdated(
            channel_id=message.channel_id,
            conversation_id=message.conversation_id,
            platform_message_id=message.platform_message_id,
            message_id=message.id,
            changes=MessageChanges(attachments=attachments),
        )
        await self.bus.publish(
            workspace_id,
            data.NAME,
            data.dump(),
            conversation_id=str(message.conversation_id),
            dedupe_key=f"media:{message.id}",
        )
        if await self._erased(workspace_id, message, event_id):
            # Erased between the check and the publish: the erasure's own delete may have run
            # before these files were written, so they go now.
            await self.library.forget_files(workspace, message.conversation_id, kept)

    async def _erased(self, workspace_id: str, message: Message, event_id: str) -> bool:
        contact, channel = str(message.contact_id), str(message.channel_id)
        return await erasure.erased_after(self.bus, workspace_id, contact, event_id, channel)

    async def _one(
        self,
        workspace: uuid.UUID,
        message: Message,
        index: int,
        adapter: Adapter,
        secrets: Mapping[str, str],
        slots: asyncio.Semaphore,
    ) -> Attachment:
        """The attachment once its file is fetched and kept, or why it is not."""
        attachment = message.attachments[index]
        if attachment.size is not None and attachment.size > self.max_bytes:
            return self._link(attachment)  # the platform says so: not downloaded at all
        async with slots:  # held until kept: at most a few files' bytes in memory at once
            try:
                async with asyncio.timeout(self.timeout_s):
                    data, source = await self._download(adapter, attachment, secrets)
            except _TooLarge:
                return self._link(attachment)
            except TimeoutError:
                return self._failed(message, attachment, SLOW)
            except MediaGone as exc:
                return self._failed(message, attachment, str(exc) or GONE)
            except NoMedia:
                return self._failed(message, attachment, NO_FILE)
            except _Unreachable as exc:
                return self._failed(message, attachment, str(exc))
            except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
                return self._failed(message, attachment, BAD_LINK)
            except Exception:
                # Whatever else goes wrong with one file stays with that file: the group goes on.
                log.exception("media of message %s: fetching failed", message.id)
                return self._failed(message, attachment, FAILED)
            return await self._keep(workspace, message, index, data, source)

    async def _keep(
        self,
        workspace: uuid.UUID,
        message: Message,
        index: int,
        data: bytes,
        source: MediaSource,
    ) -> Attachment:
        attachment = message.attachments[index]
        try:
            return await self.library.keep(
                workspace,
                message.conversation_id,
                data,
                name=attachment.name or source.name,
                caption=attachment.caption,
                type=attachment.type,
                seed=derive_id("media", message.id, index),  # the same file when redelivered
            )
        except kinds.UnsupportedMediaType as exc:
            return self._failed(message, attachment, _sentence(exc.message))
        except images.BadImage:
            return self._failed(message, attachment, "the image could not be read")
        except TooBig:  # an image of too many pixels, or over the store's own limit
            return self._link(attachment)

    async def _download(
        self, adapter: Adapter, attachment: Attachment, secrets: Mapping[str, str]
    ) -> tuple[bytes, MediaSource]:
        """Locate and download, tried again after a passing failure."""
        pauses = list(self.backoff_s)
        while True:
            try:
                client, platforms = self.client, self.platforms
                source = await adapter.locate_media(client, attachment, secrets, platforms)
                if source.size is not None and source.size > self.max_bytes:
                    raise _TooLarge()
                return await self._get(source), source
            except httpx.HTTPError as exc:
                why = _passing(exc)
                if not pauses:
                    raise _Unreachable(f"the platform could not send the file ({why})") from None
                log.info("media: %s; trying again", why)
                await asyncio.sleep(pauses.pop(0))

    async def _get(self, source: MediaSource) -> bytes:
        """The file's bytes, stopped as soon as they pass the limit. Redirects are followed
        here, a few at most, each checked like the first link; a token header goes only to
        the origin it was given for."""
        url, headers = source.url, source.headers
        for _ in range(MAX_REDIRECTS + 1):
            await self._check_link(url)
            client = self.client if self._trusted(url) else self.links
            async with (
                _refused_is_gone(),
                client.stream(
                    "GET", url, headers=headers, timeout=self.timeout_s, follow_redirects=False
                ) as response,
            ):
                if not self._trusted(url) and not connected_to_public(response.extensions):
                    raise MediaGone(PRIVATE)  # the name led elsewhere than when it was checked
                status = response.status_code
                if response.is_redirect and "location" in response.headers:
                    following = str(response.url.join(response.headers["location"]))
                    if origin(following) != origin(url):
                        headers = {}
                    url = following
                    continue
                if status >= 500 or status == 429:
                    raise httpx.HTTPStatusError(
                        f"the platform answered {status}",
                        request=response.request,
                        response=response,
                    )
                if not 200 <= status < 300:
                    raise MediaGone(f"{GONE} (HTTP {status})")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise _TooLarge()
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise _TooLarge()
                return bytes(data)
        raise MediaGone("the platform's link redirects too often")

    async def _check_link(self, url: str) -> None:
        """A link the platform's API did not give us itself (the CDN link in a webhook, or a
        redirect) must be https to a public address: a webhook signed with a workspace's own
        app secret could otherwise make the hub fetch from the operator's network and show
        the answer in that workspace's inbox."""
        if self._trusted(url):
            return
        if urlsplit(url).scheme != "https" or not await public_address(url, unresolved=False):
            raise MediaGone(PRIVATE)

    def _trusted(self, url: str) -> bool:
        return self.allow_private or origin(url) in self.trusted

    def _link(self, attachment: Attachment) -> Attachment:
        """Too large to keep: the platform's own link stays, when the parse gave one that
        opens without a token (Instagram's and Messenger's; never a Telegram file URL)."""
        reason = f"larger than {_megabytes(self.max_bytes)} MB"
        return attachment.model_copy(update={"state": MediaState.LINK, "reason": reason})

    def _failed(self, message: Message, attachment: Attachment, reason: str) -> Attachment:
        log.info("media of message %s unavailable: %s", message.id, redact(reason))
        return _unavailable(attachment, reason)


def _unavailable(attachment: Attachment, reason: str) -> Attachment:
    return attachment.model_copy(update={"state": MediaState.UNAVAILABLE, "reason": reason})


async def _same(attachment: Attachment) -> Attachment:
    return attachment


def _passing(exc: httpx.HTTPError) -> str:
    """A passing failure in a few words, without its URL."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return redact(type(exc).__name__)


def _sentence(text: str) -> str:
    """A library message ("The file is ...") as a reason ("the file is ...")."""
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]


def _megabytes(size: int) -> str:
    megabytes = size / (1024 * 1024)
    return f"{megabytes:.0f}" if megabytes >= 10 else f"{megabytes:.1f}".removesuffix(".0")


@contextlib.asynccontextmanager
async def _refused_is_gone() -> AsyncIterator[None]:
    """A link whose host leads to a private address when it is connected to: not passing."""
    try:
        yield
    except httpx.ConnectError as exc:
        if isinstance(exc.__cause__, Refused):
            raise MediaGone(PRIVATE) from None
        raise
