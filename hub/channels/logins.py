"""Storing a channel that a Meta login connected (Facebook Login for Business, Embedded
Signup) with its token sealed and who connected it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from hub.channels.service import Channels, reconnected
from hub.errors import Conflict
from hub.storage import audit, tenancy
from hub.storage.models import Channel, ChannelAccount
from schemas.message import ChannelKind


async def refuse_if_held(
    channels: Channels, workspace_id: uuid.UUID, kind: ChannelKind, account_id: str
) -> None:
    """409 when another workspace holds the account: checked before the platform is changed
    for it (a number re-registered with a new PIN would leave the holder's PIN stale).
    `store` checks again, in its transaction."""
    with tenancy.acting_for(None):  # past row-level security, which hides other workspaces
        async with channels.store.sessions() as s:
            held = (
                await s.exec(
                    select(ChannelAccount).where(
                        ChannelAccount.kind == kind.value, ChannelAccount.account_id == account_id
                    )
                )
            ).first()
    if held is not None and held.workspace_id != workspace_id:
        raise Conflict("That account is connected to another workspace.")


async def store(
    channels: Channels,
    workspace_id: uuid.UUID,
    actor_id: uuid.UUID,
    *,
    kind: ChannelKind,
    name: str,
    account_ids: Mapping[str, str],
    secrets: Mapping[str, str],
    settings: Mapping[str, Any],
    connected_by: str | None,
    connected_via: str,
) -> Channel:
    """A channel a login connected. An account this workspace has connected already (a
    reconnect) gets the new token and its status back; one another workspace holds is
    refused."""
    account_id = next(iter(account_ids.values()))  # the adapter's account field comes first
    sealed = channels.vault.seal(dict(secrets))
    try:
        async with channels.store.sessions() as s, s.begin():
            held = (
                await s.exec(
                    select(ChannelAccount).where(
                        ChannelAccount.kind == kind.value, ChannelAccount.account_id == account_id
                    )
                )
            ).first()
            if held is not None and held.workspace_id != workspace_id:
                raise Conflict("That account is connected to another workspace.")
            channel = await s.get(Channel, held.channel_id) if held is not None else None
            if channel is None:
                channel = Channel(
                    workspace_id=workspace_id, kind=kind, name=name, account_ids=dict(account_ids)
                )
                s.add(channel)
                await s.flush()
                s.add(
                    ChannelAccount(
                        workspace_id=workspace_id,
                        channel_id=channel.id,
                        kind=kind.value,
                        account_id=account_id,
                    )
                )
                await s.flush()  # the unique key refuses an account another workspace holds
            # A reconnect, through whichever login, replaces everything the previous one
            # wrote: its ids, token, settings and who connected it.
            channel.account_ids = dict(account_ids)
            channel.secrets = sealed
            channel.settings = reconnected(channel.settings, settings)
            channel.status = "connected"
            channel.connected_by = connected_by
            channel.connected_via = connected_via
            s.add(channel)
            await audit.append(
                s,
                audit.record(
                    workspace_id,
                    "channel.connected",
                    "channel",
                    channel.id,
                    actor_type="user",
                    actor_id=actor_id,
                    detail={"via": connected_via},
                ),
            )
    except IntegrityError:  # held by another workspace, whose rows row-level security hides
        raise Conflict("That account is connected to another workspace.") from None
    channels.forget(channel.id, kind, account_id)
    return channel
