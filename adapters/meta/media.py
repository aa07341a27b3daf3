"""Where an inbound Meta attachment's file is (`Adapter.locate_media`).

- WhatsApp gives only a media id: `GET {graph}/{media-id}` with the channel's token answers
  `{url, mime_type, sha256, file_size, id}`; that URL (valid a few minutes) is downloaded
  with the same bearer header. A media id the token cannot see (another number's, or one
  deleted) is answered with a Graph error: the file is gone for this channel.
- Instagram and Messenger put a CDN link in the webhook (`payload.url`): it is downloaded as
  it is, without a token (the CDN needs none and must not get one). It expires; the
  download's own 403 or 404 then says the file is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from adapters.base import nonempty_text
from adapters.media import MediaGone, MediaSource, NoMedia, raise_if_passing
from adapters.meta import whatsapp
from adapters.outbound import TIMEOUT_S, Platforms
from schemas.message import Attachment, ChannelKind

_GRAPH_TOKEN_CODES = {190}  # the token expired or was revoked: a reconnect, not a retry


async def locate(
    client: httpx.AsyncClient,
    kind: ChannelKind,
    attachment: Attachment,
    secrets: Mapping[str, str],
    platforms: Platforms,
) -> MediaSource:
    if kind != ChannelKind.WHATSAPP:
        if not attachment.url or not attachment.url.startswith(("https://", "http://")):
            raise NoMedia()
        return MediaSource(attachment.url, size=attachment.size)
    media_id, token = attachment.media_id, secrets.get("access_token")
    if not media_id or not media_id.replace("_", "").isalnum():
        raise NoMedia()
    if not token:
        raise MediaGone("the channel has no access token")
    auth = {"Authorization": f"Bearer {token}"}
    response = await client.get(f"{platforms.graph}/{media_id}", headers=auth, timeout=TIMEOUT_S)
    raise_if_passing(response)
    return whatsapp_source(response.status_code, _json(response), auth)


def whatsapp_source(status: int, body: Any, auth: dict[str, str]) -> MediaSource:
    """What the media-URL lookup answered: where to download, or why not (any error the
    platform gives for good is the file gone)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not 200 <= status < 300 or error is not None or not isinstance(body, dict):
        error = error if isinstance(error, dict) else {}
        if error.get("code") in _GRAPH_TOKEN_CODES:
            raise MediaGone("the channel's access token was refused")
        raise MediaGone("WhatsApp no longer has the file for this channel")
    url = nonempty_text(body.get("url"))
    if url is None or not url.startswith(("https://", "http://")):
        raise MediaGone("WhatsApp gave no link to the file")
    return MediaSource(url, headers=auth, size=whatsapp.byte_count(body.get("file_size")))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
