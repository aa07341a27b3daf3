"""Two-factor sign-in (issue 23, item 3) through the app: enrolment, the code step of signing
in, recovery codes, replay, lockout, turning it off, and the workspace's requirement for
admins. Codes are computed with pyotp from the secret the set-up answered, as an
authenticator app would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from starlette.testclient import TestClient

from hub.accounts import lockout
from hub.settings import Settings
from hub.storage.engine import make_engine, sessionmaker
from hub.storage.models import Membership, SQLModel
from hub.storage.store import Store
from hub.storage.vault import Vault
from hub.web.app import create_app
from tests.helpers import Tenant, prepare
from tests.servers import base_env
from tests.test_sessions import Signed, closed_before_a_later_event, hello, still_open


@dataclass
class Env:
    client: TestClient
    settings: Settings
    acme: Tenant
    globex: Tenant

    def member(self, tenant: Tenant, role: str) -> tuple[str, str]:
        """A new member of the tenant's workspace: (e-mail, password)."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@{tenant.email.split('@')[1]}"
        password = "Pw-" + uuid.uuid4().hex

        async def add() -> None:
            engine = make_engine(self.settings)
            try:
                await Store(sessionmaker(engine)).add_member(
                    tenant.workspace_id, email, password, role
                )
            finally:
                await engine.dispose()

        asyncio.run(add())
        return email, password


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        settings = settings.with_overrides(
            database_url="postgresql+asyncpg://" + url.split("://", 1)[1]
        )
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield Env(client, settings, acme, globex)


@pytest.fixture
def app_env(settings: Settings) -> Iterator[Env]:
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield Env(client, settings, acme, globex)


def code_of(answer: httpx.Response) -> str:
    return str(answer.json()["error"]["code"])


def sign_in(client: TestClient, email: str, password: str) -> httpx.Response:
    client.cookies.clear()
    return client.post("/api/auth/login", json={"email": email, "password": password})


def signed_in(client: TestClient, email: str, password: str) -> dict[str, str]:
    """Sign in without a second factor; the CSRF header for the session."""
    answer = sign_in(client, email, password)
    assert answer.status_code == 200 and "csrf_token" in answer.json(), answer.text
    return {"x-csrf-token": answer.json()["csrf_token"]}


def steady() -> None:
    """Not within 3 s of a step's end, so that 'this step' and 'the one before' hold still."""
    while time.time() % 30 > 27:
        time.sleep(0.2)


