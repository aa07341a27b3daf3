"""Web Push (RFC 8030): the hub's VAPID key pair (RFC 8292), agents' subscriptions, and the
sending of one short, encrypted notice (RFC 8291, `aes128gcm`) to each of an agent's browsers.

- **The key pair** is made once, at first use, and kept in `push_keys` (one row for the whole
  hub, so every node signs with it): the public key in the clear (browsers subscribe with it,
  `GET /api/push/key`), the private key sealed (`hub.storage.vault`, rotated by
  `hub rotate-keys` like every sealed column). Two nodes making it at once: the second's
  insert fails and it reads the first's.
- **Subscriptions** are what a browser's `PushSubscription.toJSON()` holds: the push
  service's endpoint and the keys that encrypt for that browser. The endpoint is a URL the
  user gave, so it is checked as outbound webhooks are (and its keys are checked to be a
  P-256 point and a 16-byte secret, 400 `invalid_push_keys`): https only, and sent through
  `hub.web.pinning` so it never reaches a private address. With `push_allow_loopback` (the
  demo, or HUB_PUSH_ALLOW_LOOPBACK for tests) a loopback endpoint over plain http is allowed
  too, and still no other private address.
- **Sending**: the payload is JSON of a kind, a conversation id and a short preview
  (`PREVIEW_CHARS`), encrypted by pywebpush for the browser's keys; the request carries the
  VAPID JWT (ES256, `aud` the endpoint's origin, 12 hours). A 404 or 410 from the push
  service means the subscription is gone: its row is deleted. Nothing is retried: a notice
  that comes late is worth less than none. A kept row whose keys do not encrypt is logged
  (its id only) and deleted: one bad subscription never fails the batch for the others.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]
from pywebpush import WebPusher  # type: ignore[import-untyped]
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from hub.errors import BadRequest
from hub.storage.models import PushKey, PushSubscription
from hub.storage.store import Sessions
from hub.storage.vault import Vault
from hub.web.addresses import literal_ip, public_ip
from hub.web.pinning import Refused, Resolver, lookup, pinned_client
from schemas.rest.notify import SubscriptionBody

log = logging.getLogger("hub.notify")

PREVIEW_CHARS = 80
MAX_PER_USER = 10  # browsers per agent; the oldest goes when an eleventh subscribes
TTL_S = 3600  # how long a push service keeps a notice for a browser that is offline
JWT_S = 12 * 3600
LOOPBACK_NAMES = ("localhost",)


class InvalidPushEndpoint(BadRequest):
    code = "invalid_push_endpoint"
    default_message = "The push endpoint must be an https URL on a public address."


class InvalidPushKeys(BadRequest):
    code = "invalid_push_keys"
    default_message = (
        "The subscription's p256dh must be an uncompressed P-256 point and its auth 16 bytes."
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    literal = literal_ip(host)
    return literal is not None and literal.is_loopback


def check_endpoint(url: str, allow_loopback: bool) -> str:
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or parts.username:
        raise InvalidPushEndpoint()
    try:
        httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise InvalidPushEndpoint() from exc
    loopback_ok = allow_loopback and _loopback(host)
    if parts.scheme == "http" and not loopback_ok:
        raise InvalidPushEndpoint("The push endpoint must be https.")
    literal = literal_ip(host)
    if literal is not None and not public_ip(literal) and not loopback_ok:
        raise InvalidPushEndpoint("The push endpoint's address is private.")
    return url.strip()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except ValueError as exc:
        raise InvalidPushKeys() from exc


def check_keys(p256dh: str, auth: str) -> None:
    """Refused at subscription, so that no row is kept that encryption would fail on later
    (RFC 8291: a 65-byte uncompressed P-256 point and a 16-byte secret)."""
    point, secret = _unb64(p256dh), _unb64(auth)
    if len(point) != 65 or point[0] != 4 or len(secret) != 16:
        raise InvalidPushKeys()
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise InvalidPushKeys() from exc


def loopback_resolver(resolve: Resolver = lookup) -> Resolver:
    """A name's addresses, all public or all loopback: any other private one refuses it."""

    async def resolved(host: str, port: int) -> list[str]:
        found = await resolve(host, port)
        for address in found:
            if not public_ip(address) and not ipaddress.ip_address(address).is_loopback:
                raise Refused(f"refused: {host} leads to a private address ({address})")
        return found

    return resolved


class PushKeys:
    """The hub's VAPID key pair, read (or made) once per process."""

    def __init__(self, sessions: Sessions, vault: Vault) -> None:
        self.sessions, self.vault = sessions, vault
        self._pair: tuple[str, Vapid02] | None = None

    async def pair(self) -> tuple[str, Vapid02]:
        if self._pair is None:
            row = await self._read()
            if row is None:
                await self._make()
                row = await self._read()
            assert row is not None
            pem = self.vault.open(row.private_key)["pem"]
            self._pair = (row.public_key, Vapid02.from_pem(pem.encode()))
        return self._pair

    async def public_key(self) -> str:
        return (await self.pair())[0]

    async def _read(self) -> PushKey | None:
        async with self.sessions() as s:
            return await s.get(PushKey, 1)

    async def _make(self) -> None:
        private = ec.generate_private_key(ec.SECP256R1())
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        row = PushKey(id=1, public_key=b64(public), private_key=self.vault.seal({"pem": pem}))
        try:
            async with self.sessions() as s, s.begin():
                s.add(row)
        except sa.exc.IntegrityError:
            pass  # another node made it first: theirs is read next


SUBSCRIPTIONS = PushSubscription.__table__  # type: ignore[attr-defined]


