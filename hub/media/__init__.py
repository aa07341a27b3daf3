"""Media: `make_media_store` picks the filesystem store or the S3-compatible one from
HUB_MEDIA_URL (the filesystem under the data directory by default)."""

from __future__ import annotations

from hub.media.store import BadMediaKey, MediaStore, MediaTooLarge, Opened, Stored
from hub.settings import Settings

__all__ = ["BadMediaKey", "MediaStore", "MediaTooLarge", "Opened", "Stored", "make_media_store"]


def make_media_store(settings: Settings) -> MediaStore:
    if settings.media_bucket is None:
        from hub.media.files import FileMediaStore

        root = settings.media_root or settings.data_dir / "media"
        return FileMediaStore(root, max_bytes=settings.max_media_bytes)
    from hub.media.s3 import S3MediaStore

    return S3MediaStore(
        settings.media_bucket,
        prefix=settings.media_prefix,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        max_bytes=settings.max_media_bytes,
    )