def enrol(client: TestClient, csrf: dict[str, str]) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol the signed-in user, confirming with the previous step's code (so that the
    current step's is still unused for the test's sign-in)."""
    setup = client.post("/api/me/two-factor/setup", headers=csrf)
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    steady()
    confirmed = client.post(
        "/api/me/two-factor/confirm",
        json={"code": totp.at(time.time() - 30)},
        headers=csrf,
    )
    assert confirmed.status_code == 200, confirmed.text
    return totp, list(confirmed.json()["recovery_codes"])


def audited(client: TestClient, tenant: Tenant, action: str) -> list[dict[str, Any]]:
    answer = client.get(
        "/api/audit",
        params={"action": action},
        headers={"authorization": f"Bearer {tenant.api_token}"},
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_enrol_then_sign_in_needs_the_code_and_a_code_works_once(env: Env) -> None:
    client, acme = env.client, env.acme
    csrf = signed_in(client, acme.email, acme.password)
    assert client.get("/api/me/two-factor").json()["enabled"] is False

    setup = client.post("/api/me/two-factor/setup", headers=csrf)
    assert setup.status_code == 200, setup.text
    body = setup.json()
    secret = body["secret"]
    assert body["otpauth_uri"].startswith("otpauth://totp/SosyoCRM:")
    assert f"secret={secret}" in body["otpauth_uri"]
    assert body["qr_svg"].lstrip().startswith("<svg") and "<script" not in body["qr_svg"]
    assert setup.headers["cache-control"] == "no-store"

    # The pending secret is stored sealed, in a column key rotation finds.
    sealed_columns = [
        f"{table.name}.{column.name}"
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if column.info.get("sealed")
    ]
    assert "users.totp_secret" in sealed_columns
    stored = _scalar(env.settings, "SELECT totp_secret FROM users WHERE email = :e", e=acme.email)
    assert secret not in stored
    assert Vault(env.settings.encryption_keys).open(stored) == {"totp": secret}

    totp = pyotp.TOTP(secret)
    wrong = client.post("/api/me/two-factor/confirm", json={"code": wrong_code(totp)}, headers=csrf)
    assert wrong.status_code == 401 and code_of(wrong) == "two_factor_failed"
    assert client.get("/api/me/two-factor").json()["enabled"] is False
    steady()
    confirmed = client.post(
        "/api/me/two-factor/confirm", json={"code": totp.at(time.time() - 30)}, headers=csrf
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    status = client.get("/api/me/two-factor").json()
    assert status["enabled"] is True and status["recovery_codes_left"] == 10
    hashes = _column(env.settings, "SELECT code_hash FROM recovery_codes")
    assert len(hashes) == 10 and all(len(h) == 64 for h in hashes)
    assert not any(code in h or code.replace("-", "") in h for code in codes for h in hashes)
    assert audited(client, acme, "two_factor.enabled")

    # The password alone gives no session, only a ticket for the code step.
    first = sign_in(client, acme.email, acme.password)
    assert first.status_code == 200, first.text
    assert first.json()["two_factor_required"] is True and "csrf_token" not in first.json()
    assert "hub_session" not in first.cookies and not client.cookies.get("hub_session")
    assert client.get("/api/me").status_code == 401
    ticket = first.json()["ticket"]

    # The code the confirmation used is spent; the current one signs in.
    replay = client.post(
        "/api/auth/login/two-factor", json={"ticket": ticket, "code": totp.at(time.time() - 30)}
    )
    assert replay.status_code == 401 and code_of(replay) == "two_factor_failed"
    done = client.post("/api/auth/login/two-factor", json={"ticket": ticket, "code": totp.now()})
    assert done.status_code == 200, done.text
    assert done.json()["user"]["user_id"] == str(acme.admin_id)
    assert client.get("/api/me").status_code == 200  # the session asks no more

    # The same code, and the same ticket, are refused a second time.
    again = sign_in(client, acme.email, acme.password).json()["ticket"]
    reused = client.post("/api/auth/login/two-factor", json={"ticket": again, "code": totp.now()})
    assert reused.status_code == 401 and code_of(reused) == "two_factor_failed"
    spent = client.post("/api/auth/login/two-factor", json={"ticket": ticket, "code": "123456"})
    assert spent.status_code == 401 and code_of(spent) == "ticket_invalid"
    assert [r["detail"] for r in audited(client, acme, "login.two_factor_failed")] == [
        {"step": "sign_in"},
        {"step": "sign_in"},
        {"step": "confirm"},
    ]

    # API tokens are not asked for a code, and cannot change the second factor.
    bearer = {"authorization": f"Bearer {acme.api_token}"}
    client.cookies.clear()
    assert client.get("/api/me", headers=bearer).status_code == 200
    assert client.post("/api/me/two-factor/setup", headers=bearer).status_code == 401


def _column(settings: Settings, sql: str, **params: Any) -> list[str]:
    async def read() -> list[str]:
        engine = make_engine(settings)
        try:
            async with engine.connect() as conn:
                return [str(r[0]) for r in await conn.execute(sa.text(sql), params)]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _scalar(settings: Settings, sql: str, **params: Any) -> str:
    [value] = _column(settings, sql, **params)
    return value


def wrong_code(totp: pyotp.TOTP) -> str:
    """Six digits that are neither this step's code nor the one before's."""
    now = time.time()
    right = {totp.at(now), totp.at(now - 30), totp.at(now + 5), totp.at(now - 25)}
    return next(c for c in ("111111", "222222", "333333", "444444", "555555") if c not in right)


def test_wrong_codes_count_toward_the_lockout(app_env: Env) -> None:
    client, acme = app_env.client, app_env.acme
    totp, _ = enrol(client, signed_in(client, acme.email, acme.password))
    ticket = sign_in(client, acme.email, acme.password).json()["ticket"]
    wrong = wrong_code(totp)
    for _ in range(lockout.LOCK_AFTER):
        refused = client.post("/api/auth/login/two-factor", json={"ticket": ticket, "code": wrong})
        assert refused.status_code == 401 and code_of(refused) == "two_factor_failed"
    locked = client.post("/api/auth/login/two-factor", json={"ticket": ticket, "code": totp.now()})
    assert locked.status_code == 429 and code_of(locked) == "too_many_attempts"
    assert sign_in(client, acme.email, acme.password).status_code == 429
    assert len(audited(client, acme, "login.two_factor_failed")) == lockout.LOCK_AFTER


def test_a_recovery_code_signs_in_once(app_env: Env) -> None:
    client, acme = app_env.client, app_env.acme
    _, codes = enrol(client, signed_in(client, acme.email, acme.password))
    ticket = sign_in(client, acme.email, acme.password).json()["ticket"]
    typed = codes[3].upper().replace("-", " ")  # as someone may type it
    used = client.post(
        "/api/auth/login/two-factor", json={"ticket": ticket, "recovery_code": typed}
    )
    assert used.status_code == 200, used.text
    csrf = {"x-csrf-token": used.json()["csrf_token"]}
    assert client.get("/api/me/two-factor").json()["recovery_codes_left"] == 9
    assert audited(client, acme, "two_factor.recovery_code_used")

    ticket = sign_in(client, acme.email, acme.password).json()["ticket"]
    again = client.post(
        "/api/auth/login/two-factor", json={"ticket": ticket, "recovery_code": codes[3]}
    )
    assert again.status_code == 401 and code_of(again) == "two_factor_failed"
    foreign = client.post(  # neither another user's code nor a made-up one
        "/api/auth/login/two-factor",
        json={"ticket": ticket, "recovery_code": "abcd-efgh-ijkm-npqr"},
    )
    assert foreign.status_code == 401
    both = client.post(
        "/api/auth/login/two-factor",
        json={"ticket": ticket, "code": "123456", "recovery_code": codes[4]},
    )
    assert both.status_code == 400 and code_of(both) == "bad_request"

    # New codes (with a code) void the old ones.
    fine = client.post(
        "/api/auth/login/two-factor", json={"ticket": ticket, "recovery_code": codes[5]}
    )
    assert fine.status_code == 200
    csrf = {"x-csrf-token": fine.json()["csrf_token"]}
    fresh = client.post(
        "/api/me/two-factor/recovery-codes", json={"recovery_code": codes[6]}, headers=csrf
    )
    assert fresh.status_code == 200, fresh.text
    new_codes = fresh.json()["recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    ticket = sign_in(client, acme.email, acme.password).json()["ticket"]
    old = client.post(
        "/api/auth/login/two-factor", json={"ticket": ticket, "recovery_code": codes[7]}
    )
    assert old.status_code == 401
    new = client.post(
        "/api/auth/login/two-factor", json={"ticket": ticket, "recovery_code": new_codes[0]}
    )
    assert new.status_code == 200


def test_turning_it_off_needs_the_password_and_a_code(app_env: Env) -> None:
    client, acme = app_env.client, app_env.acme
    csrf = signed_in(client, acme.email, acme.password)
    totp, _ = enrol(client, csrf)
    no_password = client.request(
        "DELETE",
        "/api/me/two-factor",
        json={"password": "wrong-" + acme.password, "code": totp.now()},
        headers=csrf,
    )
    assert no_password.status_code == 401
    no_csrf = client.request(
        "DELETE", "/api/me/two-factor", json={"password": acme.password, "code": totp.now()}
    )
    assert no_csrf.status_code == 403 and code_of(no_csrf) == "csrf_failed"
    off = client.request(
        "DELETE",
        "/api/me/two-factor",
        json={"password": acme.password, "code": totp.now()},
        headers=csrf,
    )
    assert off.status_code == 204, off.text
    assert client.get("/api/me/two-factor").json() == {
        "enabled": False,
        "enabled_at": None,
        "recovery_codes_left": 0,
        "required": False,
    }
    assert audited(client, acme, "two_factor.disabled")
    assert "csrf_token" in sign_in(client, acme.email, acme.password).json()  # a session again
    assert _scalar(app_env.settings, "SELECT count(*) FROM recovery_codes") == "0"


def test_turning_it_on_ends_the_other_sessions_and_their_sockets(env: Env) -> None:
    """A session begun with the password alone, elsewhere (perhaps by someone who has it), does
    not outlive the owner's turning two-factor on; the session that turned it on goes on."""
    client, acme = env.client, env.acme
    email, password = env.member(acme, "agent")
    elsewhere = Signed(client, email, password)
    with (
        client.websocket_connect("/ws/agent") as theirs,
        client.websocket_connect("/ws/agent") as mine,
    ):
        assert hello(theirs, elsewhere.socket_token())["type"] == "welcome"
        spare = elsewhere.socket_token()  # minted before, used after
        csrf = signed_in(client, email, password)
        token = client.post("/api/agent/socket-token", headers=csrf)
        assert token.status_code == 200, token.text
        assert hello(mine, token.json()["token"])["type"] == "welcome"
        enrol(client, csrf)
        assert closed_before_a_later_event(client, acme, theirs) == [4410]
        still_open(mine)
    with client.websocket_connect("/ws/agent") as late:
        assert hello(late, spare)["code"] == "unauthenticated"
    assert client.get("/api/me").status_code == 200
    [current] = client.get("/api/me/sessions").json()["items"]
    assert current["current"] is True
    [row] = audited(client, acme, "two_factor.enabled")
    assert row["detail"] == {"sessions_ended": 1}
    gone = elsewhere.call("GET", "/api/me")
    assert gone.status_code == 401 and code_of(gone) == "unauthenticated"


