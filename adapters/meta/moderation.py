"""Moderating a public comment on Instagram or a Facebook Page: hide it, show it again, delete
it (docs/platforms.md §2c, §3b). Pure: `build` makes the request, `interpret` reads the
answer; the hub performs it (`hub.comments.service`).

- Instagram (comment moderation): `POST {instagram}/{comment_id}?hide=true|false`,
  `DELETE {instagram}/{comment_id}`; the answer is `{"success": true}`. An Instagram account
  connected through its Facebook Page (its secrets name the Page) holds a Page token, which
  only the Graph API takes: the same calls go to `{graph}`, as its sends do (`send._sender`).
- Facebook Page: `POST {graph}/{comment_id}` with `{"is_hidden": true|false}`,
  `DELETE {graph}/{comment_id}`; the answer is `{"success": true}`.

Both with the channel's token as a bearer header. Errors are Graph errors, read by the same
ladder as a send's (`adapters.meta.send`): a throttle is retried, an expired token asks for
a reconnect, anything else fails with the platform's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from adapters.meta import send
from adapters.outbound import Outcome, Outgoing, Platforms, Request, Unsendable, secret
from schemas.message import ChannelKind

Action = Literal["hide", "unhide", "delete"]
ACTIONS: tuple[Action, ...] = ("hide", "unhide", "delete")
MODERATED = (ChannelKind.INSTAGRAM, ChannelKind.MESSENGER)


def build(
    kind: ChannelKind | str,
    comment_id: str,
    action: Action,
    secrets: Mapping[str, str],
    platforms: Platforms,
) -> Request:
    """Raises `Unsendable` for a channel without comments, `MissingSecret` without a token."""
    if kind not in MODERATED:
        raise Unsendable(f"{kind} has no comments to moderate")
    out = Outgoing(ChannelKind(kind), "", "", "", secrets=secrets)
    headers = {"Authorization": f"Bearer {secret(out, 'access_token')}"}
    instagram = kind == ChannelKind.INSTAGRAM
    base, _ = send._sender(out, platforms)
    url = f"{base}/{send._seg(comment_id)}"
    if action == "delete":
        return Request("DELETE", url, headers=headers)
    hidden = action == "hide"
    if instagram:
        return Request("POST", f"{url}?hide={'true' if hidden else 'false'}", headers=headers)
    return Request("POST", url, {"is_hidden": hidden}, headers=headers)


def interpret(status: int, body: Any, headers: Mapping[str, str], comment_id: str) -> Outcome:
    """`sent` (with the comment's id) when the platform did it."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return send._error(status, error, headers)
    if 200 <= status < 300:
        if isinstance(body, dict) and body.get("success") in (True, "true"):
            return Outcome.sent(comment_id)
        return Outcome.failed("The platform did not confirm the change", "bad_response")
    return send.interpret(status, body, headers)
