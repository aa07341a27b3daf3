"""Where an inbound Telegram file is (`Adapter.locate_media`): `getFile` with the file_id
answers a File with `file_path`, and the bytes are at `{api}/file/bot<token>/<file_path>`
(valid at least an hour). Bots may download files of up to 20 MB; a larger one is answered
"Bad Request: file is too big" and cannot be had through the Bot API at all.

The file URL holds the bot token: it is never logged nor shown (`adapters.outbound.redact`
masks it in httpx's own log line), and an over-limit file is not offered as a link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from adapters.base import as_dict, nonempty_text
from adapters.media import MediaGone, MediaSource, NoMedia, raise_if_passing
from adapters.outbound import TIMEOUT_S, Platforms
from schemas.message import Attachment

MAX_BOT_DOWNLOAD_BYTES = 20 * 1024 * 1024
TOO_BIG = "larger than the 20 MB Telegram lets a bot download"


async def locate(
    client: httpx.AsyncClient,
    attachment: Attachment,
    secrets: Mapping[str, str],
    platforms: Platforms,
) -> MediaSource:
    file_id, token = attachment.media_id, secrets.get("bot_token")
    if not file_id:
        raise NoMedia()
    if not token:
        raise MediaGone("the channel has no bot token")
    if attachment.size is not None and attachment.size > MAX_BOT_DOWNLOAD_BYTES:
        raise MediaGone(TOO_BIG)
    response = await client.post(
        f"{platforms.telegram}/bot{token}/getFile", json={"file_id": file_id}, timeout=TIMEOUT_S
    )
    raise_if_passing(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    path = file_path(response.status_code, body)
    return MediaSource(
        f"{platforms.telegram}/file/bot{token}/{path}",
        name=attachment.name,
        size=_size(as_dict(as_dict(body).get("result")).get("file_size")) or attachment.size,
    )


def file_path(status: int, body: Any) -> str:
    """The File's `file_path`, or why the file cannot be had (`MediaGone`)."""
    body = as_dict(body)
    if not 200 <= status < 300 or body.get("ok") is not True:
        description = (nonempty_text(body.get("description")) or "").lower()
        if "too big" in description:
            raise MediaGone(TOO_BIG)
        raise MediaGone("Telegram no longer has the file")
    path = nonempty_text(as_dict(body.get("result")).get("file_path"))
    if path is None or path.startswith("/") or ".." in path.split("/"):
        raise MediaGone("Telegram gave no path to the file")
    return path


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
