"""An agent's edit of a contact: name, e-mail, phone, company and notes.

The request stores the change and its audit row in one transaction (the row names the fields
changed, never their values: the log holds no personal data), then publishes
`contact.updated` with `by` set, so every agent's open list and panel follow at once; the
persist worker skips such an event, since it is stored already.
"""

from __future__ import annotations

import re
import uuid

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from hub.accounts.members import Actor, by_member
from hub.bus import Bus
from hub.errors import BadRequest, NotFound
from hub.search.folding import folded
from hub.storage import audit
from hub.storage.models import Contact
from hub.storage.store import Sessions
from schemas.events import ContactUpdated
from schemas.message import utc_now

FIELDS = ("name", "email", "phone", "company", "notes")
MAX_NOTES = 5000
# Shape only: something@something.tld, no spaces; whether it exists is not ours to know.
EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]{2,}$")
# E.164-ish: an optional +, then 7 to 15 digits; spaces, dots, dashes and brackets between
# them are allowed as people write them, and dropped when stored.
PHONE_SEPARATORS = re.compile(r"[\s.\-()]")
PHONE = re.compile(r"^\+?[0-9]{7,15}$")


class InvalidEmail(BadRequest):
    code = "invalid_email"
    default_message = "The e-mail address is not of the form name@domain.tld."


class InvalidPhone(BadRequest):
    code = "invalid_phone"
    default_message = "The phone number must be 7 to 15 digits, optionally after a +."


class ContactPatch(BaseModel):
    """The fields to change; a field sent as null or "" clears it, one left out stays."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40, description="E.164-ish: +905321234567")
    company: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=MAX_NOTES)


def cleaned(patch: ContactPatch) -> dict[str, str | None]:
    """The fields sent, trimmed (blank is None), checked and normalized."""
    values: dict[str, str | None] = {}
    for name in FIELDS:
        if name not in patch.model_fields_set:
            continue
        raw = getattr(patch, name)
        value = raw.strip() if isinstance(raw, str) else None
        if name == "notes" and raw is not None:
            value = raw.strip("\n ") or None
        if "\x00" in (value or ""):  # Postgres text holds no NUL
            raise BadRequest(f"{name} may not contain NUL.")
        values[name] = value or None
    if values.get("email") is not None:
        email = str(values["email"])
        if not EMAIL.match(email):
            raise InvalidEmail()
        values["email"] = email
    if values.get("phone") is not None:
        phone = PHONE_SEPARATORS.sub("", str(values["phone"]))
        if not PHONE.match(phone):
            raise InvalidPhone()
        values["phone"] = phone
    if not values:
        raise BadRequest("Nothing to change: give name, email, phone, company or notes.")
    return values


class ContactEditor:
    def __init__(self, sessions: Sessions, bus: Bus) -> None:
        self.sessions = sessions
        self.bus = bus

    async def change(
        self, workspace_id: uuid.UUID, actor: Actor, contact_id: uuid.UUID, patch: ContactPatch
    ) -> list[str]:
        """Store the fields that differ, audit and announce them; the names changed."""
        values = cleaned(patch)
        async with self.sessions() as s, s.begin():
            contact = (
                await s.exec(
                    select(Contact).where(
                        Contact.workspace_id == workspace_id, Contact.id == contact_id
                    )
                )
            ).first()
            if contact is None:
                raise NotFound("No such contact.")
            changed = [k for k, v in values.items() if getattr(contact, k) != v]
            if changed:
                for name in changed:
                    setattr(contact, name, values[name])
                contact.updated_at = utc_now()
                # search's folded column, here: the persist worker skips an agent's edit
                contact.search = folded(contact.name, contact.email, contact.username)
                s.add(contact)
                await audit.append(
                    s,
                    by_member(
                        workspace_id,
                        actor,
                        "contact.updated",
                        contact_id,
                        {"fields": changed},
                        "contact",
                    ),
                )
            now = {name: getattr(contact, name) for name in FIELDS}
        if changed:
            data = ContactUpdated(contact_id=contact_id, by=actor.user_id, **now)
            await self.bus.publish(str(workspace_id), data.NAME, data.dump())
        return changed
