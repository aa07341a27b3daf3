"""One account, several workspaces: an invitation's acceptance asks for the second factor
sign-in would ask for, sign-in names a workspace, /api/me lists the caller's own, and a
session moves to another of them (POST /api/auth/switch). Letters go to a real SMTP server on
loopback; codes are computed with pyotp, as an authenticator app would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import STRONG_PASSWORD, Tenant, backends, prepare
from tests.mailbox import SmtpServer, join, smtp_server, token_in, wait_letter
from tests.test_invitations import smtp_settings

GOOD = STRONG_PASSWORD


@dataclass
class Env:
    client: TestClient
    acme: Tenant
    globex: Tenant
    initech: Tenant
    smtp: SmtpServer

    def bearer(self, tenant: Tenant) -> dict[str, str]:
        return {"authorization": f"Bearer {tenant.api_token}"}

    def invite(self, address: str, tenant: Tenant, role: str = "agent") -> str:
        before = len(self.smtp.letters())
        answer = self.client.post(
            "/api/members", json={"email": address, "role": role}, headers=self.bearer(tenant)
        )
        assert answer.status_code == 202, answer.text
        return token_in(wait_letter(self.smtp.letters, address, after=before), "invite")

    def accept(self, token: str, **body: Any) -> httpx.Response:
        self.client.cookies.clear()
        return self.client.post("/api/invitations/accept", json={"token": token, **body})

    def login(self, email: str, password: str, **more: Any) -> httpx.Response:
        self.client.cookies.clear()
        return self.client.post(
            "/api/auth/login", json={"email": email, "password": password, **more}
        )

    def require_two_factor(self, tenant: Tenant) -> None:
        changed = self.client.patch(
            "/api/workspace",
            json={"require_two_factor_for_admins": True},
            headers=self.bearer(tenant),
        )
        assert changed.status_code == 200, changed.text

    def audited(self, tenant: Tenant, action: str) -> list[dict[str, Any]]:
        answer = self.client.get(
            "/api/audit", params={"action": action}, headers=self.bearer(tenant)
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    acme, globex, initech = prepare(settings, "acme", "globex", "initech")
    with smtp_server() as smtp:
        settings = smtp_settings(settings, smtp)
        with TestClient(create_app(settings), base_url="https://hub.example") as client:
            yield Env(client, acme, globex, initech, smtp)


def error_of(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, str(answer.json()["error"]["code"])


def csrf_of(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200 and "csrf_token" in answer.json(), answer.text
    return {"x-csrf-token": answer.json()["csrf_token"]}


def steady() -> None:
    """Not within 3 s of a step's end, so that 'this step' and 'the one before' hold still."""
    while time.time() % 30 > 27:
        time.sleep(0.2)


def enrol(client: TestClient, csrf: dict[str, str]) -> pyotp.TOTP:
    """Turn two-factor on for the signed-in user, confirming with the previous step's code
    (so that the current step's is still unused)."""
    setup = client.post("/api/me/two-factor/setup", headers=csrf)
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    steady()
    confirmed = client.post(
        "/api/me/two-factor/confirm", json={"code": totp.at(time.time() - 30)}, headers=csrf
    )
    assert confirmed.status_code == 200, confirmed.text
    return totp


def emails(env: Env, tenant: Tenant) -> set[str]:
    roster = env.client.get("/api/members", headers=env.bearer(tenant)).json()["items"]
    return {m["email"] for m in roster}


# Accepting an invitation asks for what signing in asks for


def test_a_new_admin_of_a_workspace_that_requires_two_factor_enrols_before_a_session(
    env: Env,
) -> None:
    env.require_two_factor(env.acme)
    address = f"new-admin-{uuid.uuid4().hex[:6]}@x.example"
    token = env.invite(address, env.acme, role="admin")
    accepted = env.accept(token, name="New Admin", password=GOOD)
    assert accepted.status_code == 200, accepted.text
    challenge = accepted.json()
    assert challenge["two_factor_setup_required"] is True and "csrf_token" not in challenge
    assert not env.client.cookies.get("hub_session")
    assert env.client.get("/api/me").status_code == 401
    assert address in emails(env, env.acme)  # the membership stays
    again = env.accept(token, name="New Admin", password=GOOD)
    assert error_of(again) == (410, "invitation_invalid")

    # Enrolment with the ticket signs in, in the invitation's workspace.
    setup = env.client.post("/api/me/two-factor/setup", json={"ticket": challenge["ticket"]})
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    confirmed = env.client.post(
        "/api/me/two-factor/confirm", json={"ticket": challenge["ticket"], "code": totp.now()}
    )
    assert confirmed.status_code == 200, confirmed.text
    user = confirmed.json()["user"]
    assert user["workspace_id"] == str(env.acme.workspace_id) and user["role"] == "admin"
    assert env.client.get("/api/me").json()["user"]["name"] == "New Admin"


