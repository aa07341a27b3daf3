"""The media store on the filesystem: the embedded default (under the data directory) and a
deployment with one node or one shared volume.

An object's bytes live at `<root>/data/<key>` and its content type in a JSON sidecar at
`<root>/meta/<key>.json`; the two trees keep every key name free (no suffix is reserved). Each
file is written to a temporary name beside it and renamed into place, so a reader sees the old
object or the new one, never a part. Blocking file work runs in a thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from hub.media.store import (
    CHUNK_BYTES,
    DEFAULT_CONTENT_TYPE,
    BadMediaKey,
    Opened,
    Stored,
    check_key,
    check_prefix,
    check_put,
    check_range,
)

_TEMP_PREFIX = ".tmp-"


class FileMediaStore:
    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root.resolve()
        self.max_bytes = max_bytes
        self._data = self.root / "data"
        self._meta = self.root / "meta"

    async def put(self, key: str, data: bytes, content_type: str) -> Stored:
        content_type = check_put(key, data, content_type, self.max_bytes)
        meta = json.dumps({"content_type": content_type}).encode()
        try:
            await asyncio.to_thread(self._write, self._data_path(key), data)
            await asyncio.to_thread(self._write, self._meta_path(key), meta)
        except (NotADirectoryError, IsADirectoryError, FileExistsError):
            raise BadMediaKey("The media key clashes with another object's path.") from None
        return Stored(key, len(data), content_type)

    async def read(self, key: str) -> bytes | None:
        path = self._data_path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    async def open(self, key: str, start: int = 0, end: int | None = None) -> Opened | None:
        check_range(start, end)
        path = self._data_path(key)
        try:
            # Opened now, so an object deleted after this call is still read whole.
            file = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        size = os.fstat(file.fileno()).st_size
        stored = Stored(key, size, await asyncio.to_thread(self._content_type, key))
        stop = size if end is None else min(end + 1, size)
        return Opened(stored, _chunks(file, start, max(stop - start, 0)))

    async def stat(self, key: str) -> Stored | None:
        return await asyncio.to_thread(self._stat, key)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, key)

    async def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        return await asyncio.to_thread(self._delete_tree, prefix.rstrip("/"))

    async def check(self) -> None:
        await asyncio.to_thread(self._data.mkdir, parents=True, exist_ok=True)
        if not os.access(self._data, os.W_OK):
            raise PermissionError(f"The media directory {self._data} is not writable.")

    async def close(self) -> None:
        return None

    def _data_path(self, key: str) -> Path:
        return self._data / check_key(key)

    def _meta_path(self, key: str) -> Path:
        return self._meta / (check_key(key) + ".json")

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _content_type(self, key: str) -> str:
        try:
            meta = json.loads(self._meta_path(key).read_bytes())
        except (OSError, ValueError):
            return DEFAULT_CONTENT_TYPE  # written before its sidecar, or the sidecar is lost
        value = meta.get("content_type") if isinstance(meta, dict) else None
        return value if isinstance(value, str) else DEFAULT_CONTENT_TYPE

    def _stat(self, key: str) -> Stored | None:
        path = self._data_path(key)
        try:
            result = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return Stored(key, result.st_size, self._content_type(key))

    def _delete(self, key: str) -> bool:
        path = self._data_path(key)
        if not path.is_file():
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        self._meta_path(key).unlink(missing_ok=True)
        return True

    def _delete_tree(self, key: str) -> int:
        count = 0
        data = self._data / check_key(key)
        if data.is_dir():
            count = sum(
                1
                for _, _, names in os.walk(data)
                for name in names
                if not name.startswith(_TEMP_PREFIX)
            )
            shutil.rmtree(data, ignore_errors=True)
        meta = self._meta / key
        if meta.is_dir():
            shutil.rmtree(meta, ignore_errors=True)
        return count


async def _chunks(file: IO[bytes], start: int, length: int) -> AsyncIterator[bytes]:
    """`length` bytes from `start`, read a chunk at a time (never the whole file at once)."""
    try:
        if start:
            await asyncio.to_thread(file.seek, start)
        while length > 0:
            chunk = await asyncio.to_thread(file.read, min(CHUNK_BYTES, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        file.close()
