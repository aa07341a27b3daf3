"""The media store on S3-compatible object storage, for several nodes: AWS S3 or any server that
speaks its API (MinIO, Ceph, Garage, R2, ...), through obstore.

obstore is natively async (its own Rust HTTP client, no aiohttp and no thread per call), keeps
its connections pooled, retries what S3 asks to be retried, and streams large objects both
ways. The content type is the object's own `Content-Type`, so the bucket alone says what each
object is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from hub.media.store import (
    CHUNK_BYTES,
    DEFAULT_CONTENT_TYPE,
    Opened,
    Stored,
    check_key,
    check_prefix,
    check_put,
    check_range,
)

if TYPE_CHECKING:
    from obstore import Attributes, GetOptions
    from obstore.store import S3Config

_HEALTH_PREFIX = ".health/"  # never written to
_DELETE_BATCH = 1000  # S3's DeleteObjects takes at most this many keys a request


class S3MediaStore:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        max_bytes: int,
    ) -> None:
        config: S3Config = {}
        if endpoint_url is not None:
            # S3-compatible servers answer on one host with the bucket in the path.
            config["endpoint"] = endpoint_url
            config["virtual_hosted_style_request"] = False
        if region is not None:
            config["region"] = region
        if access_key_id is not None and secret_access_key is not None:
            config["access_key_id"] = access_key_id
            config["secret_access_key"] = secret_access_key
        self.bucket = bucket
        self.prefix = prefix
        self.max_bytes = max_bytes
        self._store = S3Store(
            bucket,
            prefix=prefix or None,
            config=config,
            client_options={"allow_http": bool(endpoint_url and endpoint_url.startswith("http:"))},
        )

    async def put(self, key: str, data: bytes, content_type: str) -> Stored:
        content_type = check_put(key, data, content_type, self.max_bytes)
        await obstore.put_async(self._store, key, data, attributes={"Content-Type": content_type})
        return Stored(key, len(data), content_type)

    async def read(self, key: str) -> bytes | None:
        check_key(key)
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            return None

    async def open(self, key: str, start: int = 0, end: int | None = None) -> Opened | None:
        check_key(key)
        check_range(start, end)
        # A ranged GET: S3 sends only those bytes (a range past the end is cut to it), and
        # the answer still carries the whole object's size and type.
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end + 1)
        elif start:
            options["range"] = {"offset": start}
        try:
            result = await obstore.get_async(self._store, key, options=options)
        except FileNotFoundError:
            return None
        except BaseError:
            # S3 refuses (416) a range that starts at or past the end; that is no bytes.
            if not options:
                raise
            stored = await self.stat(key)
            if stored is None:
                return None
            if start < stored.size_bytes:
                raise
            return Opened(stored, _nothing())
        stored = Stored(key, result.meta["size"], _content_type(result.attributes))
        return Opened(stored, result.stream(min_chunk_size=CHUNK_BYTES))

    async def stat(self, key: str) -> Stored | None:
        check_key(key)
        try:
            result = await obstore.get_async(self._store, key, options={"head": True})
        except FileNotFoundError:
            return None
        return Stored(key, result.meta["size"], _content_type(result.attributes))

    async def delete(self, key: str) -> bool:
        # S3 answers a DELETE of a missing key with success, so whether one was there is
        # asked first; a racing delete can make both callers see True, which is harmless.
        if await self.stat(key) is None:
            return False
        await obstore.delete_async(self._store, key)
        return True

    async def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        keys: list[str] = []
        async for batch in obstore.list(self._store, prefix, chunk_size=_DELETE_BATCH):
            keys.extend(meta["path"] for meta in batch)
        for start in range(0, len(keys), _DELETE_BATCH):
            await obstore.delete_async(self._store, keys[start : start + _DELETE_BATCH])
        return len(keys)

    async def check(self) -> None:
        # A listing under a prefix that holds nothing: cheap, and it fails when the bucket is
        # missing or the credentials are refused (a HEAD of a missing key cannot tell).
        async for _ in obstore.list(self._store, _HEALTH_PREFIX, chunk_size=1):
            break

    async def close(self) -> None:
        return None  # obstore's pool closes with the store object


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield


def _content_type(attributes: Attributes) -> str:
    return attributes.get("Content-Type") or DEFAULT_CONTENT_TYPE
