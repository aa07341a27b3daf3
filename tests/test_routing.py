"""Teams and routing (hub/routing/service.py): new conversations go to online agents with room,
round robin or least busy, per channel or team; the rest wait in a visible queue that drains
as agents come online or get room; a person's assignment always wins. Through the app with
its worker, on SQLite and on Postgres, and with real agent and visitor sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.accounts.auth import Principal, VisitorClaims
from hub.accounts.members import Actor
from hub.channels.options import ChannelPatch, update_channel
from hub.routing.service import ChannelRouting, Router
from hub.services import Services
from hub.settings import Settings
from hub.storage.engine import make_engine, sessionmaker
from hub.storage.store import Store
from hub.web.app import create_app
from hub.workers import persist
from tests.helpers import ORIGIN, STRONG_PASSWORD, Tenant, backends, prepare
from tests.mailbox import join
from tests.test_api import hello, next_ack, next_event, visitor_token, wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    settings = backends(request, settings)
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings, run_worker=True), base_url="http://testserver") as client:
        client.headers["authorization"] = f"Bearer {acme.api_token}"
        yield client, acme


class Agents:
    """Members added through the API, each with an API token of their own, and their sockets."""

    def __init__(self, client: TestClient, tenant: Tenant, settings: Settings) -> None:
        self.client = client
        self.tenant = tenant
        self.settings = settings
        self.ids: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.stack = ExitStack()
        self.sockets: dict[str, Any] = {}

    def add(self, *names: str) -> None:
        for name in names:
            email = f"{name}-{uuid.uuid4().hex[:6]}@acme.example"
            self.ids[name] = join(self.client, {}, email, name, STRONG_PASSWORD)
            self.tokens[name] = asyncio.run(self._token(uuid.UUID(self.ids[name])))

    async def _token(self, user_id: uuid.UUID) -> str:
        engine = make_engine(self.client.app.state.services.settings)  # type: ignore[attr-defined]
        try:
            store = Store(sessionmaker(engine))
            principal = Principal(user_id, self.tenant.workspace_id, "agent", "token")
            _, token = await store.create_api_token(principal, "routing tests")
            return token
        finally:
            await engine.dispose()

    def online(self, name: str, state: str = "online") -> Any:
        """Open the agent's socket (it is online from its hello), and choose a state."""
        ws = self.stack.enter_context(self.client.websocket_connect("/ws/agent"))
        hello(ws, self.tokens[name])
        if state != "online":
            ws.send_text(json.dumps({"type": "presence", "state": state}))
            wait_for(lambda: self.presence(name) == state)
        wait_for(lambda: self.presence(name) == state)
        self.sockets[name] = ws
        return ws

    def presence(self, name: str) -> str:
        states = self.client.get("/api/presence").json()["items"]
        return next(s["state"] for s in states if s["user_id"] == self.ids[name])

    def name_of(self, user_id: str | None) -> str | None:
        return next((n for n, i in self.ids.items() if i == user_id), user_id)


@pytest.fixture
def agents(env: tuple[TestClient, Tenant], settings: Settings) -> Iterator[Agents]:
    client, tenant = env
    crew = Agents(client, tenant, settings)
    with crew.stack:
        yield crew


def new_visitor(client: TestClient, tenant: Tenant, text: str = "Hello") -> str:
    """A new visitor writes: a new conversation. Answers its id."""
    visitor = visitor_token(client, tenant)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "c1", "text": text}))
        assert next_ack(ws)["type"] == "ack"
    return str(visitor["conversation_id"])


