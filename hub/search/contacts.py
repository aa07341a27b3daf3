"""Which contacts a typed text finds: the one condition search (hub/search/query.py) and the
contact list's `q` (GET /api/contacts, the console's Privacy tab) share, so both find
"İSTANBUL" by "istanbul" and a nameless visitor by the "Visitor 1a2b3c" the inbox shows."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import col, select

from hub.search.folding import substring_pattern
from hub.storage.models import Contact, ContactIdentity
from hub.storage.shownname import shown_name_holds


def contact_holds(workspace_id: uuid.UUID, text: str) -> sa.ColumnElement[bool]:
    """Contacts whose folded name, e-mail or username, platform id or shown name holds `text`."""
    pattern = substring_pattern(text)
    shown = shown_name_holds(text)  # "Visitor 1a2b3c", the name the inbox gives the nameless
    identified = select(ContactIdentity.contact_id).where(
        ContactIdentity.workspace_id == workspace_id,
        # a platform's id is an opaque token: matched as typed, without regard to ASCII case
        col(ContactIdentity.platform_user_id).ilike(pattern, escape="\\"),
    )
    return sa.or_(
        col(Contact.search).like(pattern, escape="\\"),
        col(Contact.id).in_(identified),
        sa.false() if shown is None else shown,
    )
