"""Protocol v2's lean data of `message.created` (docs/protocol.md, "Protocol versions").

v1 sends the whole normalized message with every field; most of it is a default or something
the client already knows, and it was two fifths of an agent's frame. v2 leaves a key out when
it equals its **v2 default** below, and a client rebuilds the v1 data from what is left with
the same rules (`rebuild`, the reference; hub/static/lean.js and widget/widget.js follow it).
One rule for every key: a key is written when it differs from its v2 default, and a written
null means "none" (v1 leaves that key out) where the default would have given a value.

The hub computes this text once per event, at publish (`hub.realtime.ingress`), and carries it
on the stream entry next to v1's data, so the fan-out never encodes or parses a message.

Defaults, in `data.message`:
- `workspace_id`: the socket's own workspace (always left out);
- `kind` "dm", `direction` "in", `status` "received";
- `attachments` and `reactions` [], `edited`, `deleted`, `private_reply`, `note`, `standby`,
  `hidden` false, `group.renamed` false; null fields are left out as in v1;
- `sender` (always written as its keys that differ): `type` "contact"; `id` the message's
  `contact_id` when the type is contact (else none); `name` the contact's name when the type
  is contact and the event has a contact (else none);
- `platform_message_id`, when the message has a `client_id` (one sent through the hub's own
  sockets): "v:<contact.platform_user_id>:<client_id>" for a contact's,
  "a:<sender.id>:<client_id>" for an agent's.

In `data.contact` (present exactly when v1 has one): `id` the message's `contact_id`, `name`
null. `data.thread`: the contact's `platform_user_id` when there is a contact and the channel
is not web chat (whose visitors have no thread), else none.
"""

from __future__ import annotations

from typing import Any

import pydantic_core

from schemas.events import Contact, MessageCreated
from schemas.message import ChannelKind, Message, json_of

WEBCHAT = ChannelKind.WEBCHAT.value

# The message's plain v2 defaults (sender, platform_message_id and workspace_id are derived).
MESSAGE_DEFAULTS: dict[str, Any] = {
    "kind": "dm",
    "direction": "in",
    "status": "received",
    "attachments": [],
    "reactions": [],
    "edited": False,
    "deleted": False,
    "private_reply": False,
    "note": False,
    "standby": False,
    "hidden": False,
}


def _json(value: object) -> str:
    return pydantic_core.to_json(value).decode()


def lean(data: MessageCreated) -> str:
    """The v2 data of this `message.created`, as JSON text: one dump of the message with its
    defaults and derived keys excluded, and its sender, contact and thread by the rules above."""
    message, contact = data.message, data.contact
    exclude = {"workspace_id", "sender"}
    if message.direction == MESSAGE_DEFAULTS["direction"]:
        exclude.add("direction")
    if message.status == MESSAGE_DEFAULTS["status"]:
        exclude.add("status")
    if message.platform_message_id == _platform_message_id(message, contact):
        exclude.add("platform_message_id")
    text = json_of(message, exclude=exclude, exclude_defaults=True)
    sender = _sender(message, contact)
    if sender != "{}":
        text = text[:-1] + ',"sender":' + sender + "}"
    text = '{"message":' + text
    if contact is not None:
        text += ',"contact":' + _contact(message, contact)
    if data.thread != _thread(message, contact):
        text += ',"thread":' + _json(data.thread)
    return text + "}"


def _sender(message: Message, contact: Contact | None) -> str:
    sender = message.sender
    parts = []
    if sender.type != "contact":
        parts.append('"type":' + _json(sender.type))
    default_id = str(message.contact_id) if sender.type == "contact" else None
    if sender.id != default_id:
        parts.append('"id":' + _json(sender.id))
    default_name = contact.name if sender.type == "contact" and contact is not None else None
    if sender.name != default_name:
        parts.append('"name":' + _json(sender.name))
    return "{" + ",".join(parts) + "}"