def conversation(client: TestClient, conversation_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/conversations/{conversation_id}")
    return dict(answer.json()) if answer.status_code == 200 else {}


def assignee_of(client: TestClient, conversation_id: str) -> str | None:
    """Once the worker has stored the conversation: its assignee."""
    found = wait_for(lambda: conversation(client, conversation_id))
    return found["assignee_id"]  # type: ignore[no-any-return]


def routed(client: TestClient, conversation_id: str) -> str:
    return str(wait_for(lambda: conversation(client, conversation_id).get("assignee_id")))


def route_channel(client: TestClient, tenant: Tenant, **routing: Any) -> None:
    answer = client.patch(f"/api/channels/{tenant.channel_id}", json={"routing": routing})
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["routing"] == {"team_id": None, "assignment": "manual"} | {
        k: v for k, v in routing.items()
    }


def queue(client: TestClient) -> dict[str, Any]:
    answer = client.get("/api/conversations/queue")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


# Assignment


def test_round_robin_takes_turns_among_online_agents_and_skips_away_and_offline(
    env: tuple[TestClient, Tenant], agents: Agents
) -> None:
    client, acme = env
    agents.add("ada", "bo", "cy", "di")
    watcher = agents.online("ada")
    agents.online("bo")
    agents.online("cy", "away")  # di never connects: offline
    route_channel(client, acme, assignment="round_robin")
    got = []
    for n in range(6):
        conversation_id = new_visitor(client, acme, f"question {n}")
        got.append(agents.name_of(routed(client, conversation_id)))
    # Turns, in an order fixed by who was given one longest ago: nobody twice in a row,
    # both get three; the away and the offline agent and the admin (offline) get none.
    assert sorted(got) == ["ada"] * 3 + ["bo"] * 3
    assert all(a != b for a, b in itertools.pairwise(got))
    # Inboxes learn it live, marked as routing's.
    event = next_event(watcher, "conversation.updated")["data"]
    while not event.get("routed"):
        event = next_event(watcher, "conversation.updated")["data"]
    assert set(event["changes"]) == {"assignee_id"} and event["as_of"]


def test_capacity_holds_the_rest_in_a_visible_queue_that_drains_when_room_frees(
    env: tuple[TestClient, Tenant], agents: Agents
) -> None:
    client, acme = env
    agents.add("ada", "bo")
    for name in ("ada", "bo"):
        answer = client.patch(f"/api/members/{agents.ids[name]}", json={"capacity": 1})
        assert answer.status_code == 200 and answer.json()["capacity"] == 1
        agents.online(name)
    route_channel(client, acme, assignment="least_busy")
    first, second = new_visitor(client, acme), new_visitor(client, acme)
    assert {routed(client, first), routed(client, second)} == {agents.ids["ada"], agents.ids["bo"]}
    third = new_visitor(client, acme)
    wait_for(lambda: conversation(client, third))
    assert queue(client) == {"unassigned": 1, "teams": [{"team_id": None, "unassigned": 1}]}
    listed = client.get("/api/conversations", params={"assignee": "none", "status": "open"})
    assert [c["id"] for c in listed.json()["items"]] == [third]
    # ada resolves hers: her seat goes to the one waiting.
    ada_had = first if routed(client, first) == agents.ids["ada"] else second
    client.patch(f"/api/conversations/{ada_had}", json={"status": "resolved"})
    assert routed(client, third) == agents.ids["ada"]
    assert queue(client)["unassigned"] == 0


def test_least_busy_gives_it_to_the_agent_holding_fewest_open(
    env: tuple[TestClient, Tenant], agents: Agents
) -> None:
    client, acme = env
    agents.add("ada", "bo")
    held = [new_visitor(client, acme) for _ in range(2)]
    for conversation_id in held:  # ada holds two, assigned by hand before routing was on
        wait_for(lambda c=conversation_id: conversation(client, c))
        client.patch(
            f"/api/conversations/{conversation_id}", json={"assignee_id": agents.ids["ada"]}
        )
        wait_for(lambda c=conversation_id: assignee_of(client, c) == agents.ids["ada"])
    agents.online("ada")
    agents.online("bo")
    route_channel(client, acme, assignment="least_busy")
    got = [agents.name_of(routed(client, new_visitor(client, acme))) for _ in range(3)]
    # bo first twice (0 then 1 against ada's 2), then the tie goes to ada, who waited longer.
    assert got == ["bo", "bo", "ada"]


def test_an_agent_coming_online_takes_from_the_queue_oldest_first(
    env: tuple[TestClient, Tenant], agents: Agents
) -> None:
    client, acme = env
    agents.add("ada")
    client.patch(f"/api/members/{agents.ids['ada']}", json={"capacity": 1})
    route_channel(client, acme, assignment="round_robin")
    older, newer = new_visitor(client, acme, "first"), new_visitor(client, acme, "second")
    wait_for(lambda: conversation(client, newer))
    assert assignee_of(client, older) is None and queue(client)["unassigned"] == 2
    agents.online("ada")
    assert routed(client, older) == agents.ids["ada"]
    assert assignee_of(client, newer) is None  # her one seat is taken


def test_a_team_channel_fills_the_team_queue_and_only_its_members_get_them(
    env: tuple[TestClient, Tenant], agents: Agents
) -> None:
    client, acme = env
    agents.add("ada", "bo")
    agents.online("ada")
    agents.online("bo")
    made = client.post(
        "/api/teams",
        json={"name": "Billing", "assignment": "manual", "member_ids": [agents.ids["bo"]]},
    )
    assert made.status_code == 201, made.text
    team = made.json()
    assert team["member_ids"] == [agents.ids["bo"]] and team["assignment"] == "manual"
    route_channel(client, acme, team_id=team["id"])
    # Manual: it joins the team's queue and waits there.
    waiting = new_visitor(client, acme)
    wait_for(lambda: conversation(client, waiting).get("team_id") == team["id"])
    assert assignee_of(client, waiting) is None
    assert queue(client)["teams"] == [{"team_id": team["id"], "unassigned": 1}]
    in_team = client.get("/api/conversations", params={"team_id": team["id"]}).json()["items"]
    assert [c["id"] for c in in_team] == [waiting]
    # The team assigns round robin: its queue goes to bo, its only member, never to ada.
    changed = client.patch(f"/api/teams/{team['id']}", json={"assignment": "round_robin"})
    assert changed.status_code == 200 and changed.json()["assignment"] == "round_robin"
    assert routed(client, waiting) == agents.ids["bo"]
    assert routed(client, new_visitor(client, acme)) == agents.ids["bo"]


# A person's choice wins


def test_a_manual_reassignment_sticks_through_later_messages_and_drains(
    env: tuple[TestClient, Tenant], agents: Agents
) -> None:
    client, acme = env
    agents.add("ada", "bo")
    agents.online("ada")
    route_channel(client, acme, assignment="round_robin")
    visitor = visitor_token(client, acme)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "c1", "text": "hi"}))
        next_ack(ws)
        conversation_id = visitor["conversation_id"]
        assert routed(client, conversation_id) == agents.ids["ada"]
        # bo is offline; a person gives it to bo anyway, and later messages leave it there.
        client.patch(
            f"/api/conversations/{conversation_id}", json={"assignee_id": agents.ids["bo"]}
        )
        wait_for(lambda: assignee_of(client, conversation_id) == agents.ids["bo"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "c2", "text": "still?"}))
        next_ack(ws)
    new_visitor(client, acme)  # another message and drain
    wait_for(lambda: queue(client)["unassigned"] == 0)
    assert assignee_of(client, conversation_id) == agents.ids["bo"]


