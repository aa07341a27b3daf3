"""Outbound webhooks: the workspace's events, POSTed to its own systems.

- **Endpoints**: a URL and the events it wants (`EVENTS`). The URL is https, on a public
  address; plain http and private, loopback or link-local addresses only with
  `HUB_HOOKS_ALLOW_PRIVATE` (a receiver inside the operator's own network). A secret is made
  for each endpoint, kept sealed (`hub.storage.vault`) and shown once.
- **Deliveries**: the "hooks" consumer group turns each event an endpoint wants into a
  delivery row (unique per endpoint and event, so a batch read twice makes none twice) and
  sends it at once. A failed attempt is retried by the worker's `Retrier` after
  `Settings.hooks_backoff[n]` (10 s, 1 min, 5 min, 30 min, 2 h); after the sixth failed
  attempt the delivery is dead: the dead-letter list keeps it for a replay.
- **The request**: POST, `application/json`, body `{"id": event id, "event": name,
  "workspace_id", "created_at", "data": the event's data}` (docs/protocol.md's events).
  Headers: `X-Hub-Event`, `X-Hub-Delivery` (the delivery's id, the same on every retry: the
  receiver de-duplicates by it), `X-Hub-Timestamp` (unix seconds) and
  `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`. A 2xx
  answer delivers it; any other answer, a timeout or a refused connection is a failed attempt.
- **Privacy**: a delivered body is dropped at once; delivered rows go after 7 days, dead ones
  after 30. Erasing a person deletes every undelivered delivery that names them
  (`hub.privacy.outbox`), and an erased person's events read late are never sent
  (`erasure.unerased`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from hub.accounts.members import Actor, by_member
from hub.bus import Bus, Event
from hub.errors import BadRequest, NotFound
from hub.privacy import erasure
from hub.reports.service import stream_time
from hub.settings import Settings
from hub.storage import audit, tenancy
from hub.storage.cache import Versioned
from hub.storage.store import Store
from hub.storage.vault import Vault
from hub.web.addresses import literal_ip, public_address, public_ip
from hub.web.pinning import Refused, pinned_client
from hub.workers.periodic import Periodic
from schemas.events import (
    ConversationCreated,
    ConversationUpdated,
    MessageCreated,
    MessageUpdated,
    TypingChanged,
)
from schemas.message import utc_now
from schemas.rest.hooks import DeliveryOut, HookOut

log = logging.getLogger("hub.hooks")

HOOKS_GROUP = "hooks"
VERSION_KEY = "hooks:version"  # hub.storage.cache.Versioned: set anew when endpoints change
EVENTS = ("message.created", "message.updated", "conversation.updated", "contact.updated")
LEASE_S = 120.0  # a delivery being sent is not due for anyone else meanwhile
DUE_ROUND = 100
KEEP_DELIVERED = timedelta(days=7)
KEEP_DEAD = timedelta(days=30)
MAX_ENDPOINTS = 20
_TABLES = SQLModel.metadata.tables
ENDPOINTS = _TABLES["webhook_endpoints"]
DELIVERIES = _TABLES["webhook_deliveries"]


class InvalidHookUrl(BadRequest):
    code = "invalid_hook_url"
    default_message = "The URL must be https on a public address."


class HookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000, description="https, on a public address")
    events: list[str] = Field(
        default_factory=lambda: list(EVENTS[:3]),
        min_length=1,
        max_length=len(EVENTS),
        description="Of " + ", ".join(EVENTS),
    )


def check_url(url: str, allow_private: bool) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username:
        raise InvalidHookUrl()
    try:
        httpx.URL(url.strip())  # what the client will be given
    except httpx.InvalidURL as exc:
        raise InvalidHookUrl() from exc
    if parts.scheme == "http" and not allow_private:
        raise InvalidHookUrl("The URL must be https (http only with HUB_HOOKS_ALLOW_PRIVATE).")
    literal = literal_ip(parts.hostname)  # any notation: "0x7f.1" is 127.0.0.1
    if literal is not None and not allow_private and not public_ip(literal):
        raise InvalidHookUrl("The URL's address is private; give a public one.")
    return url.strip()


def sign(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def delivery_out(row: Any) -> DeliveryOut:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return DeliveryOut(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event=row.event_name,
        status=row.status,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=when(row.created_at),
        next_attempt_at=when(row.next_attempt_at) if row.status == "pending" else None,
        delivered_at=when(row.delivered_at),
    )


class Hooks:
    """Endpoints (admins' API) and deliveries (the consumer group and the retrier)."""

    def __init__(self, store: Store, bus: Bus, vault: Vault, settings: Settings) -> None:
        self.store, self.bus, self.vault, self.settings = store, bus, vault, settings
        self._client: httpx.AsyncClient | None = None  # made at the first delivery
        # The events some endpoint of the workspace wants, kept while the endpoints stand.
        self.wanted: Versioned[frozenset[str]] = Versioned(bus, VERSION_KEY)

    # Endpoints

    async def endpoints(self, workspace_id: uuid.UUID) -> list[HookOut]:
        async with self.store.sessions() as orm:
            s = await orm.connection()
            rows = await s.execute(
                sa.select(ENDPOINTS)
                .where(ENDPOINTS.c.workspace_id == workspace_id)
                .order_by(ENDPOINTS.c.created_at)
            )
            return [_endpoint_out(row._asdict()) for row in rows.all()]

    async def add(self, workspace_id: uuid.UUID, actor: Actor, body: HookBody) -> HookOut:
        unknown = sorted(set(body.events) - set(EVENTS))
        if unknown:
            raise BadRequest(f"Unknown event {unknown[0]!r}: use {', '.join(EVENTS)}.")
        url = check_url(body.url, self.settings.hooks_allow_private)
        if not self.settings.hooks_allow_private and not await public_address(url):
            raise InvalidHookUrl("The URL's host resolves to a private address.")
        secret = "whsec_" + secrets.token_urlsafe(32)
        endpoint_id = uuid.uuid4()
        async with self.store.sessions() as orm, orm.begin():
            s = await orm.connection()
            count = await s.execute(
                sa.select(sa.func.count()).where(ENDPOINTS.c.workspace_id == workspace_id)
            )
            if count.scalar_one() >= MAX_ENDPOINTS:
                raise BadRequest(f"A workspace has at most {MAX_ENDPOINTS} webhook endpoints.")
            values = dict(
                id=endpoint_id,
                workspace_id=workspace_id,
                url=url,
                secret=self.vault.seal({"secret": secret}),
                events=sorted(set(body.events)),
                created_at=utc_now(),
            )
            await s.execute(sa.insert(ENDPOINTS).values(**values))
            detail = {"events": values["events"]}
            await audit.append(
                orm, by_member(workspace_id, actor, "hook.created", endpoint_id, detail, "hook")
            )
        await self.wanted.changed(str(workspace_id))
        made = _endpoint_out(values)
        made.secret = secret  # shown this once
        return made

    async def remove(self, workspace_id: uuid.UUID, actor: Actor, endpoint_id: uuid.UUID) -> None:
        async with self.store.sessions() as orm, orm.begin():
            s = await orm.connection()
            gone = await s.execute(
                sa.delete(ENDPOINTS).where(
                    ENDPOINTS.c.workspace_id == workspace_id, ENDPOINTS.c.id == endpoint_id
                )
            )
            if gone.rowcount != 1:
                raise NotFound("No such webhook endpoint.")
            await audit.append(
                orm, by_member(workspace_id, actor, "hook.deleted", endpoint_id, {}, "hook")
            )
        await self.wanted.changed(str(workspace_id))

    async def deliveries(
        self, workspace_id: uuid.UUID, status: str | None, limit: int
    ) -> list[DeliveryOut]:
        query = sa.select(DELIVERIES).where(DELIVERIES.c.workspace_id == workspace_id)
        if status:
            query = query.where(DELIVERIES.c.status == status)
        query = query.order_by(DELIVERIES.c.created_at.desc()).limit(limit)
        async with self.store.sessions() as orm:
            s = await orm.connection()
            return [delivery_out(row) for row in (await s.execute(query)).all()]

    async def replay(
        self, workspace_id: uuid.UUID, actor: Actor, delivery_id: uuid.UUID
    ) -> DeliveryOut:
        """A dead delivery, due again at once with its attempts counted afresh."""
        async with self.store.sessions() as orm, orm.begin():
            s = await orm.connection()
            done = await s.execute(
                sa.update(DELIVERIES)
                .where(
                    DELIVERIES.c.workspace_id == workspace_id,
                    DELIVERIES.c.id == delivery_id,
                    DELIVERIES.c.status == "dead",
                )
                .values(status="pending", attempts=0, next_attempt_at=utc_now())
                .returning(*DELIVERIES.c)
            )
            row = done.first()
            if row is None:
                raise NotFound("No such dead delivery (only a dead one can be replayed).")
            await audit.append(
                orm, by_member(workspace_id, actor, "hook.replayed", delivery_id, {}, "delivery")
            )
        return delivery_out(row)

    # The consumer group

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        wanted = [e for e in events if e.name in EVENTS]
        if not wanted:
            return
        with tenancy.acting_for(workspace_id):
            # Most workspaces have no endpoints: their batches cost one bus read, no query.
            names = await self.wanted.load(workspace_id, lambda: self._names(workspace_id))
            wanted = [e for e in wanted if e.name in names]
            if not wanted:
                return
            wanted = await erasure.unerased(self.bus, workspace_id, wanted, conversations=True)
            made = await self._record(uuid.UUID(workspace_id), wanted)
            for delivery_id in made:
                await self._attempt(delivery_id)

    async def _names(self, workspace_id: str) -> frozenset[str]:
        async with self.store.sessions() as orm:
            s = await orm.connection()
            rows = await s.execute(
                sa.select(ENDPOINTS.c.events).where(
                    ENDPOINTS.c.workspace_id == uuid.UUID(workspace_id)
                )
            )
            return frozenset(name for (names,) in rows.all() for name in names or ())

    async def _record(self, workspace_id: uuid.UUID, events: list[Event]) -> list[uuid.UUID]:
        """A delivery row per endpoint that wants each event, leased to this worker for
        `LEASE_S` (it sends them next); answers the ids of the rows this call made."""
        async with self.store.sessions() as orm, orm.begin():
            s = await orm.connection()
            endpoints = (
                await s.execute(
                    sa.select(ENDPOINTS.c.id, ENDPOINTS.c.events).where(
                        ENDPOINTS.c.workspace_id == workspace_id
                    )
                )
            ).all()
            if not endpoints:
                return []
            now = utc_now()
            rows = []
            for event in events:
                body = _body(workspace_id, event)
                conversation = _conversation_of(event)
                for endpoint_id, names in endpoints:
                    if event.name in (names or ()):
                        rows.append(
                            dict(
                                id=uuid.uuid4(),
                                workspace_id=workspace_id,
                                endpoint_id=endpoint_id,
                                event_id=event.id,
                                event_name=event.name,
                                conversation_id=conversation,
                                body=body,
                                status="pending",
                                attempts=0,
                                next_attempt_at=now + timedelta(seconds=LEASE_S),
                                created_at=now,
                            )
                        )
            if not rows:
                return []
            insert = postgresql.insert if s.dialect.name == "postgresql" else sqlite.insert
            made = await s.execute(
                insert(DELIVERIES)
                .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
                .returning(DELIVERIES.c.id),
                rows,
            )
            return [row.id for row in made.all()]

    async def _attempt(self, delivery_id: uuid.UUID) -> None:
        """Send one delivery and record the outcome."""
        async with self.store.sessions() as orm:
            s = await orm.connection()
            row = (
                await s.execute(
                    sa.select(DELIVERIES, ENDPOINTS.c.url, ENDPOINTS.c.secret)
                    .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
                    .where(DELIVERIES.c.id == delivery_id)
                )
            ).first()
        if row is None or row.status != "pending" or row.body is None:
            return
        status, error = await self._post(row)
        now = utc_now()
        attempts, backoff = row.attempts + 1, self.settings.hooks_backoff
        if status is not None and 200 <= status < 300:
            values: dict[str, Any] = dict(
                status="delivered", body=None, delivered_at=now, next_attempt_at=None
            )
        elif attempts > len(backoff):
            values = dict(status="dead", next_attempt_at=None)
        else:
            values = dict(next_attempt_at=now + timedelta(seconds=backoff[attempts - 1]))
        values |= dict(attempts=attempts, last_status=status, last_error=error)
        async with self.store.sessions() as orm, orm.begin():
            s = await orm.connection()
            await s.execute(
                sa.update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(**values)
            )

    # The worker runs it as a task: its client is closed when the worker stops.

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        """Connects only to the address it checked, follows no redirect (`hub.web.pinning`)."""
        if self._client is None:
            self._client = pinned_client(allow_private=self.settings.hooks_allow_private)
        return self._client

    async def _post(self, row: Any) -> tuple[int | None, str | None]:
        settings = self.settings
        secret = self.vault.open(row.secret)["secret"]
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "SosyoCRM-hub-webhooks/1",
            "x-hub-event": row.event_name,
            "x-hub-delivery": str(row.id),
            "x-hub-timestamp": str(timestamp),
            "x-hub-signature-256": sign(secret, timestamp, row.body),
        }
        try:
            answer = await self.client.post(
                row.url,
                content=row.body.encode(),
                headers=headers,
                timeout=settings.hooks_timeout_s,
                follow_redirects=False,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if isinstance(exc.__cause__, Refused):  # the check's own words
                return None, str(exc.__cause__)[:300]
            return None, (type(exc).__name__ + ": " + str(exc))[:300]
        if answer.is_success:
            return answer.status_code, None
        if answer.is_redirect:
            return answer.status_code, f"HTTP {answer.status_code}: redirects are not followed"
        return answer.status_code, f"HTTP {answer.status_code}"

    # The retrier

    async def send_due(self) -> int:
        """Claim (lease) and send the deliveries that are due, oldest first; drop old rows."""
        now = utc_now()
        async with self.store.sessions() as orm, orm.begin():
            s = await orm.connection()
            await s.execute(
                sa.delete(DELIVERIES).where(
                    sa.or_(
                        sa.and_(
                            DELIVERIES.c.status == "delivered",
                            DELIVERIES.c.delivered_at < now - KEEP_DELIVERED,
                        ),
                        sa.and_(
                            DELIVERIES.c.status == "dead",
                            DELIVERIES.c.created_at < now - KEEP_DEAD,
                        ),
                    )
                )
            )
            due = (
                await s.execute(
                    sa.select(DELIVERIES.c.id, DELIVERIES.c.next_attempt_at)
                    .where(DELIVERIES.c.status == "pending", DELIVERIES.c.next_attempt_at <= now)
                    .order_by(DELIVERIES.c.next_attempt_at)
                    .limit(DUE_ROUND)
                )
            ).all()
        sent = 0
        for delivery_id, due_at in due:
            async with self.store.sessions() as orm, orm.begin():
                s = await orm.connection()
                claimed = await s.execute(  # another worker may have taken it meanwhile
                    sa.update(DELIVERIES)
                    .where(
                        DELIVERIES.c.id == delivery_id,
                        DELIVERIES.c.next_attempt_at == due_at,
                        DELIVERIES.c.status == "pending",
                    )
                    .values(next_attempt_at=now + timedelta(seconds=LEASE_S))
                )
            if claimed.rowcount == 1:
                await self._attempt(delivery_id)
                sent += 1
        return sent


class Retrier(Periodic):
    name = "hooks-retrier"

    def __init__(self, hooks: Hooks, *, every_s: float) -> None:
        super().__init__(every_s=every_s)
        self.hooks = hooks

    async def round(self) -> None:
        with tenancy.acting_for(None):
            await self.hooks.send_due()


def _endpoint_out(values: dict[str, Any]) -> HookOut:
    return HookOut(
        id=values["id"],
        url=values["url"],
        events=list(values["events"] or []),
        created_at=values["created_at"].isoformat(),
    )


def _body(workspace_id: uuid.UUID, event: Event) -> str:
    return (
        '{"id":'
        + json.dumps(event.id)
        + ',"event":'
        + json.dumps(event.name)
        + ',"workspace_id":"'
        + str(workspace_id)
        + '","created_at":"'
        + stream_time(event.id).isoformat()
        + '","data":'
        + event.data
        + "}"
    )


def _conversation_of(event: Event) -> uuid.UUID | None:
    try:
        if event.conversation_id:
            return uuid.UUID(event.conversation_id)
        data = event.typed()
    except ValueError:
        return None
    match data:
        case MessageCreated():
            return data.message.conversation_id
        case MessageUpdated() | ConversationCreated() | ConversationUpdated() | TypingChanged():
            return data.conversation_id
    return None