def test_an_account_with_two_factor_on_gives_a_code_to_accept(env: Env) -> None:
    client = env.client
    totp = enrol(client, csrf_of(env.login(env.globex.email, env.globex.password)))
    token = env.invite(env.globex.email, env.acme)
    wrong = env.accept(token, password="not-their-password-1")
    assert wrong.status_code == 401
    accepted = env.accept(token, password=env.globex.password)
    assert accepted.status_code == 200, accepted.text
    challenge = accepted.json()
    assert challenge["two_factor_required"] is True and "csrf_token" not in challenge
    assert not client.cookies.get("hub_session")
    assert client.get("/api/me").status_code == 401
    assert env.globex.email in emails(env, env.acme)

    signed = client.post(
        "/api/auth/login/two-factor", json={"ticket": challenge["ticket"], "code": totp.now()}
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["workspace_id"] == str(env.acme.workspace_id)
    me = client.get("/api/me")
    assert me.status_code == 200 and me.json()["user"]["workspace_id"] == str(env.acme.workspace_id)


# Several workspaces


def test_sign_in_names_a_workspace_me_lists_mine_and_a_session_switches(env: Env) -> None:
    client = env.client
    address = f"two-places-{uuid.uuid4().hex[:6]}@x.example"
    join(client, env.bearer(env.acme), address, "Two Places", GOOD, letters=env.smtp.letters)
    token = env.invite(address, env.globex, role="admin")
    assert env.accept(token, password=GOOD).status_code == 200

    # Without a workspace: the oldest membership, as before. With one: that one.
    first = env.login(address, GOOD)
    assert first.json()["user"]["workspace_id"] == str(env.acme.workspace_id)
    named = env.login(address, GOOD, workspace_id=str(env.globex.workspace_id))
    assert named.status_code == 200, named.text
    assert named.json()["user"] | {"user_id": None} == {
        "user_id": None,
        "workspace_id": str(env.globex.workspace_id),
        "role": "admin",
        "name": "Two Places",
    }
    for elsewhere in (env.initech.workspace_id, uuid.uuid4()):
        refused = env.login(address, GOOD, workspace_id=str(elsewhere))
        assert error_of(refused) == (404, "not_found")
        assert not client.cookies.get("hub_session")
    wrong = env.login(address, "not-the-password-1", workspace_id=str(env.globex.workspace_id))
    assert wrong.status_code == 401

    # /api/me lists the caller's own workspaces, and no other.
    csrf = csrf_of(env.login(address, GOOD))
    me = client.get("/api/me").json()
    assert me["workspaces"] == [
        {"id": str(env.acme.workspace_id), "name": "acme", "role": "agent"},
        {"id": str(env.globex.workspace_id), "name": "globex", "role": "admin"},
    ]
    alone = client.get("/api/me", headers=env.bearer(env.initech)).json()["workspaces"]
    assert alone == [{"id": str(env.initech.workspace_id), "name": "initech", "role": "admin"}]

    # Switching: this session ends, one in the other workspace begins.
    old = client.cookies.get("hub_session")
    assert old
    no_csrf = client.post("/api/auth/switch", json={"workspace_id": str(env.globex.workspace_id)})
    assert no_csrf.status_code == 403
    for elsewhere in (env.initech.workspace_id, uuid.uuid4()):
        refused = client.post(
            "/api/auth/switch", json={"workspace_id": str(elsewhere)}, headers=csrf
        )
        assert error_of(refused) == (404, "not_found")
        assert client.get("/api/me").status_code == 200  # the session goes on
    switched = client.post(
        "/api/auth/switch", json={"workspace_id": str(env.globex.workspace_id)}, headers=csrf
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["user"]["workspace_id"] == str(env.globex.workspace_id)
    assert switched.json()["user"]["role"] == "admin"
    new = client.cookies.get("hub_session")
    assert new and new != old
    me = client.get("/api/me").json()
    assert me["user"]["workspace_id"] == str(env.globex.workspace_id)
    assert client.get("/api/invitations").status_code == 200  # an admin here
    stale = client.get("/api/me", headers={"cookie": f"hub_session={old}"})
    assert stale.status_code == 401
    for tenant, direction in ((env.acme, "out"), (env.globex, "in")):
        [row] = env.audited(tenant, "session.switched")
        assert row["detail"] == {"direction": direction}
        other = env.globex if tenant is env.acme else env.acme
        assert str(other.workspace_id) not in str(row)

    # Back again, with the new session's CSRF token; a bearer token cannot switch.
    back = client.post(
        "/api/auth/switch",
        json={"workspace_id": str(env.acme.workspace_id)},
        headers=csrf_of(switched),
    )
    assert back.status_code == 200 and back.json()["user"]["role"] == "agent"
    client.cookies.clear()
    bearer = client.post(
        "/api/auth/switch",
        json={"workspace_id": str(env.acme.workspace_id)},
        headers=env.bearer(env.globex),
    )
    assert bearer.status_code == 401


def test_switching_to_a_workspace_that_requires_two_factor_of_its_admins(env: Env) -> None:
    client = env.client
    address = f"switcher-{uuid.uuid4().hex[:6]}@x.example"
    join(client, env.bearer(env.acme), address, "Switcher", GOOD, letters=env.smtp.letters)
    assert env.accept(env.invite(address, env.globex, role="admin"), password=GOOD).status_code
    env.require_two_factor(env.globex)

    # An admin there without two-factor enrols first; this session goes on meanwhile.
    csrf = csrf_of(env.login(address, GOOD))
    target = {"workspace_id": str(env.globex.workspace_id)}
    challenge = client.post("/api/auth/switch", json=target, headers=csrf)
    assert challenge.status_code == 200, challenge.text
    assert challenge.json()["two_factor_setup_required"] is True
    assert "csrf_token" not in challenge.json()
    me = client.get("/api/me")
    assert me.status_code == 200 and me.json()["user"]["workspace_id"] == str(env.acme.workspace_id)
    assert env.audited(env.globex, "session.switched") == []

    # With two-factor on, the switch asks for no code again: it was given at sign-in.
    totp = enrol(client, csrf)
    signing = env.login(address, GOOD)
    assert signing.json()["two_factor_required"] is True
    signed = client.post(
        "/api/auth/login/two-factor", json={"ticket": signing.json()["ticket"], "code": totp.now()}
    )
    switched = client.post("/api/auth/switch", json=target, headers=csrf_of(signed))
    assert switched.status_code == 200, switched.text
    assert switched.json()["user"]["workspace_id"] == str(env.globex.workspace_id)
    assert client.get("/api/me").json()["user"]["role"] == "admin"