def _contact(message: Message, contact: Contact) -> str:
    parts = []
    if contact.id != message.contact_id:
        parts.append('"id":' + _json(None if contact.id is None else str(contact.id)))
    if contact.name is not None:
        parts.append('"name":' + _json(contact.name))
    if contact.platform_user_id is not None:
        parts.append('"platform_user_id":' + _json(contact.platform_user_id))
    return "{" + ",".join(parts) + "}"


def _thread(message: Message, contact: Contact | None) -> str | None:
    if contact is None or message.channel_kind == WEBCHAT:
        return None
    return contact.platform_user_id


def _platform_message_id(message: Message, contact: Contact | None) -> str | None:
    """The id the hub gives a message sent through its own sockets (`hub.realtime.ingress`)."""
    if message.client_id is None:
        return None
    if message.sender.type == "contact" and contact is not None and contact.platform_user_id:
        return f"v:{contact.platform_user_id}:{message.client_id}"
    if message.sender.type == "agent" and message.sender.id is not None:
        return f"a:{message.sender.id}:{message.client_id}"
    return None


def rebuild(data: dict[str, Any], workspace_id: str) -> dict[str, Any]:
    """The v1 data of a `message.created` from its v2 data (parsed JSON), by the rules above:
    the reference for clients, and what the tests and `scripts/bench/frames.py` check."""
    message: dict[str, Any] = {
        **MESSAGE_DEFAULTS,
        "attachments": [],  # a list of its own for each message
        "reactions": [],
        "workspace_id": workspace_id,
        **data["message"],
    }
    full: dict[str, Any] = {"message": message}
    contact = data.get("contact")
    if contact is not None:
        contact = full["contact"] = {"id": message["contact_id"], "name": None, **contact}
    if "group" in message:
        message["group"] = {"renamed": False, **message["group"]}
    sender = {"type": "contact", **message.get("sender", {})}
    if sender["type"] == "contact":
        named = {"name": contact["name"]} if contact is not None else {}
        sender = {"id": message["contact_id"], **named, **sender}
    message["sender"] = {k: v for k, v in sender.items() if v is not None}
    if "platform_message_id" not in message:
        if sender["type"] == "contact" and contact is not None:
            who = contact["platform_user_id"]
            message["platform_message_id"] = f"v:{who}:{message['client_id']}"
        else:
            message["platform_message_id"] = f"a:{sender['id']}:{message['client_id']}"
    if "thread" in data:
        if data["thread"] is not None:
            full["thread"] = data["thread"]
    elif contact is not None and message["channel_kind"] != WEBCHAT:
        if contact.get("platform_user_id") is not None:
            full["thread"] = contact["platform_user_id"]
    return full


def json_schema() -> dict[str, Any]:
    """The JSON Schema of v2's `message.created` data: v1's, with the keys that have a v2
    default no longer required (docs/protocol.md)."""
    message = Message.model_json_schema()
    defaulted = {*MESSAGE_DEFAULTS, "workspace_id", "sender", "platform_message_id"}
    message["required"] = [k for k in message["required"] if k not in defaulted]
    message["description"] = (
        "The message, its keys at their v2 default left out (schemas/lean.py, "
        "docs/protocol.md): workspace_id is the socket's workspace; sender, "
        "platform_message_id and the rest as the protocol's v2 rules say."
    )
    defs = message.pop("$defs")
    defs["Sender"]["required"] = []
    defs["Sender"]["description"] = (
        "Keys at their v2 default left out: type contact; id the contact_id for a contact; "
        "name the contact's name for a contact. A null: none"
    )
    contact = Contact.model_json_schema()
    contact["required"] = []
    contact["description"] = "Present exactly when v1 has a contact: id defaults to contact_id"
    return {
        "type": "object",
        "title": "MessageCreatedV2",
        "description": "The data of message.created in protocol v2: keys at their v2 default "
        "left out; a null means none where the default would give a value.",
        "properties": {
            "message": message,
            "contact": contact,
            "thread": {
                "type": ["string", "null"],
                "description": "Defaults to the contact's platform_user_id, except on web chat",
            },
        },
        "required": ["message"],
        "$defs": defs,
    }
