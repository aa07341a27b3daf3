"""The workspaces' files as attachments: what turns bytes into a stored, safe attachment, and
what finds one again for serving or forgets it.

Every file belongs to a conversation and lives under its prefix, so erasing a contact or a
channel, or sweeping a conversation for retention, deletes its files with one `delete_prefix`:

    w/<workspace_id>/c/<conversation_id>/f/<file>     the file, as kept
    w/<workspace_id>/c/<conversation_id>/t/<file>     an image's thumbnail (WebP)

`<file>` is 32 hex digits and an extension (`Attachment.file`). A key is always built from the
caller's own workspace, so another workspace's file is not found, exactly like a random one.
Images are re-encoded without their metadata (the location included) and upright before they
are kept, and get a thumbnail; the type is read from the bytes (`hub.media.kinds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from adapters import registry
from hub.errors import BadRequest, NotFound, TooBig
from hub.media import images, kinds
from hub.media.store import MediaStore, Stored, media_key
from schemas.message import Attachment, AttachmentType, MediaState, derive_id

FILE_PATTERN = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,5}")

_TYPES: dict[str, AttachmentType] = {
    "image": AttachmentType.IMAGE,
    "audio": AttachmentType.AUDIO,
    "video": AttachmentType.VIDEO,
    "document": AttachmentType.FILE,
}
_KEEPS_TYPE = frozenset({AttachmentType.STICKER})  # a sticker is an image, shown as a sticker
MAX_NAME_CHARS = 255


class NoSuchFile(NotFound):
    code = "no_such_file"
    default_message = "No such file."


class MediaTooLargeForChannel(TooBig):
    code = "media_too_large"
    default_message = "The file is larger than the channel takes."


class MediaRefusedByChannel(BadRequest):
    status = 415
    code = "media_refused_by_channel"
    default_message = "The channel does not take files of this type."


@dataclass(frozen=True, slots=True)
class Upload:
    """An upload's files as kept: their attachments, and the files it added to the store."""

    attachments: list[Attachment]
    added: list[str]


@dataclass(frozen=True, slots=True)
class Found:
    """A stored file, ready to serve."""

    stored: Stored
    kind: kinds.Kind


def file_id(content_type: str, seed: uuid.UUID | None = None) -> str:
    """A new file's id; from `seed` when the same file must get the same id again (a download
    that is retried)."""
    return f"{(seed or uuid.uuid4()).hex}.{kinds.EXTENSIONS[content_type]}"


def agent_url(conversation_id: uuid.UUID, file: str) -> str:
    return f"/api/conversations/{conversation_id}/media/{file}"


def conversation_prefix(workspace_id: uuid.UUID, conversation_id: uuid.UUID) -> str:
    return media_key(workspace_id, "c", str(conversation_id)) + "/"


