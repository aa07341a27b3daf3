"""The media store's contract, one suite run on both stores: the filesystem under a temporary
directory, and S3 against a real S3-API server (moto's) started on loopback for this module."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hub.errors import BadRequest
from hub.media import BadMediaKey, MediaStore, MediaTooLarge, make_media_store
from hub.media.files import FileMediaStore
from hub.media.s3 import S3MediaStore
from hub.media.store import CHUNK_BYTES, media_key, workspace_prefix
from hub.settings import Settings
from tests.conftest import make_settings
from tests.servers import new_bucket, s3_environ

MAX_BYTES = 8 * 1024 * 1024


def s3_store(tmp_path: Path, endpoint: str, *, prefix: str = "hub") -> MediaStore:
    environ = {
        "HUB_SECRET_KEY": "test-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "HUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_MAX_MEDIA_BYTES": str(MAX_BYTES),
        **s3_environ(endpoint, new_bucket(endpoint), prefix),
    }
    return make_media_store(Settings.from_env(environ))


@pytest.fixture(params=["files", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MediaStore]:
    if request.param == "files":
        made: MediaStore = make_media_store(make_settings(tmp_path, max_media_bytes=MAX_BYTES))
        assert isinstance(made, FileMediaStore)
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        made = s3_store(tmp_path, endpoint)
        assert isinstance(made, S3MediaStore)
    yield made
    await made.close()


WS = uuid.UUID("11111111-1111-1111-1111-111111111111")


async def test_put_keeps_bytes_content_type_and_size(store: MediaStore) -> None:
    key = media_key(WS, "conv", "photo.jpg")
    stored = await store.put(key, b"\xff\xd8jpeg bytes", "image/jpeg")
    assert (stored.key, stored.size_bytes, stored.content_type) == (key, 12, "image/jpeg")
    assert await store.stat(key) == stored
    assert await store.read(key) == b"\xff\xd8jpeg bytes"


async def test_open_streams_the_object_in_chunks(store: MediaStore) -> None:
    data = os.urandom(200_000)
    await store.put("w/a/video", data, "video/mp4")
    opened = await store.open("w/a/video")
    assert opened is not None
    assert (opened.stored.size_bytes, opened.stored.content_type) == (200_000, "video/mp4")
    chunks = [chunk async for chunk in opened.chunks]
    assert b"".join(chunks) == data


async def read_range(store: MediaStore, key: str, start: int, end: int | None) -> bytes:
    opened = await store.open(key, start, end)
    assert opened is not None
    return b"".join([bytes(chunk) async for chunk in opened.chunks])


async def test_open_reads_only_the_asked_range(store: MediaStore) -> None:
    data = os.urandom(3 * CHUNK_BYTES + 1000)  # several chunks, the last one short
    size = len(data)
    await store.put("w/a/video", data, "video/mp4")
    ranged = await store.open("w/a/video", 10, 19)
    assert ranged is not None
    # What is opened describes the whole object, whatever part of it is read.
    assert (ranged.stored.size_bytes, ranged.stored.content_type) == (size, "video/mp4")
    assert b"".join([chunk async for chunk in ranged.chunks]) == data[10:20]

    assert await read_range(store, "w/a/video", 0, None) == data  # `bytes=0-`
    assert await read_range(store, "w/a/video", 5000, None) == data[5000:]  # start only
    assert await read_range(store, "w/a/video", size - 1, None) == data[-1:]  # the last byte
    assert await read_range(store, "w/a/video", size - 1, size - 1) == data[-1:]
    assert await read_range(store, "w/a/video", 0, 0) == data[:1]
    # Within one chunk, across a chunk boundary, and over several chunks.
    assert await read_range(store, "w/a/video", 100, 200) == data[100:201]
    edge = CHUNK_BYTES
    assert await read_range(store, "w/a/video", edge - 3, edge + 2) == data[edge - 3 : edge + 3]
    assert await read_range(store, "w/a/video", 7, 2 * edge + 500) == data[7 : 2 * edge + 501]
    # A range running past the end stops there; one starting past it is no bytes.
    assert await read_range(store, "w/a/video", size - 10, size + 5000) == data[-10:]
    assert await read_range(store, "w/a/video", size, None) == b""
    assert await read_range(store, "w/a/video", size + 7, size + 9) == b""


async def test_a_range_of_a_missing_or_empty_object(store: MediaStore) -> None:
    assert await store.open("w/a/nothing", 5, 10) is None
    await store.put("w/a/empty", b"", "text/plain")
    assert await read_range(store, "w/a/empty", 0, 10) == b""
    assert await read_range(store, "w/a/empty", 0, None) == b""
    with pytest.raises(ValueError):
        await store.open("w/a/empty", 5, 4)
    with pytest.raises(ValueError):
        await store.open("w/a/empty", -1, None)


async def test_overwrite_replaces_bytes_and_content_type(store: MediaStore) -> None:
    await store.put("w/a/x", b"first version", "text/plain")
    stored = await store.put("w/a/x", b"second", "application/pdf")
    assert await store.stat("w/a/x") == stored
    assert stored.size_bytes == 6
    assert await store.read("w/a/x") == b"second"


async def test_a_missing_key_is_none(store: MediaStore) -> None:
    assert await store.read("w/a/nothing") is None
    assert await store.open("w/a/nothing") is None
    assert await store.stat("w/a/nothing") is None
    assert await store.delete("w/a/nothing") is False


async def test_an_empty_object_is_an_object(store: MediaStore) -> None:
    await store.put("w/a/empty", b"", "text/plain")
    assert await store.read("w/a/empty") == b""
    stat = await store.stat("w/a/empty")
    assert stat is not None and stat.size_bytes == 0


async def test_delete(store: MediaStore) -> None:
    await store.put("w/a/gone", b"data", "image/png")
    assert await store.delete("w/a/gone") is True
    assert await store.stat("w/a/gone") is None
    assert await store.read("w/a/gone") is None
    assert await store.delete("w/a/gone") is False


async def test_delete_prefix_erases_only_what_is_under_it(store: MediaStore) -> None:
    one, other = uuid.uuid4(), uuid.uuid4()
    mine = [media_key(one, "c1", "a"), media_key(one, "c1", "b"), media_key(one, "c2", "x", "y")]
    for key in mine:
        await store.put(key, b"mine", "image/png")
    # A key that merely starts with the same characters is not under the prefix.
    lookalike = f"w/{one}x/c1/a"
    kept = [media_key(other, "c1", "a"), lookalike]
    for key in kept:
        await store.put(key, b"theirs", "image/png")

    assert await store.delete_prefix(f"w/{one}/c1/") == 2
    assert await store.stat(mine[0]) is None
    assert await store.stat(mine[2]) is not None
    assert await store.delete_prefix(workspace_prefix(one)) == 1
    assert await store.delete_prefix(workspace_prefix(one)) == 0
    for key in kept:
        assert await store.read(key) == b"theirs"


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "w/../../escape",
    "w/./a",
    "w//a",
    "w/a/",
    "w\\a",
    "w/a\x00b",
    "w/a\nb",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused(store: MediaStore, key: str, tmp_path: Path) -> None:
    before = sorted(tmp_path.parent.rglob("*"))
    with pytest.raises(BadMediaKey):
        await store.put(key, b"data", "text/plain")
    for call in (store.read, store.open, store.stat, store.delete):
        with pytest.raises(BadMediaKey):
            await call(key)
    assert sorted(tmp_path.parent.rglob("*")) == before


@pytest.mark.parametrize("prefix", ["", "/", "w/a", "../", "w//", "/w/a/"])
async def test_bad_prefixes_are_refused(store: MediaStore, prefix: str) -> None:
    await store.put("w/a/kept", b"data", "text/plain")
    with pytest.raises(BadMediaKey):
        await store.delete_prefix(prefix)
    assert await store.read("w/a/kept") == b"data"


@pytest.mark.parametrize("content_type", ["", "jpeg", "image/", "text/plain\r\nX-Evil: 1"])
async def test_bad_content_types_are_refused(store: MediaStore, content_type: str) -> None:
    with pytest.raises(BadRequest):
        await store.put("w/a/x", b"data", content_type)
    assert await store.stat("w/a/x") is None


async def test_an_object_over_the_limit_is_refused(store: MediaStore) -> None:
    with pytest.raises(MediaTooLarge):
        await store.put("w/a/big", b"\0" * (MAX_BYTES + 1), "video/mp4")
    assert await store.stat("w/a/big") is None


async def test_a_large_object_round_trips(store: MediaStore) -> None:
    data = os.urandom(6 * 1024 * 1024)  # past S3's multipart threshold (5 MiB)
    stored = await store.put("w/a/large", data, "video/mp4")
    assert stored.size_bytes == len(data)
    assert await store.stat("w/a/large") == stored
    assert await store.read("w/a/large") == data
    opened = await store.open("w/a/large")
    assert opened is not None
    assert b"".join([chunk async for chunk in opened.chunks]) == data


async def test_concurrent_puts_of_different_keys(store: MediaStore) -> None:
    items = {f"w/a/many/{n}": os.urandom(1000 + n) for n in range(20)}
    await asyncio.gather(*(store.put(k, v, "image/png") for k, v in items.items()))
    reads = await asyncio.gather(*(store.read(k) for k in items))
    assert reads == list(items.values())
    assert await store.delete_prefix("w/a/many/") == 20


async def test_the_store_answers_its_health_check(store: MediaStore) -> None:
    await store.check()


async def test_a_missing_bucket_fails_the_health_check(tmp_path: Path, s3_endpoint: str) -> None:
    store = S3MediaStore(
        "no-such-bucket",
        endpoint_url=s3_endpoint,
        access_key_id="test-" + uuid.uuid4().hex[:12],
        secret_access_key="test-" + uuid.uuid4().hex,
        max_bytes=MAX_BYTES,
    )
    with pytest.raises(Exception, match="no-such-bucket"):
        await store.check()


async def test_the_default_is_the_filesystem_under_the_data_directory(tmp_path: Path) -> None:
    store = make_media_store(make_settings(tmp_path))
    assert isinstance(store, FileMediaStore)
    await store.put("w/a/b", b"data", "text/plain")
    assert (tmp_path / "media" / "data" / "w" / "a" / "b").read_bytes() == b"data"
    assert not [p for p in (tmp_path / "media").rglob(".tmp-*")]  # no temporary file is left


async def test_s3_objects_sit_under_the_url_prefix(tmp_path: Path, s3_endpoint: str) -> None:
    store = s3_store(tmp_path, s3_endpoint, prefix="prod/media")
    assert isinstance(store, S3MediaStore)
    await store.put("w/a/b", b"data", "text/plain")
    whole = S3MediaStore(
        store.bucket,
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key_id="test-" + uuid.uuid4().hex[:12],
        secret_access_key="test-" + uuid.uuid4().hex,
        max_bytes=MAX_BYTES,
    )
    assert await whole.read("prod/media/w/a/b") == b"data"
    assert await whole.stat("w/a/b") is None