def test_an_agent_who_hands_one_back_does_not_get_it_again_at_once(
    env: tuple[TestClient, Tenant], agents: Agents
) -> None:
    client, acme = env
    agents.add("ada", "bo")
    route_channel(client, acme, assignment="least_busy")
    agents.online("ada")
    first = new_visitor(client, acme)
    assert routed(client, first) == agents.ids["ada"]
    agents.online("bo")
    assert routed(client, new_visitor(client, acme)) == agents.ids["bo"]
    # ada hands hers back: she holds none now and bo one, so by load alone it would be hers
    # again; it goes to bo.
    ada = {"authorization": f"Bearer {agents.tokens['ada']}"}
    answer = client.patch(f"/api/conversations/{first}", json={"assignee_id": None}, headers=ada)
    assert answer.status_code == 202
    wait_for(lambda: assignee_of(client, first) == agents.ids["bo"])


async def test_an_assignment_in_the_same_batch_as_the_first_message_wins(
    settings: Settings,
) -> None:
    """The batch holds a visitor's first message and, behind it, a person's assignment to an
    offline agent: routing runs after both are applied, so the online agent it would have
    picked does not get it, and there is nothing to announce."""
    [acme] = await asyncio.to_thread(prepare, settings, "acme")
    svc = Services.build(settings)
    await svc.bus.start()
    try:
        workspace = str(acme.workspace_id)
        await svc.bus.ensure_group("check", [workspace])
        actor = Actor(acme.admin_id, None)
        offline = await svc.store.add_member(  # seeded, as make_tenant seeds an admin
            acme.workspace_id, "bo@acme.example", "x" * 12, "agent", "bo"
        )
        admin = Principal(acme.admin_id, acme.workspace_id, "admin", "token")
        await svc.ingress.presence(admin, "online", announce=False)
        await svc.members.set_capacity(acme.workspace_id, actor, acme.admin_id, 5)
        routing = ChannelPatch(routing=ChannelRouting(assignment="round_robin"))
        await update_channel(
            svc.store, acme.workspace_id, acme.channel_id, routing, actor_id=acme.admin_id, ip=None
        )
        claims = VisitorClaims(acme.workspace_id, acme.channel_id, "visitor-1")
        await svc.ingress.visitor_message(claims, "c1", "hello", [])
        ref = svc.ingress.visitor_conversation(claims)
        await svc.ingress.change_conversation(admin, ref.id, {"assignee_id": str(offline.id)})
        [(_, events)] = await svc.bus.read_group("check", "c", [workspace], count=10, block_ms=10)
        assert [e.name for e in events] == ["presence", "message.created", "conversation.updated"]
        router = Router(svc.ingress.presences)
        announced = await persist.apply(svc.store.sessions, workspace, events, router)
        assert announced == []
        stored = await svc.store.conversation(acme.workspace_id, ref.id)
        assert stored is not None and stored.assignee_id == offline.id
        # The same message alone (no person's choice behind it) is routed to the online admin.
        await svc.ingress.visitor_message(
            VisitorClaims(acme.workspace_id, acme.channel_id, "v2"), "c1", "hi", []
        )
        [(_, events)] = await svc.bus.read_group("check", "c", [workspace], count=10, block_ms=10)
        [announcement] = await persist.apply(svc.store.sessions, workspace, events, router)
        assert announcement["routed"] is True and announcement["as_of"] == events[-1].id
        assert announcement["changes"] == {"assignee_id": str(acme.admin_id)}
    finally:
        await svc.close()