def test_an_admin_cannot_turn_it_off_while_the_workspace_requires_it(env: Env) -> None:
    client, acme = env.client, env.acme
    csrf = signed_in(client, acme.email, acme.password)
    _, codes = enrol(client, csrf)
    required = client.patch(
        "/api/workspace", json={"require_two_factor_for_admins": True}, headers=csrf
    )
    assert required.status_code == 200, required.text
    off = {"password": acme.password, "recovery_code": codes[0]}
    refused = client.request("DELETE", "/api/me/two-factor", json=off, headers=csrf)
    assert refused.status_code == 409 and code_of(refused) == "two_factor_required"
    status = client.get("/api/me/two-factor").json()
    assert status["enabled"] is True and status["required"] is True
    assert status["recovery_codes_left"] == 10  # refused before the code was looked at
    assert not audited(client, acme, "two_factor.disabled")
    own = f"/api/members/{acme.admin_id}/two-factor"  # nor by the admins' reset, on oneself
    for headers in (csrf, {"authorization": f"Bearer {acme.api_token}"}):
        assert client.delete(own, headers=headers).status_code == 403
    assert client.get("/api/me/two-factor").json()["enabled"] is True
    client.patch("/api/workspace", json={"require_two_factor_for_admins": False}, headers=csrf)
    done = client.request("DELETE", "/api/me/two-factor", json=off, headers=csrf)
    assert done.status_code == 204, done.text

    # One account, one second factor: an agent here who is an admin of a workspace that
    # requires it keeps it too.
    agent_email, agent_password = env.member(acme, "agent")
    agent_csrf = signed_in(client, agent_email, agent_password)
    _, agent_codes = enrol(client, agent_csrf)
    agent_id = _scalar(env.settings, "SELECT id FROM users WHERE email = :e", e=agent_email)
    _join(env.settings, env.globex.workspace_id, uuid.UUID(agent_id), role="admin")
    globex = {"authorization": f"Bearer {env.globex.api_token}"}
    assert (
        client.patch(
            "/api/workspace", json={"require_two_factor_for_admins": True}, headers=globex
        ).status_code
        == 200
    )
    off = {"password": agent_password, "recovery_code": agent_codes[0]}
    refused = client.request("DELETE", "/api/me/two-factor", json=off, headers=agent_csrf)
    assert refused.status_code == 409 and code_of(refused) == "two_factor_required"
    assert client.get("/api/me/two-factor").json()["required"] is False  # not here

    # Once no workspace of theirs requires it, it turns off.
    client.patch("/api/workspace", json={"require_two_factor_for_admins": False}, headers=globex)
    done = client.request("DELETE", "/api/me/two-factor", json=off, headers=agent_csrf)
    assert done.status_code == 204, done.text


