"""What brought a contact to the business, as Meta sends it: a Messenger or Instagram
`referral` (an ad, an m.me / ig.me link; on a message, a postback or on its own as a
`messaging_referrals` event) and WhatsApp's click-to-WhatsApp `referral` on a message.
Read into `schemas.message.Referral` so the agent sees the ad, not only the raw JSON."""

from __future__ import annotations

from typing import Any

from adapters.base import as_dict, as_id, nonempty_text
from schemas.message import Referral


def messenger(value: Any) -> Referral | None:
    """`{ref, ad_id, source, type, ads_context_data: {ad_title, photo_url, video_url, post_id}}`."""
    value = as_dict(value)
    if not value:
        return None
    context = as_dict(value.get("ads_context_data"))
    return Referral(
        source=nonempty_text(value.get("source")),
        ad_id=as_id(value.get("ad_id")),
        source_id=as_id(context.get("post_id")),
        source_url=nonempty_text(value.get("referer_uri")),
        headline=nonempty_text(context.get("ad_title")),
        media_url=nonempty_text(context.get("photo_url"))
        or nonempty_text(context.get("video_url")),
        ref=nonempty_text(value.get("ref")),
    )


def whatsapp(value: Any) -> Referral | None:
    """`{source_url, source_id, source_type (ad | post), headline, body, media_type,
    image_url | video_url, thumbnail_url, ctwa_clid}`."""
    value = as_dict(value)
    if not value:
        return None
    source_type = nonempty_text(value.get("source_type"))
    source_id = as_id(value.get("source_id"))
    return Referral(
        source=source_type,
        ad_id=source_id if source_type == "ad" else None,
        source_id=source_id,
        source_url=nonempty_text(value.get("source_url")),
        headline=nonempty_text(value.get("headline")),
        body=nonempty_text(value.get("body")),
        media_url=nonempty_text(value.get("image_url")) or nonempty_text(value.get("video_url")),
        click_id=nonempty_text(value.get("ctwa_clid")),
    )
