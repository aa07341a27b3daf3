"""Merging two contacts that are one person: what moves, where new messages land while the
merge is pending and after it is confirmed, an exact undo, erasure of either contact, the
export, and the refusals. On the embedded default and on Postgres with Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select
from starlette.testclient import TestClient

from hub.accounts.members import Actor
from hub.contacts.merge import ContactMerger, MergePending
from hub.privacy.retention import Retention
from hub.settings import Settings
from hub.storage.models import MessageRow
from hub.web.app import create_app
from schemas.message import utc_now
from tests.helpers import ORIGIN, Tenant, backends, prepare
from tests.test_api import error_code, hello, items, next_event, visitor_token, wait_for

Env = tuple[TestClient, Tenant, Tenant]


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings, run_worker=True), base_url="http://testserver") as client:
        yield client, acme, globex


def _auth(tenant: Tenant) -> dict[str, str]:
    return {"authorization": f"Bearer {tenant.api_token}"}


def _writes(client: TestClient, token: str, client_id: str, text: str) -> None:
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, token)
        ws.send_text(json.dumps({"type": "message.send", "client_id": client_id, "text": text}))
        next_event(ws, "message.created")


def _visitor(client: TestClient, tenant: Tenant, text: str) -> dict[str, str]:
    """A visitor who wrote once: token, conversation and contact ids."""
    visitor = visitor_token(client, tenant)
    _writes(client, visitor["token"], "first", text)
    url = f"/api/conversations/{visitor['conversation_id']}"
    wait_for(lambda: items(client, url + "/messages", _auth(tenant)))
    contact_id = client.get(url, headers=_auth(tenant)).json()["contact"]["id"]
    return {
        "token": visitor["token"],
        "conversation": visitor["conversation_id"],
        "contact": str(contact_id),
    }


def _panel(client: TestClient, tenant: Tenant, contact_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/contacts/{contact_id}", headers=_auth(tenant))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _shape(panel: dict[str, Any]) -> tuple[set[str], set[str]]:
    return (
        {c["id"] for c in panel["conversations"]},
        {i["platform_user_id"] for i in panel["identities"]},
    )


def _owner(client: TestClient, tenant: Tenant, conversation_id: str) -> str:
    url = f"/api/conversations/{conversation_id}"
    return str(client.get(url, headers=_auth(tenant)).json()["contact"]["id"])


def _texts(client: TestClient, tenant: Tenant, conversation_id: str) -> list[str]:
    url = f"/api/conversations/{conversation_id}/messages"
    return [m["text"] for m in items(client, url, _auth(tenant))]


def test_a_merge_moves_redirects_undoes_exactly_and_confirms(env: Env) -> None:
    client, acme, _ = env
    auth = _auth(acme)
    kept, other = _visitor(client, acme, "on one channel"), _visitor(client, acme, "on another")
    before = (
        _shape(_panel(client, acme, kept["contact"])),
        _shape(_panel(client, acme, other["contact"])),
    )
    url = f"/api/contacts/{kept['contact']}/merge"
    with client.websocket_connect("/ws/agent") as ws:
        hello(ws, acme.api_token)
        answer = client.post(url, json={"other_id": other["contact"]}, headers=auth)
        assert answer.status_code == 200, answer.text
        told = {next_event(ws, "contact.updated")["data"]["contact_id"] for _ in range(2)}
        assert told == {kept["contact"], other["contact"]}
    merge = answer.json()
    assert merge["state"] == "pending" and merge["other_id"] == other["contact"]
    assert merge["conversation_ids"] == [other["conversation"]]

    # Pending: the other's conversation and identity show under the kept contact.
    panel = _panel(client, acme, kept["contact"])
    assert _shape(panel) == (before[0][0] | before[1][0], before[0][1] | before[1][1])
    assert panel["merge"]["id"] == merge["id"]
    assert _panel(client, acme, other["contact"])["merge"]["id"] == merge["id"]
    assert _panel(client, acme, other["contact"])["conversations"] == []
    # The merged-away visitor writes again: it lands on the kept contact.
    _writes(client, other["token"], "pending", "while pending")
    wait_for(lambda: "while pending" in _texts(client, acme, other["conversation"]))
    assert _owner(client, acme, other["conversation"]) == kept["contact"]
    assert _panel(client, acme, other["contact"])["conversations"] == []

    # Refusals while pending.
    again = client.post(url, json={"other_id": other["contact"]}, headers=auth)
    assert again.status_code == 409 and error_code(again) == "merge_pending"
    self_merge = client.post(url, json={"other_id": kept["contact"]}, headers=auth)
    assert self_merge.status_code == 400 and error_code(self_merge) == "same_contact"

    # Undo restores exactly.
    undo = client.post(f"/api/contacts/merges/{merge['id']}/undo", headers=auth)
    assert undo.status_code == 204, undo.text
    assert _shape(_panel(client, acme, kept["contact"])) == before[0]
    assert _shape(_panel(client, acme, other["contact"])) == before[1]
    assert _panel(client, acme, kept["contact"])["merge"] is None
    assert _owner(client, acme, other["conversation"]) == other["contact"]
    twice = client.post(f"/api/contacts/merges/{merge['id']}/undo", headers=auth)
    assert twice.status_code == 404

    # Merged again and confirmed: the other contact is gone, its messages stay.
    merge = client.post(url, json={"other_id": other["contact"]}, headers=auth).json()
    with client.websocket_connect("/ws/agent") as ws:
        hello(ws, acme.api_token)
        confirmed = client.post(f"/api/contacts/merges/{merge['id']}/confirm", headers=auth)
        # Both panels learn it: the merged-away contact's is gone.
        told = {next_event(ws, "contact.updated")["data"]["contact_id"] for _ in range(2)}
        assert told == {kept["contact"], other["contact"]}
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"
    gone = client.get(f"/api/contacts/{other['contact']}", headers=auth)
    assert gone.status_code == 404
    assert {"on another", "while pending"} <= set(_texts(client, acme, other["conversation"]))
    late = client.post(f"/api/contacts/merges/{merge['id']}/undo", headers=auth)
    assert late.status_code == 409 and error_code(late) == "merge_confirmed"
    # A message after the confirm still lands on the kept contact, and brings no contact back.
    _writes(client, other["token"], "after", "after confirm")
    wait_for(lambda: "after confirm" in _texts(client, acme, other["conversation"]))
    assert _owner(client, acme, other["conversation"]) == kept["contact"]
    assert client.get(f"/api/contacts/{other['contact']}", headers=auth).status_code == 404
    panel = _panel(client, acme, kept["contact"])
    assert _shape(panel) == (before[0][0] | before[1][0], before[0][1] | before[1][1])
    assert panel["merge"] is None

    # Audited, ids only; the export names the merge.
    actions = [
        e["action"] for e in items(client, "/api/audit", auth) if e["target_id"] == kept["contact"]
    ]
    assert {"contact.merged", "contact.merge_undone", "contact.merge_confirmed"} <= set(actions)
    exported = client.get(f"/api/contacts/{kept['contact']}/export", headers=auth).json()
    assert [(m["id"], m["state"]) for m in exported["merges"]] == [(merge["id"], "confirmed")]


def test_merges_across_workspaces_and_of_unknown_contacts_are_refused(env: Env) -> None:
    client, acme, globex = env
    mine, theirs = _visitor(client, acme, "acme"), _visitor(client, globex, "globex")
    url = f"/api/contacts/{mine['contact']}/merge"
    across = client.post(url, json={"other_id": theirs["contact"]}, headers=_auth(acme))
    assert across.status_code == 404 and error_code(across) == "not_found"
    back = client.post(
        f"/api/contacts/{theirs['contact']}/merge",
        json={"other_id": mine["contact"]},
        headers=_auth(globex),
    )
    assert back.status_code == 404
    assert _owner(client, globex, theirs["conversation"]) == theirs["contact"]
    bad = client.post(url, json={"other_id": "nope"}, headers=_auth(acme))
    assert bad.status_code == 400
    merge = client.post(
        url, json={"other_id": _visitor(client, acme, "two")["contact"]}, headers=_auth(acme)
    ).json()
    foreign = client.post(f"/api/contacts/merges/{merge['id']}/confirm", headers=_auth(globex))
    assert foreign.status_code == 404


@pytest.mark.parametrize("erased", ["kept", "other"])
def test_erasing_either_contact_of_a_pending_merge_erases_the_person(env: Env, erased: str) -> None:
    client, acme, _ = env
    auth = _auth(acme)
    kept, other = _visitor(client, acme, "one"), _visitor(client, acme, "two")
    bystander = _visitor(client, acme, "someone else")
    url = f"/api/contacts/{kept['contact']}/merge"
    merge = client.post(url, json={"other_id": other["contact"]}, headers=auth).json()
    assert merge["state"] == "pending"
    target = kept if erased == "kept" else other
    filed = client.post("/api/deletions", json={"contact_id": target["contact"]}, headers=auth)
    assert filed.status_code == 202, filed.text
    one = f"/api/deletions/{filed.json()['id']}"
    done = wait_for(
        lambda: (d := client.get(one, headers=auth).json())["status"] == "done" and d, 15
    )
    assert done["counts"]["contacts"] == 2 and done["counts"]["conversations"] == 2
    for person in (kept, other):
        assert client.get(f"/api/contacts/{person['contact']}", headers=auth).status_code == 404
        conversation = f"/api/conversations/{person['conversation']}"
        assert client.get(conversation, headers=auth).status_code == 404
    assert _owner(client, acme, bystander["conversation"]) == bystander["contact"]
    undone = [e for e in items(client, "/api/audit", auth) if e["action"] == "contact.merge_undone"]
    assert undone and undone[0]["detail"]["reason"] == "erasure"


def _merge(client: TestClient, tenant: Tenant, kept: str, other: str) -> dict[str, Any]:
    url = f"/api/contacts/{kept}/merge"
    answer = client.post(url, json={"other_id": other}, headers=_auth(tenant))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _confirm(client: TestClient, tenant: Tenant, merge_id: str) -> None:
    url = f"/api/contacts/merges/{merge_id}/confirm"
    answer = client.post(url, headers=_auth(tenant))
    assert answer.status_code == 200, answer.text


def test_a_confirm_keeps_what_arrived_for_the_merged_away_contact_through_a_chain(
    env: Env,
) -> None:
    """X merged into B and confirmed, then B into C: X's new message arrives while B's merge
    is pending, carries B's id, and must survive B's row being deleted by the confirm."""
    client, acme, _ = env
    x, b, c = (_visitor(client, acme, t) for t in ("x first", "b first", "c first"))
    _confirm(client, acme, _merge(client, acme, b["contact"], x["contact"])["id"])
    pending = _merge(client, acme, c["contact"], b["contact"])
    # Refusals that would make a chain while pending: merging the merged-away contact on,
    # or the kept contact away.
    d = _visitor(client, acme, "d first")
    for kept, other in ((b["contact"], d["contact"]), (d["contact"], c["contact"])):
        url = f"/api/contacts/{kept}/merge"
        refused = client.post(url, json={"other_id": other}, headers=_auth(acme))
        assert refused.status_code == 409 and error_code(refused) == "merge_pending"
    _writes(client, x["token"], "again", "x while b pending")
    _writes(client, b["token"], "again", "b while pending")
    wait_for(lambda: "x while b pending" in _texts(client, acme, x["conversation"]))
    wait_for(lambda: "b while pending" in _texts(client, acme, b["conversation"]))
    _confirm(client, acme, pending["id"])
    assert "x while b pending" in _texts(client, acme, x["conversation"])
    assert "b while pending" in _texts(client, acme, b["conversation"])
    for person in (x, b):
        assert _owner(client, acme, person["conversation"]) == c["contact"]
    # After the confirm X's next message follows the chain to C.
    _writes(client, x["token"], "later", "x after")
    wait_for(lambda: "x after" in _texts(client, acme, x["conversation"]))
    assert client.get(f"/api/contacts/{b['contact']}", headers=_auth(acme)).status_code == 404
    assert _owner(client, acme, x["conversation"]) == c["contact"]


def test_an_undo_gives_back_only_the_merged_away_contacts_messages(env: Env) -> None:
    """A conversation of B's where C wrote too (as in a group): the merge moves it to C and
    the undo gives it back, with B's messages only; C's own stay C's. What B writes while
    the merge is pending stays B's, so the undo is exact."""
    client, acme, _ = env
    c, b = _visitor(client, acme, "c first"), _visitor(client, acme, "b first")
    _writes(client, c["token"], "second", "c in b's thread")
    wait_for(lambda: "c in b's thread" in _texts(client, acme, c["conversation"]))
    sessions = client.app.state.services.store.sessions  # type: ignore[attr-defined]

    async def into_bs_thread() -> None:
        async with sessions() as s, s.begin():
            await s.exec(
                sa.update(MessageRow)
                .where(col(MessageRow.text) == "c in b's thread")
                .values(conversation_id=uuid.UUID(b["conversation"]))
            )

    async def writers() -> dict[str, str]:
        async with sessions() as s:
            rows = await s.exec(
                select(MessageRow.text, MessageRow.contact_id).where(
                    MessageRow.workspace_id == acme.workspace_id
                )
            )
            return {text: str(contact) for text, contact in rows if text}

    client.portal.call(into_bs_thread)  # type: ignore[union-attr]
    merge = _merge(client, acme, c["contact"], b["contact"])
    _writes(client, b["token"], "pending", "b while pending")
    wait_for(lambda: "b while pending" in _texts(client, acme, b["conversation"]))
    assert _owner(client, acme, b["conversation"]) == c["contact"]
    undo = client.post(f"/api/contacts/merges/{merge['id']}/undo", headers=_auth(acme))
    assert undo.status_code == 204, undo.text
    assert _owner(client, acme, b["conversation"]) == b["contact"]
    assert client.portal.call(writers) == {  # type: ignore[union-attr]
        "c first": c["contact"],
        "c in b's thread": c["contact"],
        "b first": b["contact"],
        "b while pending": b["contact"],
    }


