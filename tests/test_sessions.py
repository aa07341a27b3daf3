"""Sessions kept on the server (hub.accounts.sessions): signing out ends a session everywhere
(REST, socket tokens minted from it, its open sockets, closed with 4410), a user lists and
ends their sessions, a password change, a removal and an admin's sign-out end them, socket
tokens work once, and another workspace's sessions are out of reach. On the embedded default
and on Postgres with Redis, in process; then across two `hub serve` processes over Redis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlmodel import select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from hub.accounts.sessions import UserSessions
from hub.bus.memory import MemoryBus
from hub.settings import Settings
from hub.storage import tenancy
from hub.storage.engine import make_engine, migrate, sessionmaker
from hub.storage.models import UserSession
from hub.storage.store import Store
from hub.web.app import create_app
from schemas.codes import CloseCode
from schemas.events import SessionEnded, parse_event
from tests.conftest import REDIS_URL, admin_sql
from tests.databases import own_database
from tests.helpers import Tenant, backends, make_tenant, prepare
from tests.mailbox import outbox, token_in, wait_letter
from tests.servers import HubProcess, base_env, free_port

Env = tuple[TestClient, Tenant, Tenant]


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings, run_worker=True), base_url="http://testserver") as client:
        yield client, acme, globex


class Signed:
    """One signed-in browser: its cookie and CSRF token."""

    def __init__(self, client: TestClient, email: str, password: str) -> None:
        client.cookies.clear()
        answer = client.post("/api/auth/login", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        self.client = client
        self.cookie = str(answer.cookies["hub_session"])
        self.csrf = str(answer.json()["csrf_token"])
        client.cookies.clear()

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"cookie": f"hub_session={self.cookie}", "x-csrf-token": self.csrf}
        self.client.cookies.clear()
        answer = self.client.request(method, path, headers=headers, **kw)
        self.client.cookies.clear()
        new = answer.cookies.get("hub_session")
        if new:  # a password change gives this browser a new cookie
            self.cookie = new
        return answer

    def socket_token(self) -> str:
        answer = self.call("POST", "/api/agent/socket-token")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    def session_id(self) -> str:
        [mine] = [s for s in self.call("GET", "/api/me/sessions").json()["items"] if s["current"]]
        return str(mine["id"])


def add_member(settings: Settings, tenant: Tenant, role: str = "agent") -> tuple[str, str, str]:
    """A member added through the store (the way `hub create-admin` seeds): id, e-mail, password."""
    email, password = f"m-{uuid.uuid4().hex[:8]}@acme.example", "pw-" + uuid.uuid4().hex

    async def add() -> uuid.UUID:
        engine = make_engine(settings)
        try:
            user = await Store(sessionmaker(engine)).add_member(
                tenant.workspace_id, email, password, role
            )
            return user.id
        finally:
            await engine.dispose()

    return str(asyncio.run(add())), email, password


def hello(ws: Any, token: str) -> dict[str, Any]:
    ws.send_text(json.dumps({"type": "hello", "token": token}))
    return dict(ws.receive_json())


def closed_with(ws: Any) -> tuple[int, list[dict[str, Any]]]:
    """Read until the hub closes the socket: its close code and the frames before it."""
    frames: list[dict[str, Any]] = []
    with pytest.raises(WebSocketDisconnect) as info:
        while True:
            frames.append(ws.receive_json())
    return info.value.code, frames


def closed_before_a_later_event(client: TestClient, tenant: Tenant, *sockets: Any) -> list[int]:
    """The tenant's admin makes a team, whose `routing.updated` goes on the workspace's stream
    after whatever was published before it; then each socket is read until it closes: its
    close code, after an `error session_ended` frame. A socket that stays open gets that
    event first, and the test fails there instead of waiting for ever."""
    bearer = {"authorization": f"Bearer {tenant.api_token}"}  # over any cookie in the jar
    made = client.post("/api/teams", json={"name": f"later-{uuid.uuid4().hex[:8]}"}, headers=bearer)
    assert made.status_code == 201, made.text
    codes = []
    for ws in sockets:
        frames: list[dict[str, Any]] = []
        with pytest.raises(WebSocketDisconnect) as info:
            while True:
                frame = ws.receive_json()
                assert frame.get("name") != "routing.updated", f"still open after {frames}"
                frames.append(frame)
        assert frames and frames[-1]["type"] == "error", frames
        assert frames[-1]["code"] == "session_ended", frames
        codes.append(info.value.code)
    return codes


def still_open(ws: Any) -> None:
    ws.send_text(json.dumps({"type": "ping"}))
    while (frame := ws.receive_json())["type"] != "pong":
        assert frame["type"] == "event", frame


def test_logout_ends_the_cookie_its_socket_tokens_and_its_open_sockets(env: Env) -> None:
    client, acme, _ = env
    browser = Signed(client, acme.email, acme.password)
    other = Signed(client, acme.email, acme.password)  # the same person in another browser
    spare = browser.socket_token()  # minted before the logout, used after it
    with (
        client.websocket_connect("/ws/agent") as ws,
        client.websocket_connect("/ws/agent") as others,
    ):
        assert hello(ws, browser.socket_token())["type"] == "welcome"
        assert hello(others, other.socket_token())["type"] == "welcome"
        assert browser.call("POST", "/api/auth/logout").status_code == 204
        code, frames = closed_with(ws)
        assert code == CloseCode.SESSION_ENDED == 4410
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "session_ended"
        assert not any(f.get("name") == "session.ended" for f in frames)  # not for clients
        still_open(others)  # the other session goes on
    gone = browser.call("GET", "/api/me")
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "unauthenticated"
    assert browser.call("POST", "/api/agent/socket-token").status_code == 401
    with client.websocket_connect("/ws/agent") as ws:
        refused = hello(ws, spare)
        assert refused["type"] == "error" and refused["code"] == "unauthenticated"
        assert closed_with(ws)[0] == CloseCode.UNAUTHENTICATED
    assert other.call("GET", "/api/me").status_code == 200
    bearer = {"authorization": f"Bearer {acme.api_token}"}
    audit = client.get("/api/audit", params={"action": "logout"}, headers=bearer).json()
    assert audit["items"] and audit["items"][0]["actor_id"] == str(acme.admin_id)


async def test_session_ended_fits_its_model_and_names_the_sessions(settings: Settings) -> None:
    await asyncio.to_thread(migrate, settings)
    tenant = await make_tenant(settings)
    engine = make_engine(settings)
    bus = MemoryBus(stream_maxlen=1000, dedupe_ttl_s=60)
    try:
        sessions = UserSessions(sessionmaker(engine), bus, max_age_s=3600)
        first, _ = await sessions.open(tenant.admin_id, tenant.workspace_id, ip=None, user_agent="")
        second, _ = await sessions.open(
            tenant.admin_id, tenant.workspace_id, ip="::1", user_agent=None
        )
        assert await sessions.end_all(tenant.workspace_id, tenant.admin_id, keep=second.id) == 1
        [event] = await bus.read(str(tenant.workspace_id), "0-0", 10)
        data = parse_event(event.name, event.data)
        assert isinstance(data, SessionEnded)
        assert data.user_id == tenant.admin_id and data.session_ids == [first.id]
    finally:
        await engine.dispose()


def test_a_user_lists_their_sessions_and_ends_one_or_all_the_others(env: Env) -> None:
    client, acme, globex = env
    first, second, current = (Signed(client, acme.email, acme.password) for _ in range(3))
    listed = current.call("GET", "/api/me/sessions")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert len(items) == 3 and [s["current"] for s in items].count(True) == 1
    assert {s["user_agent"] for s in items} == {"testclient"} and all(s["ip"] for s in items)
    assert current.cookie not in listed.text  # the secret is never shown (nor kept)

    ended = current.call("DELETE", f"/api/me/sessions/{first.session_id()}")
    assert ended.status_code == 204
    assert first.call("GET", "/api/me").status_code == 401
    assert len(current.call("GET", "/api/me/sessions").json()["items"]) == 2
    assert current.call("DELETE", f"/api/me/sessions/{uuid.uuid4()}").status_code == 404

    # Another workspace's session is no session here, and goes on.
    theirs = Signed(client, globex.email, globex.password)
    foreign = current.call("DELETE", f"/api/me/sessions/{theirs.session_id()}")
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
    assert theirs.call("GET", "/api/me").status_code == 200
    assert theirs.session_id() not in current.call("GET", "/api/me/sessions").text

    others = current.call("DELETE", "/api/me/sessions")
    assert others.status_code == 200 and others.json() == {"ended": 1}
    assert second.call("GET", "/api/me").status_code == 401
    assert current.call("GET", "/api/me").status_code == 200
    [left] = current.call("GET", "/api/me/sessions").json()["items"]
    assert left["current"] is True
    # Ending this session is signing out.
    assert current.call("DELETE", f"/api/me/sessions/{left['id']}").status_code == 204
    assert current.call("GET", "/api/me").status_code == 401
    bearer = {"authorization": f"Bearer {acme.api_token}"}
    actions = {e["action"] for e in client.get("/api/audit", headers=bearer).json()["items"]}
    assert {"session.ended", "session.ended_others"} <= actions


def test_a_new_password_ends_the_other_sessions_and_keeps_this_one(env: Env) -> None:
    client, acme, _ = env
    old, current = (
        Signed(client, acme.email, acme.password),
        Signed(client, acme.email, acme.password),
    )
    kept = current.session_id()
    with (
        client.websocket_connect("/ws/agent") as old_ws,
        client.websocket_connect("/ws/agent") as current_ws,
    ):
        assert hello(old_ws, old.socket_token())["type"] == "welcome"
        assert hello(current_ws, current.socket_token())["type"] == "welcome"
        new = "new-" + uuid.uuid4().hex
        changed = current.call(
            "POST",
            "/api/me/password",
            json={"current_password": acme.password, "new_password": new},
        )
        assert changed.status_code == 200, changed.text
        assert closed_with(old_ws)[0] == CloseCode.SESSION_ENDED
        still_open(current_ws)
    assert old.call("GET", "/api/me").status_code == 401
    assert current.call("GET", "/api/me").status_code == 200
    [left] = current.call("GET", "/api/me/sessions").json()["items"]
    assert left["id"] == kept  # the same session, under a new cookie


def test_removal_and_an_admins_sign_out_end_a_members_sessions(env: Env) -> None:
    client, acme, globex = env
    settings: Settings = client.app.state.services.settings  # type: ignore[attr-defined]
    admin = Signed(client, acme.email, acme.password)
    member_id, email, password = add_member(settings, acme)
    one, two = Signed(client, email, password), Signed(client, email, password)

    # An agent may not sign anyone out; another workspace's admin finds no such member.
    assert one.call("POST", f"/api/members/{acme.admin_id}/sign-out").status_code == 403
    stranger = Signed(client, globex.email, globex.password)
    assert stranger.call("POST", f"/api/members/{member_id}/sign-out").status_code == 404
    assert one.call("GET", "/api/me").status_code == 200

    with client.websocket_connect("/ws/agent") as ws:
        assert hello(ws, one.socket_token())["type"] == "welcome"
        signed_out = admin.call("POST", f"/api/members/{member_id}/sign-out")
        assert signed_out.status_code == 200 and signed_out.json() == {"ended": 2}
        assert closed_with(ws)[0] == CloseCode.SESSION_ENDED
    assert one.call("GET", "/api/me").status_code == 401
    assert two.call("GET", "/api/me").status_code == 401
    assert admin.call("GET", "/api/me").status_code == 200
    audit = admin.call("GET", "/api/audit", params={"action": "member.signed_out"}).json()
    [row] = audit["items"]
    assert row["target_id"] == member_id and row["detail"] == {"ended": 2}

    # Removal: the member's sessions here end, and their open sockets close.
    three = Signed(client, email, password)
    with client.websocket_connect("/ws/agent") as ws:
        assert hello(ws, three.socket_token())["type"] == "welcome"
        assert admin.call("DELETE", f"/api/members/{member_id}").status_code == 204
        assert closed_with(ws)[0] == CloseCode.SESSION_ENDED
    assert three.call("GET", "/api/me").status_code == 401


@pytest.mark.parametrize("erase", [False, True], ids=["keep_account", "erase_account"])
def test_removal_closes_every_socket_of_the_member_from_a_session_or_a_token(
    env: Env, erase: bool
) -> None:
    """With erase_account the account's row may go, and its sessions with it (ON DELETE
    CASCADE): they are collected in the removal's transaction, so their sockets still close.
    Sockets opened with an API token, or with a socket token minted from one, have no session:
    `member.removed` closes them too."""
    client, acme, _ = env
    settings: Settings = client.app.state.services.settings  # type: ignore[attr-defined]
    admin_bearer = {"authorization": f"Bearer {acme.api_token}"}
    member_id, email, password = add_member(settings, acme)
    browser = Signed(client, email, password)
    made = browser.call("POST", "/api/tokens", json={"name": "integration"})
    assert made.status_code in (200, 201), made.text
    api_token = str(made.json()["token"])
    minted = client.post(
        "/api/agent/socket-token", headers={"authorization": f"Bearer {api_token}"}
    )
    assert minted.status_code == 200, minted.text
    with (
        client.websocket_connect("/ws/agent") as by_session,
        client.websocket_connect("/ws/agent") as by_token,
        client.websocket_connect("/ws/agent") as by_minted,
        client.websocket_connect("/ws/agent") as admins,
    ):
        assert hello(by_session, browser.socket_token())["type"] == "welcome"
        assert hello(by_token, api_token)["type"] == "welcome"
        assert hello(by_minted, str(minted.json()["token"]))["type"] == "welcome"
        assert hello(admins, acme.api_token)["type"] == "welcome"
        removed = client.delete(
            f"/api/members/{member_id}",
            params={"erase_account": "true" if erase else "false"},
            headers=admin_bearer,
        )
        assert removed.status_code == 204, removed.text
        codes = closed_before_a_later_event(client, acme, by_session, by_token, by_minted)
        assert codes == [CloseCode.SESSION_ENDED] * 3
        still_open(admins)  # only the removed member's sockets close

        # A refused removal (the last admin) ends nothing.
        last = client.delete(
            f"/api/members/{acme.admin_id}",
            params={"erase_account": "true" if erase else "false"},
            headers=admin_bearer,
        )
        assert last.status_code == 409 and last.json()["error"]["code"] == "last_admin"
        still_open(admins)
    assert browser.call("GET", "/api/me").status_code == 401
    with client.websocket_connect("/ws/agent") as again:
        refused = hello(again, api_token)
        assert refused["type"] == "error" and refused["code"] == "unauthenticated"


def test_a_password_reset_ends_every_session_its_socket_tokens_and_open_sockets(
    env: Env,
) -> None:
    client, acme, _ = env
    settings: Settings = client.app.state.services.settings  # type: ignore[attr-defined]
    _, email, password = add_member(settings, acme)
    old = Signed(client, email, password)
    old_id = old.session_id()
    spare = old.socket_token()  # minted before the reset, used after it
    letters = lambda: outbox(settings.data_dir)  # noqa: E731 (log-only mail)
    with client.websocket_connect("/ws/agent") as ws:
        assert hello(ws, old.socket_token())["type"] == "welcome"
        before = len(letters())
        asked = client.post("/api/password-reset", json={"email": email})
        assert asked.status_code == 202, asked.text
        token = token_in(wait_letter(letters, email, after=before), "reset")
        new_password = f"Velvet-Harbor-Quartz-{uuid.uuid4().hex[:6]}"
        done = client.post(
            "/api/password-reset/confirm", json={"token": token, "new_password": new_password}
        )
        assert done.status_code == 204, done.text
        assert closed_before_a_later_event(client, acme, ws) == [CloseCode.SESSION_ENDED]
    with client.websocket_connect("/ws/agent") as ws:
        refused = hello(ws, spare)
        assert refused["type"] == "error" and refused["code"] == "unauthenticated"
        assert closed_with(ws)[0] == CloseCode.UNAUTHENTICATED
    assert old.call("GET", "/api/me").status_code == 401
    new = Signed(client, email, new_password)
    listed = new.call("GET", "/api/me/sessions").json()["items"]
    assert [s["current"] for s in listed] == [True]  # the old session's row is gone
    assert old_id not in {s["id"] for s in listed}


def test_a_socket_token_works_once(env: Env) -> None:
    client, acme, _ = env
    browser = Signed(client, acme.email, acme.password)
    token = browser.socket_token()
    with client.websocket_connect("/ws/agent") as first:
        assert hello(first, token)["type"] == "welcome"
        with client.websocket_connect("/ws/agent") as replay:
            refused = hello(replay, token)
            assert refused["type"] == "error" and refused["code"] == "unauthenticated"
            assert closed_with(replay)[0] == CloseCode.UNAUTHENTICATED
        still_open(first)
    with client.websocket_connect("/ws/agent") as again:  # a fresh token per connection
        assert hello(again, browser.socket_token())["type"] == "welcome"


# Row-level security on the sessions table


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with own_database(request, tmp_path, "postgres") as settings:
        migrate(settings)
        yield settings


@pytest.mark.postgres
async def test_sessions_of_another_workspace_are_never_seen_nor_ended(pg: Settings) -> None:
    acme, globex = await make_tenant(pg, "acme"), await make_tenant(pg, "globex")
    engine = make_engine(pg)
    try:
        bus = MemoryBus(stream_maxlen=1000, dedupe_ttl_s=60)
        sessions = UserSessions(sessionmaker(engine), bus, max_age_s=3600)
        for tenant in (acme, globex):
            await sessions.open(tenant.admin_id, tenant.workspace_id, ip="::1", user_agent="t")
        maker = sessionmaker(engine)
        for tenant in (acme, globex):
            with tenancy.acting_for(tenant.workspace_id):
                async with maker() as s:  # no workspace filter: the policy is the filter
                    rows = (await s.exec(select(UserSession))).all()
            assert {r.workspace_id for r in rows} == {tenant.workspace_id}
        with tenancy.acting_for(acme.workspace_id):
            async with maker() as s, s.begin():
                gone = await s.exec(sa.delete(UserSession))  # every row it can see
            assert gone.rowcount == 1
            with pytest.raises(sa.exc.DBAPIError, match="row-level security"):
                async with maker() as s, s.begin():
                    s.add(
                        UserSession(
                            workspace_id=globex.workspace_id,
                            user_id=globex.admin_id,
                            secret_hash="0",
                        )
                    )
        assert len(await sessions.listing(globex.workspace_id, globex.admin_id)) == 1
        # Ending "all of a user's sessions" in one workspace never reaches another's.
        assert await sessions.end_all(acme.workspace_id, globex.admin_id) == 0
        assert len(await sessions.listing(globex.workspace_id, globex.admin_id)) == 1
    finally:
        await engine.dispose()


# Across processes: two `hub serve` nodes over Redis and Postgres


@pytest.fixture
def nodes(
    tmp_path: Path, postgres_database: str, redis_prefix: str
) -> Iterator[tuple[HubProcess, HubProcess, Tenant]]:
    env = base_env(
        DATABASE_URL=postgres_database + "_ss",
        REDIS_URL=REDIS_URL,
        HUB_REDIS_PREFIX=redis_prefix,
        HUB_SECRET_KEY="sessions-" + "k" * 40,
        HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    admin_sql(f'CREATE DATABASE "{env["DATABASE_URL"].rsplit("/", 1)[1]}"')
    processes: list[HubProcess] = []
    try:
        subprocess.run(
            [sys.executable, "-m", "hub.cli", "migrate"], env=env, check=True, capture_output=True
        )
        tenant = asyncio.run(make_tenant(Settings.from_env(env)))
        for name in ("a", "b"):
            port = free_port()
            processes.append(
                HubProcess(
                    ["serve", "--port", str(port)], env, port, tmp_path / f"web-{name}.log"
                ).start()
            )
        yield processes[0], processes[1], tenant
    finally:
        for process in processes:
            process.stop()
        admin_sql(f'DROP DATABASE IF EXISTS "{env["DATABASE_URL"].rsplit("/", 1)[1]}" WITH (FORCE)')


def _hello(ws: ClientConnection, token: str) -> dict[str, Any]:
    ws.send(json.dumps({"type": "hello", "token": token}))
    return dict(json.loads(ws.recv(timeout=10)))


def _close_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            ws.recv(timeout=10)
    return ws.close_code


def test_logout_on_one_node_closes_the_sessions_socket_on_another(
    nodes: tuple[HubProcess, HubProcess, Tenant],
) -> None:
    a, b, tenant = nodes
    login = httpx.post(
        a.base_url + "/api/auth/login",
        json={"email": tenant.email, "password": tenant.password},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    headers = {
        "cookie": f"hub_session={login.cookies['hub_session']}",
        "x-csrf-token": login.json()["csrf_token"],
    }
    with httpx.Client(headers=headers, timeout=10) as browser:
        token = browser.post(a.base_url + "/api/agent/socket-token").json()["token"]
        with connect(b.ws_url + "/ws/agent", open_timeout=10) as on_b:
            assert _hello(on_b, token)["type"] == "welcome"
            with connect(a.ws_url + "/ws/agent", open_timeout=10) as replay:  # the other node
                assert _hello(replay, token)["code"] == "unauthenticated"
                assert _close_code(replay) == CloseCode.UNAUTHENTICATED
            assert browser.post(a.base_url + "/api/auth/logout").status_code == 204
            assert _close_code(on_b) == CloseCode.SESSION_ENDED
        assert browser.get(b.base_url + "/api/me").status_code == 401
        assert browser.post(b.base_url + "/api/agent/socket-token").status_code == 401
