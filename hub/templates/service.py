"""WhatsApp message templates: synced from the channel's WhatsApp Business Account (on
connect, on demand, and by `TemplateRefresher` in the workers), kept per channel, changed by
the `message_template_status_update` webhook, and read for the inbox and the console.

A channel syncs only with its WABA id (`account_ids.business_account_id`, given when it is
connected) and its number's token. A sync replaces the channel's list whole: a template
deleted at WhatsApp disappears here too.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlmodel import col, select

from adapters import registry
from adapters.meta import templates as wa
from adapters.outbound import Platforms, Request, redact
from hub.errors import BadRequest, NotFound, Unavailable
from hub.storage import tenancy
from hub.storage.inbox import channel_of
from hub.storage.models import Channel, WhatsAppTemplate
from hub.storage.store import Store
from hub.storage.vault import Vault
from hub.workers.periodic import Periodic
from schemas.message import utc_now

log = logging.getLogger("hub.templates")

SYNC_TIMEOUT_S = 10.0
SYNCED_AT = "templates_synced_at"  # in Channel.settings: when the list was last read


def has_templates(kind: str) -> bool:
    """Whether channels of this kind have message templates (WhatsApp's)."""
    adapter = registry.get(kind)
    return adapter is not None and adapter.sends_templates


class NoBusinessAccount(BadRequest):
    code = "no_business_account"
    default_message = (
        "This WhatsApp channel has no WhatsApp Business Account id: set its "
        "business_account_id (PATCH /api/channels/{id}) to use templates."
    )


class NotWhatsApp(BadRequest):
    code = "not_whatsapp"
    default_message = "Templates belong to WhatsApp channels."


class SyncFailed(Unavailable):
    code = "template_sync_failed"
    default_message = "WhatsApp did not give the templates."


class NoSuchTemplate(NotFound):
    code = "template_not_found"
    default_message = "The channel has no template of that name and language; sync the list."


class Templates:
    def __init__(self, store: Store, vault: Vault, platforms: Platforms) -> None:
        self.store, self.vault, self.platforms = store, vault, platforms

    # Syncing

    async def sync(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> tuple[int, datetime]:
        """Read every page of the WABA's templates and make them the channel's list."""
        async with self.store.sessions() as s:
            channel = await channel_of(s, workspace_id, channel_id)
        waba_id, token = self._address(channel)
        found: list[dict[str, Any]] = []
        after: str | None = None
        async with httpx.AsyncClient(timeout=SYNC_TIMEOUT_S) as client:
            for _ in range(wa.MAX_PAGES):
                page = await _read(client, wa.list_request(self.platforms, waba_id, token, after))
                if isinstance(page, str):
                    raise SyncFailed(f"WhatsApp did not give the templates: {page}")
                found.extend(page.templates)
                after = page.after
                if after is None:
                    break
        return len(found), await self._replace(workspace_id, channel_id, waba_id, found)

    def _address(self, channel: Channel) -> tuple[str, str]:
        if not has_templates(channel.kind):
            raise NotWhatsApp()
        waba_id = channel.account_ids.get("business_account_id")
        if not waba_id:
            raise NoBusinessAccount()
        token = self.vault.open(channel.secrets).get("access_token") if channel.secrets else None
        if not token or channel.status == "disconnected":
            raise BadRequest("The channel is disconnected; reconnect it to sync its templates.")
        return str(waba_id), token

    async def _replace(
        self,
        workspace_id: uuid.UUID,
        channel_id: uuid.UUID,
        waba_id: str,
        found: list[dict[str, Any]],
    ) -> datetime:
        now = utc_now()
        async with self.store.sessions() as s, s.begin():
            rows = (
                await s.exec(
                    select(WhatsAppTemplate).where(
                        WhatsAppTemplate.workspace_id == workspace_id,
                        WhatsAppTemplate.channel_id == channel_id,
                    )
                )
            ).all()
            kept = {(r.name, r.language): r for r in rows}
            seen: set[tuple[str, str]] = set()
            for item in found:
                key = (str(item["name"]), str(item["language"]))
                if key in seen:
                    continue
                seen.add(key)
                row = kept.get(key) or WhatsAppTemplate(
                    workspace_id=workspace_id,
                    channel_id=channel_id,
                    waba_id=waba_id,
                    template_id="",
                    name=key[0][:512],
                    language=key[1][:20],
                    status="",
                    category="",
                )
                row.waba_id = waba_id
                row.template_id = str(item.get("id") or "")[:100]
                status = str(item.get("status") or "UNKNOWN").upper()[:30]
                if status != row.status or key not in kept:
                    row.updated_at = now
                row.status = status
                row.category = str(item.get("category") or "").upper()[:30]
                row.parameter_format = str(item.get("parameter_format") or "POSITIONAL")[:20]
                components = item.get("components")
                row.components = components if isinstance(components, list) else []
                rejected = item.get("rejected_reason")
                row.reason = (
                    str(rejected)[:1000] if rejected and rejected not in ("NONE", None) else None
                )
                row.synced_at = now
                s.add(row)
            for key, row in kept.items():
                if key not in seen:
                    await s.delete(row)
            channel = await channel_of(s, workspace_id, channel_id)
            channel.settings = {**channel.settings, SYNCED_AT: now.isoformat()}
            s.add(channel)
        return now

    async def sync_quietly(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> None:
        """A sync nobody waits for (on connect): a failure is logged, the next round retries."""
        try:
            with tenancy.acting_for(workspace_id):
                await self.sync(workspace_id, channel_id)
        except Exception as exc:  # the channel is connected whatever WhatsApp answers now
            log.warning("templates of channel %s not synced: %s", channel_id, exc)

    async def sync_all(self) -> int:
        """Every connected WhatsApp channel with a WABA id; answers how many synced."""
        with tenancy.acting_for(None):
            async with self.store.sessions() as s:
                channels = (
                    await s.exec(
                        select(Channel).where(
                            col(Channel.kind).in_(
                                [a.kind.value for a in registry.adapters() if a.sends_templates]
                            ),
                            Channel.status == "connected",
                        )
                    )
                ).all()
        synced = 0
        for channel in channels:
            if not channel.account_ids.get("business_account_id"):
                continue
            try:
                with tenancy.acting_for(channel.workspace_id):
                    await self.sync(channel.workspace_id, channel.id)
                synced += 1
            except Exception as exc:  # one channel's failure must not stop the others
                log.warning("templates of channel %s not synced: %s", channel.id, exc)
        return synced

    # Reading

    async def listed(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID
    ) -> tuple[list[WhatsAppTemplate], datetime | None]:
        async with self.store.sessions() as s:
            channel = await channel_of(s, workspace_id, channel_id)
            if not has_templates(channel.kind):
                raise NotWhatsApp()
            rows = (
                await s.exec(
                    select(WhatsAppTemplate)
                    .where(
                        WhatsAppTemplate.workspace_id == workspace_id,
                        WhatsAppTemplate.channel_id == channel_id,
                    )
                    .order_by(col(WhatsAppTemplate.name), col(WhatsAppTemplate.language))
                )
            ).all()
        synced = channel.settings.get(SYNCED_AT)
        return list(rows), datetime.fromisoformat(synced) if synced else None

    async def find(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID, name: str, language: str
    ) -> WhatsAppTemplate:
        async with self.store.sessions() as s:
            row = (
                await s.exec(
                    select(WhatsAppTemplate).where(
                        WhatsAppTemplate.workspace_id == workspace_id,
                        WhatsAppTemplate.channel_id == channel_id,
                        WhatsAppTemplate.name == name,
                        WhatsAppTemplate.language == language,
                    )
                )
            ).first()
        if row is None:
            raise NoSuchTemplate()
        return row

    # Status webhooks

    async def apply_statuses(
        self, updates: list[wa.StatusUpdate], channel_id: uuid.UUID | None = None
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Set the status of each named template in every channel of its WABA (or only in
        `channel_id`, for a channel's own app); answers the (workspace, channel) pairs
        changed. Runs for no workspace in particular: a WABA id names the channels."""
        changed: set[tuple[uuid.UUID, uuid.UUID]] = set()
        now = utc_now()
        with tenancy.acting_for(None):
            async with self.store.sessions() as s, s.begin():
                for update in updates:
                    query = select(WhatsAppTemplate).where(
                        WhatsAppTemplate.waba_id == update.waba_id
                    )
                    if update.template_id:
                        query = query.where(WhatsAppTemplate.template_id == update.template_id)
                    elif update.name and update.language:
                        query = query.where(
                            WhatsAppTemplate.name == update.name,
                            WhatsAppTemplate.language == update.language,
                        )
                    else:
                        continue
                    if channel_id is not None:
                        query = query.where(WhatsAppTemplate.channel_id == channel_id)
                    for row in (await s.exec(query)).all():
                        row.status = update.status[:30]
                        row.reason = update.reason[:1000] if update.reason else None
                        row.updated_at = now
                        s.add(row)
                        changed.add((row.workspace_id, row.channel_id))
        return sorted(changed)


async def _read(client: httpx.AsyncClient, request: Request) -> wa.Page | str:
    try:
        response = await client.request(request.method, request.url, headers=request.headers)
    except httpx.TransportError as exc:
        return redact(f"{type(exc).__name__}: {exc}")
    try:
        body = response.json()
    except ValueError:
        body = None
    return wa.read_page(response.status_code, body)


class TemplateRefresher(Periodic):
    """Syncs every WhatsApp channel's templates, so a change made in WhatsApp Manager (or a
    status webhook that never came) shows within one round."""

    name = "template-sync"

    def __init__(self, templates: Templates, *, every_s: float) -> None:
        super().__init__(every_s=every_s)
        self.templates = templates

    async def round(self) -> None:
        await self.templates.sync_all()