def test_concurrent_merges_of_one_contact_let_one_win(env: Env) -> None:
    """Two agents merge at once, the same contact away into two others, or into a contact
    that the other agent merges away: one merge wins, the other is refused (409), never a
    500 and never a chain of pending merges."""
    client, acme, _ = env
    a, b, c = (_visitor(client, acme, t)["contact"] for t in ("a", "b", "c"))
    services = client.app.state.services  # type: ignore[attr-defined]
    merger = ContactMerger(services.store.sessions, services.bus)
    actor = Actor(acme.admin_id, None)

    async def both(*pairs: tuple[str, str]) -> list[Any]:
        return await asyncio.gather(
            *(merger.merge(acme.workspace_id, actor, uuid.UUID(k), uuid.UUID(o)) for k, o in pairs),
            return_exceptions=True,
        )

    for pairs in (((a, b), (c, b)), ((a, b), (b, c))):
        results = client.portal.call(both, *pairs)  # type: ignore[union-attr]
        refused = [r for r in results if isinstance(r, Exception)]
        assert len(refused) == 1 and isinstance(refused[0], MergePending), results
        won = next(r for r in results if not isinstance(r, Exception))
        client.portal.call(merger.undo, acme.workspace_id, actor, won.id)  # type: ignore[union-attr]


