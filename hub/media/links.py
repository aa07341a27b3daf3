"""Short-lived signed links to a conversation's file, for a platform that fetches what the hub
sends instead of taking its bytes (Instagram's Send API takes attachments by URL only); served
by `hub.media.signed` at `GET /media/s/{token}`.

The token is an itsdangerous signature (the hub's secret key, a salt of its own) over the
workspace, conversation and file it names, valid for ten minutes. It carries ids only, which
the signature keeps from being changed; but whoever holds it can fetch that file for those ten
minutes, so it is a credential: the access log keeps only `/media/s/…`. Within its ten
minutes a link can be fetched again (a platform may fetch a file more than once, or resume
it), and it serves only the one file it names. A link whose signature does not match is 404
`media_link_invalid`, exactly like one that never existed; a link past its ten minutes is 410
`media_link_expired`; a file erased since is 404 `no_such_file`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from hub.errors import HubError, NotFound
from hub.media.library import FILE_PATTERN

MAX_AGE_S = 600
PATH = "/media/s/"
_SALT = "hub.media-link"


class MediaLinkInvalid(NotFound):
    code = "media_link_invalid"
    default_message = "No such file."


class MediaLinkExpired(HubError):
    status = 410
    code = "media_link_expired"
    default_message = "The link has expired."


@dataclass(frozen=True, slots=True)
class Target:
    workspace_id: uuid.UUID
    conversation_id: uuid.UUID
    file: str


class MediaLinks:
    """Makes and reads the links. `clock` is when a link is made (and read): the time now,
    unless a test needs a link made in the past."""

    def __init__(
        self,
        secret_key: str,
        public_url: str | None = None,
        *,
        max_age_s: int = MAX_AGE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializer = URLSafeTimedSerializer(secret_key, salt=_SALT, signer=_Signer)
        self.public_url = public_url
        self.max_age_s = max_age_s

    def token(self, workspace_id: uuid.UUID, conversation_id: uuid.UUID, file: str) -> str:
        return str(
            self._serializer.dumps({"w": str(workspace_id), "c": str(conversation_id), "f": file})
        )

    def url(self, workspace_id: uuid.UUID, conversation_id: uuid.UUID, file: str) -> str | None:
        """The absolute link, or None when the hub has no public URL to build it on."""
        if not self.public_url:
            return None
        return f"{self.public_url}{PATH}{self.token(workspace_id, conversation_id, file)}"

    def read(self, token: str) -> Target:
        try:
            data = self._serializer.loads(token, max_age=self.max_age_s)
        except SignatureExpired:
            raise MediaLinkExpired() from None
        except (BadSignature, ValueError, UnicodeError):
            raise MediaLinkInvalid() from None
        try:
            target = Target(uuid.UUID(data["w"]), uuid.UUID(data["c"]), str(data["f"]))
        except (TypeError, KeyError, ValueError, AttributeError):
            raise MediaLinkInvalid() from None
        if not FILE_PATTERN.fullmatch(target.file):
            raise MediaLinkInvalid()
        return target