def clean_name(name: str | None) -> str | None:
    """A file name as shown and offered for download: its last path part, printable, short."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '"').strip()
    return name[:MAX_NAME_CHARS] or None


class MediaLibrary:
    def __init__(self, store: MediaStore) -> None:
        self.store = store

    def _key(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID, part: str, file: str
    ) -> str:
        if not FILE_PATTERN.fullmatch(file):
            raise NoSuchFile()
        return media_key(workspace_id, "c", str(conversation_id), part, file)

    async def keep(
        self,
        workspace_id: uuid.UUID,
        conversation_id: uuid.UUID,
        data: bytes,
        *,
        name: str | None = None,
        caption: str | None = None,
        type: AttachmentType | None = None,
        seed: uuid.UUID | None = None,
    ) -> Attachment:
        """Store `data` as a file of the conversation; the attachment that shows it.

        Raises `kinds.UnsupportedMediaType` (415) for a type outside the allowlist,
        `images.BadImage` (400) or `images.ImageTooLarge` (413) for an image that cannot be
        kept, and `MediaTooLarge` (413) over the store's limit."""
        prepared = await _prepare(data, name=name, caption=caption, type=type, seed=seed)
        return await self._put(workspace_id, conversation_id, prepared)

    @contextlib.asynccontextmanager
    async def kept(
        self,
        workspace_id: uuid.UUID,
        conversation_id: uuid.UUID,
        channel_kind: str,
        files: list[tuple[str | None, bytes]],
        *,
        seed: tuple[object, ...],
    ) -> AsyncIterator[Upload]:
        """An upload's files, kept in order, for the block that sends them. Every file is
        checked (its type, the channel's limits) and its image cleaned before any is stored,
        so a refusal stores nothing; if the block fails, the files this upload added are
        deleted again. An id derives from `seed`, the file's place and its bytes: the same
        upload sent again keeps the same files, and different bytes under the same
        `client_id` can never replace what an earlier message showed (the block drops them
        with `Upload.added` when its message turns out to be a duplicate)."""
        adapter = registry.get(channel_kind)
        prepared = []
        for index, (name, data) in enumerate(files):
            kind = kinds.sniff(data)
            refusal = adapter.refuse_media(kind.content_type, len(data)) if adapter else None
            if refusal is not None and refusal.code == "media_too_large":
                raise MediaTooLargeForChannel(refusal.message)
            if refusal is not None:
                raise MediaRefusedByChannel(refusal.message)
            digest = hashlib.sha256(data).hexdigest()
            file_seed = derive_id("upload", conversation_id, *seed, index, digest)
            prepared.append(await _prepare(data, name=name, seed=file_seed))
        added: list[str] = []
        try:
            attachments = []
            for item in prepared:
                key = self._key(workspace_id, conversation_id, "f", item.file)
                if await self.store.stat(key) is None:
                    added.append(item.file)
                attachments.append(await self._put(workspace_id, conversation_id, item))
            yield Upload(attachments, added)
        except BaseException:
            await self.forget_files(workspace_id, conversation_id, added)
            raise

    async def _put(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID, item: _Prepared
    ) -> Attachment:
        key = self._key(workspace_id, conversation_id, "f", item.file)
        await self.store.put(key, item.data, item.attachment.mime_type or "")
        if item.thumb is not None:
            thumb_key = self._key(workspace_id, conversation_id, "t", item.file)
            await self.store.put(thumb_key, item.thumb, "image/webp")
        return item.attachment.model_copy(update={"url": agent_url(conversation_id, item.file)})

    async def find(
        self,
        workspace_id: uuid.UUID,
        conversation_id: uuid.UUID,
        file: str,
        *,
        thumb: bool = False,
    ) -> Found:
        """A file of the conversation, to serve; `NoSuchFile` when there is none."""
        key = self._key(workspace_id, conversation_id, "t" if thumb else "f", file)
        stored = await self.store.stat(key)
        if stored is None:
            raise NoSuchFile()
        try:
            kind = kinds.from_content_type(stored.content_type)
        except kinds.UnsupportedMediaType:
            raise NoSuchFile() from None  # not one the hub serves, whoever put it there
        return Found(stored, kind)

    async def read(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID, file: str
    ) -> tuple[bytes, str]:
        """A file's bytes and content type (to send it on to a platform)."""
        opened = await self.store.open(self._key(workspace_id, conversation_id, "f", file))
        if opened is None:
            raise NoSuchFile()
        data = b"".join([chunk async for chunk in opened.chunks])  # one request, not two
        return data, opened.stored.content_type

    async def forget(self, workspace_id: uuid.UUID, conversation_ids: Iterable[uuid.UUID]) -> int:
        """Delete every file of these conversations; how many objects there were."""
        deleted = 0
        for conversation_id in conversation_ids:
            deleted += await self.store.delete_prefix(
                conversation_prefix(workspace_id, conversation_id)
            )
        return deleted

    async def forget_files(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID, files: Iterable[str]
    ) -> int:
        """Delete these files of a conversation (and their thumbnails); how many objects
        there were."""
        deleted = 0
        for file in files:
            if FILE_PATTERN.fullmatch(file):
                for part in ("f", "t"):
                    key = self._key(workspace_id, conversation_id, part, file)
                    deleted += await self.store.delete(key)
        return deleted


def files_of(attachments: Iterable[Attachment | dict[str, object]]) -> list[str]:
    """The stored files among a message's attachments (as a model or as stored JSON)."""
    found = []
    for attachment in attachments:
        file = attachment.get("file") if isinstance(attachment, dict) else attachment.file
        if isinstance(file, str):
            found.append(file)
    return found


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A file made ready to keep: its bytes (an image cleaned), its thumbnail, and the
    attachment that will show it (its URL is given when it is put)."""

    file: str
    data: bytes
    thumb: bytes | None
    attachment: Attachment


async def _prepare(
    data: bytes,
    *,
    name: str | None = None,
    caption: str | None = None,
    type: AttachmentType | None = None,
    seed: uuid.UUID | None = None,
) -> _Prepared:
    kind = kinds.sniff(data)
    width = height = None
    thumb: bytes | None = None
    content_type = kind.content_type
    if kind.family == "image":
        clean, small = await asyncio.to_thread(_prepare_image, data)
        data, content_type = clean.data, clean.content_type
        width, height, thumb = clean.width, clean.height, small.data
    file = file_id(content_type, seed)
    if type is None or type not in _KEEPS_TYPE:
        type = _TYPES[kind.family]
    attachment = Attachment(
        type=type,
        mime_type=content_type,
        name=clean_name(name),
        size=len(data),
        caption=caption,
        file=file,
        state=MediaState.READY,
        width=width,
        height=height,
        thumbnail=True if thumb is not None else None,
    )
    return _Prepared(file, data, thumb, attachment)


def _prepare_image(data: bytes) -> tuple[images.CleanImage, images.CleanImage]:
    clean = images.clean_image(data)
    return clean, images.thumbnail(clean.data)
