"""The media store's contract: objects under workspace-scoped keys, each kept with its content
type and size, on the filesystem (`hub.media.files`) or S3-compatible storage (`hub.media.s3`).

A key is a relative, `/`-separated path such as `w/<workspace_id>/<conversation_id>/<name>`;
`check_key` refuses anything that could leave its place (`..`, absolute paths, backslashes,
control characters, empty segments). A prefix is a key followed by `/`, so deleting
`w/<id>/` erases one workspace's media and never another's whose id only starts the same.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from hub.errors import BadRequest, TooBig

MAX_KEY_CHARS = 1024
CHUNK_BYTES = 64 * 1024  # what `open` yields at a time (the last chunk may be shorter)
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*(\s*;[ -~]*)?")
_MAX_CONTENT_TYPE_CHARS = 255


class BadMediaKey(BadRequest):
    code = "bad_media_key"
    default_message = "The media key is malformed."


class MediaTooLarge(TooBig):
    code = "media_too_large"
    default_message = "The media is over the size limit."


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store holds under a key."""

    key: str
    size_bytes: int
    content_type: str


@dataclass(frozen=True, slots=True)
class Opened:
    """A stored object being read: what it is, and its bytes in chunks (read them once)."""

    stored: Stored
    chunks: AsyncIterator[bytes]


class MediaStore(Protocol):
    """Both stores keep this contract (tests/test_media_store.py runs one suite on each)."""

    async def put(self, key: str, data: bytes, content_type: str) -> Stored:
        """Store `data` under `key`, replacing what was there; readers see the old object or
        the new one, never a part."""
        ...

    async def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        ...

    async def open(self, key: str, start: int = 0, end: int | None = None) -> Opened | None:
        """The object's bytes `start` to `end` (inclusive; None for up to the last) as chunks,
        for serving, or None when there is none. Only those bytes are read, so a player's
        `Range` never loads a whole video. `Opened.stored` describes the whole object; a
        range running past its end stops there, and one starting past it yields no bytes."""
        ...

    async def stat(self, key: str) -> Stored | None: ...

    async def delete(self, key: str) -> bool:
        """True if there was an object to delete."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (a key followed by `/`); how many there were."""
        ...

    async def check(self) -> None:
        """Raise if the storage cannot be reached (readiness)."""
        ...

    async def close(self) -> None: ...


def media_key(workspace_id: uuid.UUID, *parts: str) -> str:
    """The key of a workspace's object: `w/<workspace_id>/<parts...>`."""
    return check_key("/".join(("w", str(workspace_id), *parts)))


def workspace_prefix(workspace_id: uuid.UUID) -> str:
    """Everything a workspace stores, for `delete_prefix`."""
    return f"w/{workspace_id}/"


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise BadMediaKey("A media key must be a non-empty string.")
    if len(key) > MAX_KEY_CHARS:
        raise BadMediaKey(f"A media key must be at most {MAX_KEY_CHARS} characters.")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise BadMediaKey("A media key must not hold control characters.")
    if "\\" in key:
        raise BadMediaKey("A media key must not hold backslashes.")
    if key.startswith("/"):
        raise BadMediaKey("A media key must be relative, not start with '/'.")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise BadMediaKey("A media key must not have empty, '.' or '..' segments.")
    return key


def check_range(start: int, end: int | None) -> None:
    """A range `open` can read: it starts at 0 or later and ends at or after its start."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"A byte range must have 0 <= start <= end, not {start}-{end}.")


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        raise BadMediaKey("A media prefix must be a key followed by '/'.")
    check_key(prefix[:-1])
    return prefix


def check_put(key: str, data: bytes, content_type: str, max_bytes: int) -> str:
    """Check what `put` was given; the content type to keep."""
    check_key(key)
    if len(data) > max_bytes:
        raise MediaTooLarge(f"The media is {len(data)} bytes; the limit is {max_bytes}.")
    content_type = content_type.strip()
    if len(content_type) > _MAX_CONTENT_TYPE_CHARS or not _CONTENT_TYPE.fullmatch(content_type):
        raise BadRequest("The media's content type must be a type/subtype, such as image/jpeg.")
    return content_type
