"""What Meta's deauthorize and data-deletion callbacks do for the person they name.

Meta's `user_id` is the app-scoped id of the person who removed the app or asked for their
data to be deleted: for Business Login for Instagram the Instagram professional account that
authorized it, for Facebook Login (and Embedded Signup) the Facebook user who connected
Pages or a number. The channels "this person connected" are those whose `connected_by` is
that id, or whose account is that id (`hub.channels.metaapps.connected_by`).

- Deauthorize: those channels are disconnected (their tokens destroyed, routing removed,
  `channel.updated` to agents); their conversations stay.
- Data deletion: the same, and when the channel's workspace says so
  (`workspaces.platform_deletion_erases`) the channel's conversations, messages and the
  contacts known only there are erased too, in the same deletion request as the person's
  own erasure as a messaging contact (`hub.channels.purge.find` gives those targets).
"""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from hub.channels import metaapps, purge
from hub.errors import NotFound
from hub.privacy.erasure import Target
from hub.services import Services
from hub.storage.models import Workspace


async def disconnect_theirs(
    svc: Services,
    channels: list[metaapps.AppChannel],
    user_id: str,
    *,
    action: str,
    ip: str | None,
) -> list[metaapps.AppChannel]:
    """Disconnect the channels this person connected (audited as `action` by the platform);
    answers all of theirs, those disconnected before included."""
    theirs = [c for c in channels if metaapps.connected_by(c, user_id)]
    for channel in theirs:
        if channel.status == "disconnected":
            continue
        try:
            await svc.channels.disconnect(
                channel.workspace_id, None, channel.channel_id, ip=ip, action=action
            )
        except NotFound:
            continue
        await svc.ingress.channel_updated(channel.workspace_id, channel.channel_id, "disconnected")
    return theirs


async def channel_targets(svc: Services, theirs: list[metaapps.AppChannel]) -> list[Target]:
    """What erasing the data of these channels takes, in the workspaces that ask for it."""
    workspaces = {c.workspace_id for c in theirs}
    if not workspaces:
        return []
    query = select(Workspace.id).where(
        col(Workspace.id).in_(workspaces), col(Workspace.platform_deletion_erases).is_(True)
    )
    async with svc.store.sessions() as s:
        erasing: set[uuid.UUID] = set((await s.exec(query)).all())
    targets: list[Target] = []
    for channel in theirs:
        if channel.workspace_id in erasing:
            found = await purge.find(svc.store.sessions, channel.workspace_id, channel.channel_id)
            targets += found.targets
            # As an admin's channel purge does (`purge.file`): what waits is no contact's.
            await purge.drop_waiting(svc.store.sessions, channel.workspace_id, channel.channel_id)
    return targets