class Subscriptions:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def add(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID, body: SubscriptionBody, endpoint: str
    ) -> PushSubscription:
        """Kept per endpoint: a browser that subscribes again (or for another agent, after a
        sign-in as someone else) replaces its row."""
        async with self.sessions() as s, s.begin():
            await s.exec(
                sa.delete(PushSubscription).where(
                    col(PushSubscription.workspace_id) == workspace_id,
                    col(PushSubscription.endpoint) == endpoint,
                )
            )
            mine = list(
                (
                    await s.exec(
                        select(PushSubscription)
                        .where(
                            PushSubscription.workspace_id == workspace_id,
                            PushSubscription.user_id == user_id,
                        )
                        .order_by(col(PushSubscription.created_at))
                    )
                ).all()
            )
            for old in mine[: max(0, len(mine) - MAX_PER_USER + 1)]:
                await s.delete(old)
            row = PushSubscription(
                workspace_id=workspace_id,
                user_id=user_id,
                endpoint=endpoint,
                p256dh=body.keys.p256dh,
                auth=body.keys.auth,
            )
            # An upsert: the same browser subscribing twice at once replaces, never fails.
            connection = await s.connection()
            postgres = connection.dialect.name == "postgresql"
            insert = (postgresql.insert if postgres else sqlite.insert)(SUBSCRIPTIONS)
            kept = await connection.execute(
                insert.values(row.model_dump())
                .on_conflict_do_update(
                    index_elements=["workspace_id", "endpoint"],
                    set_={k: insert.excluded[k] for k in ("user_id", "p256dh", "auth")},
                )
                .returning(SUBSCRIPTIONS.c.id)
            )
            row.id = kept.scalar_one()
        return row

    async def remove(self, workspace_id: uuid.UUID, user_id: uuid.UUID, endpoint: str) -> bool:
        async with self.sessions() as s, s.begin():
            gone = await s.exec(
                sa.delete(PushSubscription).where(
                    col(PushSubscription.workspace_id) == workspace_id,
                    col(PushSubscription.user_id) == user_id,
                    col(PushSubscription.endpoint) == endpoint,
                )
            )
            return bool(gone.rowcount)

    async def of(
        self, workspace_id: uuid.UUID, user_ids: list[uuid.UUID]
    ) -> list[PushSubscription]:
        async with self.sessions() as s:
            rows = await s.exec(
                select(PushSubscription).where(
                    PushSubscription.workspace_id == workspace_id,
                    col(PushSubscription.user_id).in_(user_ids),
                )
            )
            return list(rows.all())

    async def drop(self, subscription_id: uuid.UUID) -> None:
        async with self.sessions() as s, s.begin():
            await s.exec(
                sa.delete(PushSubscription).where(col(PushSubscription.id) == subscription_id)
            )


def payload(kind: str, conversation_id: uuid.UUID, preview: str | None) -> bytes:
    """What a browser receives: no more of a message than `PREVIEW_CHARS` of its text."""
    text = " ".join((preview or "").split())
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1] + "…"
    body = {"kind": kind, "conversation_id": str(conversation_id), "preview": text}
    return json.dumps(body, ensure_ascii=False).encode()


class Pusher:
    """Sends notices to subscriptions, through a pinned client of its own."""

    def __init__(
        self,
        keys: PushKeys,
        subscriptions: Subscriptions,
        *,
        contact: str,
        allow_loopback: bool,
        timeout_s: float = 10.0,
        resolve: Resolver = lookup,
    ) -> None:
        self.keys, self.subscriptions, self.resolve = keys, subscriptions, resolve
        self.contact, self.allow_loopback, self.timeout_s = contact, allow_loopback, timeout_s
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = pinned_client(
                allow_private=self.allow_loopback, resolve=loopback_resolver(self.resolve)
            )
        return self._client

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, subscription: PushSubscription, data: bytes) -> int | None:
        """One notice; the push service's status (None: not reached). 404 and 410 delete
        the subscription."""
        try:
            url = check_endpoint(subscription.endpoint, self.allow_loopback)
        except InvalidPushEndpoint:
            await self.subscriptions.drop(subscription.id)
            return None
        info: dict[str, Any] = {
            "endpoint": url,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        try:
            body = WebPusher(info).encode(data, content_encoding="aes128gcm")["body"]
        except Exception as exc:  # a row its keys cannot encrypt for: it would never work
            log.warning(
                "push subscription %s dropped: its keys do not encrypt (%s)",
                subscription.id,
                type(exc).__name__,
            )
            await self.subscriptions.drop(subscription.id)
            return None
        parts = urlsplit(url)
        _, vapid = await self.keys.pair()
        claims = {
            "sub": self.contact,
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + JWT_S,
        }
        headers = {
            **vapid.sign(claims),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "ttl": str(TTL_S),
            "urgency": "high",
        }
        try:
            answer = await self.client.post(
                url, content=body, headers=headers, timeout=self.timeout_s
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.info("push not delivered: %s", type(exc.__cause__ or exc).__name__)
            return None
        if answer.status_code in (404, 410):
            await self.subscriptions.drop(subscription.id)
        elif not answer.is_success:
            log.info("push service answered %s", answer.status_code)
        return answer.status_code

    async def notify(
        self,
        workspace_id: uuid.UUID,
        user_ids: list[uuid.UUID],
        kind: str,
        conversation_id: uuid.UUID,
        preview: str | None,
    ) -> int:
        """The notice to every browser of these agents; how many push services took it."""
        if not user_ids:
            return 0
        data = payload(kind, conversation_id, preview)
        taken = 0
        for subscription in await self.subscriptions.of(workspace_id, user_ids):
            status = await self.send(subscription, data)
            taken += status is not None and 200 <= status < 300
        return taken