def test_retention_keeps_a_pending_merges_contacts_so_the_undo_works(env: Env) -> None:
    client, acme, _ = env
    kept, other = _visitor(client, acme, "one"), _visitor(client, acme, "two")
    merge = _merge(client, acme, kept["contact"], other["contact"])
    services = client.app.state.services  # type: ignore[attr-defined]
    sweep = Retention(
        services.store, services.bus, services.ingress, services.library, every_s=60, pause_s=0
    )

    async def run() -> Any:
        return await sweep.sweep_workspace(acme.workspace_id, utc_now() + timedelta(days=1))

    client.portal.call(run)  # type: ignore[union-attr]
    undo = client.post(f"/api/contacts/merges/{merge['id']}/undo", headers=_auth(acme))
    assert undo.status_code == 204, undo.text
    for person in (kept, other):
        assert _panel(client, acme, person["contact"])["merge"] is None


def test_erasing_a_confirmed_merged_away_id_erases_the_kept_contact(env: Env) -> None:
    client, acme, _ = env
    auth = _auth(acme)
    kept, other = _visitor(client, acme, "one"), _visitor(client, acme, "two")
    _confirm(client, acme, _merge(client, acme, kept["contact"], other["contact"])["id"])
    filed = client.post("/api/deletions", json={"contact_id": other["contact"]}, headers=auth)
    assert filed.status_code == 202, filed.text
    one = f"/api/deletions/{filed.json()['id']}"
    wait_for(lambda: client.get(one, headers=auth).json()["status"] == "done", 15)
    assert client.get(f"/api/contacts/{kept['contact']}", headers=auth).status_code == 404
    for person in (kept, other):
        conversation = f"/api/conversations/{person['conversation']}"
        assert client.get(conversation, headers=auth).status_code == 404