def test_admins_enrol_at_sign_in_when_the_workspace_requires_it(env: Env) -> None:
    client, acme = env.client, env.acme
    admin_email, admin_password = env.member(acme, "admin")
    agent_email, agent_password = env.member(acme, "agent")
    csrf = signed_in(client, acme.email, acme.password)
    changed = client.patch(
        "/api/workspace", json={"require_two_factor_for_admins": True}, headers=csrf
    )
    assert changed.status_code == 200 and changed.json()["require_two_factor_for_admins"] is True
    assert audited(client, acme, "workspace.two_factor_changed")

    # An agent is not affected; nor is another workspace's admin.
    assert "csrf_token" in sign_in(client, agent_email, agent_password).json()
    assert "csrf_token" in sign_in(client, env.globex.email, env.globex.password).json()

    forced = sign_in(client, admin_email, admin_password)
    assert forced.status_code == 200, forced.text
    assert forced.json()["two_factor_setup_required"] is True
    assert not client.cookies.get("hub_session")
    ticket = forced.json()["ticket"]
    # The ticket enrols, and does nothing else.
    assert client.get("/api/me").status_code == 401
    not_a_code_ticket = client.post(
        "/api/auth/login/two-factor", json={"ticket": ticket, "code": "123456"}
    )
    assert not_a_code_ticket.status_code == 401 and code_of(not_a_code_ticket) == "ticket_invalid"
    setup = client.post("/api/me/two-factor/setup", json={"ticket": ticket})
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    confirmed = client.post(
        "/api/me/two-factor/confirm", json={"ticket": ticket, "code": totp.now()}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    assert confirmed.json()["user"]["role"] == "admin" and confirmed.json()["csrf_token"]
    me = client.get("/api/me")
    assert me.status_code == 200 and me.json()["user"]["name"] == admin_email.split("@")[0]
    reused = client.post("/api/me/two-factor/setup", json={"ticket": ticket})
    assert reused.status_code == 401 and code_of(reused) == "ticket_invalid"

    # From now on this admin signs in with a code, like anyone with two-factor on.
    assert sign_in(client, admin_email, admin_password).json()["two_factor_required"] is True
    members = client.get("/api/members", headers={"authorization": f"Bearer {acme.api_token}"})
    flags = {m["email"]: m["two_factor"] for m in members.json()["items"]}
    assert flags[admin_email] is True and flags[agent_email] is False


def test_an_admin_resets_a_members_second_factor(env: Env) -> None:
    client, acme = env.client, env.acme
    agent_email, agent_password = env.member(acme, "agent")
    enrol(client, signed_in(client, agent_email, agent_password))
    assert sign_in(client, agent_email, agent_password).json()["two_factor_required"] is True
    bearer = {"authorization": f"Bearer {acme.api_token}"}
    members = client.get("/api/members", headers=bearer).json()["items"]
    [agent] = [m for m in members if m["email"] == agent_email]
    foreign = client.delete(
        f"/api/members/{agent['id']}/two-factor",
        headers={"authorization": f"Bearer {env.globex.api_token}"},
    )
    assert foreign.status_code == 404
    reset = client.delete(f"/api/members/{agent['id']}/two-factor", headers=bearer)
    assert reset.status_code == 204, reset.text
    assert [r["target_id"] for r in audited(client, acme, "two_factor.reset")] == [agent["id"]]
    assert "csrf_token" in sign_in(client, agent_email, agent_password).json()
    again = client.delete(f"/api/members/{agent['id']}/two-factor", headers=bearer)
    assert again.status_code == 409 and code_of(again) == "two_factor_off"

    # Once the account is in another workspace too, no one workspace's admin resets it.
    enrol(client, signed_in(client, agent_email, agent_password))
    _join(env.settings, env.globex.workspace_id, uuid.UUID(agent["id"]))
    shared = client.delete(f"/api/members/{agent['id']}/two-factor", headers=bearer)
    assert shared.status_code == 409 and code_of(shared) == "account_shared"
    assert sign_in(client, agent_email, agent_password).json()["two_factor_required"] is True


def _join(
    settings: Settings, workspace_id: uuid.UUID, user_id: uuid.UUID, role: str = "agent"
) -> None:
    """Make an existing account a member of another workspace too."""

    async def write() -> None:
        engine = make_engine(settings)
        try:
            async with sessionmaker(engine)() as s, s.begin():
                s.add(Membership(workspace_id=workspace_id, user_id=user_id, role=role))
        finally:
            await engine.dispose()

    asyncio.run(write())


def test_the_operator_resets_an_accounts_second_factor(app_env: Env) -> None:
    """`hub reset-two-factor`: for an account in several workspaces, which no one workspace's
    admin may reset."""
    client, acme, settings = app_env.client, app_env.acme, app_env.settings
    enrol(client, signed_in(client, acme.email, acme.password))
    env = base_env(
        HUB_SECRET_KEY=settings.secret_key,
        HUB_ENCRYPTION_KEYS=",".join(settings.encryption_keys),
        HUB_DATA_DIR=str(settings.data_dir),
    )

    def hub(email: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", "reset-two-factor", "--email", email],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = hub(acme.email.upper())
    assert done.returncode == 0 and "off for that account" in done.stdout, done.stderr
    assert "csrf_token" in sign_in(client, acme.email, acme.password).json()
    assert hub(acme.email).stdout.startswith("That account had no second factor")
    unknown = hub("nobody@nowhere.example")
    assert unknown.returncode == 2 and "No account" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_a_ticket_is_refused_once_expired_or_when_it_is_another_kind(app_env: Env) -> None:
    """Tickets last 5 minutes; a session cookie, a forced enrolment's ticket or one signed with
    another key is no sign-in ticket."""
    client, acme, settings = app_env.client, app_env.acme, app_env.settings
    totp, _ = enrol(client, signed_in(client, acme.email, acme.password))
    signed_in(client, app_env.globex.email, app_env.globex.password)
    session = client.cookies["hub_session"]  # another workspace's session cookie
    ticket = sign_in(client, acme.email, acme.password).json()["ticket"]
    _, payload = URLSafeTimedSerializer("x").loads_unsafe(ticket)

    class FiveMinutesAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 301

    def forged(key: str, salt: str, signer: type[TimestampSigner] = TimestampSigner) -> str:
        return str(URLSafeTimedSerializer(key, salt=salt, signer=signer).dumps(payload))

    for other in (
        forged(settings.secret_key, "hub.two-factor-ticket", FiveMinutesAgo),
        forged(settings.secret_key, "hub.two-factor-setup-ticket"),
        forged("another-secret-key-" + "y" * 40, "hub.two-factor-ticket"),
        session,
    ):
        step = {"ticket": other, "code": totp.now()}
        refused = client.post("/api/auth/login/two-factor", json=step)
        assert refused.status_code == 401 and code_of(refused) == "ticket_invalid", refused.text
    fresh = forged(settings.secret_key, "hub.two-factor-ticket")  # the same, signed now
    done = client.post("/api/auth/login/two-factor", json={"ticket": fresh, "code": totp.now()})
    assert done.status_code == 200, done.text
