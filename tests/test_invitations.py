"""Invitations, password reset and erasing a member's account (hub.accounts.invitations,
hub.accounts.resets, hub.accounts.members): letters go to a real SMTP server on loopback
(aiosmtpd), and the tests follow their links through the API, on SQLite and on Postgres."""

from __future__ import annotations

import asyncio
import logging
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.storage.engine import make_engine
from hub.web.app import create_app
from tests.helpers import OTHER_STRONG_PASSWORD, STRONG_PASSWORD, Tenant, backends, prepare
from tests.mailbox import SmtpServer, join, outbox, smtp_server, text_of, token_in, wait_letter

GOOD = STRONG_PASSWORD
BETTER = OTHER_STRONG_PASSWORD


@dataclass
class Env:
    client: TestClient
    acme: Tenant
    globex: Tenant
    smtp: SmtpServer
    settings: Settings

    def admin(self, tenant: Tenant | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {(tenant or self.acme).api_token}"}

    def invite(self, address: str, role: str = "agent", tenant: Tenant | None = None) -> str:
        """Invite and answer the token of the letter that arrived."""
        before = len(self.smtp.letters())
        answer = self.client.post(
            "/api/members", json={"email": address, "role": role}, headers=self.admin(tenant)
        )
        assert answer.status_code == 202, answer.text
        return token_in(wait_letter(self.smtp.letters, address.lower(), after=before), "invite")

    def accept(self, token: str, **body: Any) -> httpx.Response:
        self.client.cookies.clear()
        answer = self.client.post("/api/invitations/accept", json={"token": token, **body})
        return answer


def smtp_settings(settings: Settings, smtp: SmtpServer, **more: object) -> Settings:
    return settings.with_overrides(
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_tls="none",
        mail_from="SosyoCRM <hub@hub.example>",
        public_url="https://hub.example",
        **more,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    acme, globex = prepare(settings, "acme", "globex")
    with smtp_server() as smtp:
        settings = smtp_settings(settings, smtp)
        with TestClient(create_app(settings), base_url="https://hub.example") as client:
            yield Env(client, acme, globex, smtp, settings)


def error_code(answer: httpx.Response) -> str:
    return str(answer.json()["error"]["code"])


def users_rows(settings: Settings) -> list[dict[str, Any]]:
    return every_row(settings)["users"]


def every_row(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the database, by table (as the connecting role)."""

    async def read() -> dict[str, list[dict[str, Any]]]:
        engine = make_engine(settings)
        try:
            async with engine.connect() as conn:
                names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
                found = {}
                for name in names:
                    rows = await conn.execute(sa.select(sa.text("*")).select_from(sa.table(name)))
                    found[name] = [dict(r._mapping) for r in rows]
                return found
        finally:
            await engine.dispose()

    return asyncio.run(read())


def tables_naming(settings: Settings, *texts: str) -> dict[str, list[str]]:
    """The tables holding any of `texts` in a row, with those rows as text."""
    found: dict[str, list[str]] = {}
    for name, rows in every_row(settings).items():
        hits = [str(r) for r in rows if any(t in str(r) for t in texts)]
        if hits:
            found[name] = hits
    return found


def test_an_invited_person_follows_the_link_chooses_a_password_and_is_signed_in(
    env: Env,
) -> None:
    address = f"New.Person-{uuid.uuid4().hex[:6]}@Example.com"
    before = len(env.smtp.letters())
    answer = env.client.post(
        "/api/members", json={"email": address, "role": "agent"}, headers=env.admin()
    )
    assert answer.status_code == 202, answer.text
    invitation = answer.json()
    assert set(invitation) == {"id", "email", "role", "invited_by", "created_at", "expires_at"}
    assert invitation["email"] == address.lower()
    letter = wait_letter(env.smtp.letters, address.lower(), after=before)
    assert letter["From"] == "SosyoCRM <hub@hub.example>"
    assert letter["Subject"] == "You are invited to acme on SosyoCRM"
    assert "acme admin invited you" in text_of(letter)
    token = token_in(letter, "invite")
    assert f"https://hub.example/invite#{token}" in text_of(letter)
    _, envelope_to, _ = env.smtp.received[-1]
    assert envelope_to == [address.lower()]

    pending = env.client.get("/api/invitations", headers=env.admin()).json()["items"]
    assert [p["id"] for p in pending] == [invitation["id"]]
    assert env.client.get("/api/invitations", headers=env.admin(env.globex)).json() == {"items": []}
    # Nobody is a member before accepting.
    roster = env.client.get("/api/members", headers=env.admin()).json()["items"]
    assert address.lower() not in {m["email"] for m in roster}

    opened = env.client.post("/api/invitations/open", json={"token": token})
    assert opened.status_code == 200, opened.text
    assert opened.json() | {"expires_at": None} == {
        "workspace_name": "acme",
        "email": address.lower(),
        "role": "agent",
        "has_account": False,
        "expires_at": None,
    }
    weak = env.accept(token, name="Nur", password="aaaaaaaaaaaa")
    assert weak.status_code == 400 and error_code(weak) == "weak_password"
    nameless = env.accept(token, password=GOOD)
    assert nameless.status_code == 400 and error_code(nameless) == "bad_request"

    accepted = env.accept(token, name="Nur Yılmaz", password=GOOD)
    assert accepted.status_code == 200, accepted.text
    user = accepted.json()["user"]
    assert user["workspace_id"] == str(env.acme.workspace_id) and user["role"] == "agent"
    me = env.client.get("/api/me")  # signed in by the cookie the acceptance set
    assert me.status_code == 200 and me.json()["user"]["name"] == "Nur Yılmaz"

    again = env.accept(token, name="Someone", password=BETTER)
    assert again.status_code == 410 and error_code(again) == "invitation_invalid"
    reopened = env.client.post("/api/invitations/open", json={"token": token})
    assert reopened.status_code == 410 and error_code(reopened) == "invitation_invalid"
    assert env.client.get("/api/invitations", headers=env.admin()).json() == {"items": []}

    env.client.cookies.clear()
    login = env.client.post("/api/auth/login", json={"email": address, "password": GOOD})
    assert login.status_code == 200
    audit = env.client.get("/api/audit?action=invitation.", headers=env.admin()).json()["items"]
    assert {a["action"] for a in audit} == {"invitation.sent", "invitation.accepted"}
    assert all(address.lower() not in str(a) for a in audit)


def test_the_admin_gets_the_same_answer_whether_or_not_the_email_has_an_account(
    env: Env,
) -> None:
    known = env.globex.email  # an account of another workspace
    unknown = f"nobody-{uuid.uuid4().hex[:6]}@globex.example"
    answers = []
    for address in (known, unknown):
        answer = env.client.post(
            "/api/members", json={"email": address, "role": "agent"}, headers=env.admin()
        )
        answers.append(answer)
    assert [a.status_code for a in answers] == [202, 202]
    shapes = [
        {k: v for k, v in a.json().items() if k not in ("id", "email", "created_at", "expires_at")}
        for a in answers
    ]
    assert shapes[0] == shapes[1]
    assert set(answers[0].json()) == set(answers[1].json())
    assert set(answers[0].headers) == set(answers[1].headers)
    assert abs(len(answers[0].content) - len(answers[1].content)) == abs(len(known) - len(unknown))
    for address in (known, unknown):
        wait_letter(env.smtp.letters, address, timeout_s=5)

    # The known account is not a member of acme until it proves it is theirs.
    roster = env.client.get("/api/members", headers=env.admin()).json()["items"]
    assert known not in {m["email"] for m in roster}
    token = token_in(wait_letter(env.smtp.letters, known), "invite")
    assert env.client.post("/api/invitations/open", json={"token": token}).json()["has_account"]
    wrong = env.accept(token, password="not-their-password-1")
    assert wrong.status_code == 401
    joined = env.accept(token, password=env.globex.password, name="Ignored Name")
    assert joined.status_code == 200, joined.text
    assert joined.json()["user"]["workspace_id"] == str(env.acme.workspace_id)
    assert joined.json()["user"]["name"] == "globex admin"  # keeps their own name
    roster = env.client.get("/api/members", headers=env.admin()).json()["items"]
    assert known in {m["email"] for m in roster}
    theirs = env.client.get("/api/members", headers=env.admin(env.globex)).json()["items"]
    assert known in {m["email"] for m in theirs}  # still a member of their own


def test_bad_input_already_members_and_other_workspaces(env: Env) -> None:
    for bad in (
        {"email": "not-an-email", "role": "agent"},
        {"email": "x@y.example", "role": "owner"},
        {"email": "x@y.example", "password": "the-old-field-12"},
        {"email": "x@y.example", "name": "Old shape"},
        {},
    ):
        answer = env.client.post("/api/members", json=bad, headers=env.admin())
        assert answer.status_code == 400 and error_code(answer) == "bad_request", bad
    assert (
        env.client.post(
            "/api/members", json={"email": env.acme.email}, headers=env.admin()
        ).status_code
        == 409
    )
    token = env.invite(f"pat-{uuid.uuid4().hex[:6]}@x.example")
    row = env.client.get("/api/invitations", headers=env.admin()).json()["items"][0]
    for method, url in (
        ("DELETE", f"/api/invitations/{row['id']}"),
        ("POST", f"/api/invitations/{row['id']}/resend"),
    ):
        other = env.client.request(method, url, json={}, headers=env.admin(env.globex))
        assert other.status_code == 404, (method, url)
    for bad_token in ("", "x" * 201, "no-such-token", token + "x"):
        answer = env.client.post("/api/invitations/open", json={"token": bad_token})
        assert answer.status_code in (400, 410), bad_token
    # An agent may not invite.
    agent = f"ag-{uuid.uuid4().hex[:6]}@x.example"
    join(env.client, env.admin(), agent, "Ag", GOOD, letters=env.smtp.letters)
    env.client.cookies.clear()
    login = env.client.post("/api/auth/login", json={"email": agent, "password": GOOD})
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    refused = env.client.post("/api/members", json={"email": "z@x.example"}, headers=csrf)
    assert refused.status_code == 403
    assert env.client.get("/api/invitations").status_code == 403


def test_revoked_replaced_resent_and_expired_links_do_not_work(
    env: Env, tmp_path_factory: pytest.TempPathFactory
) -> None:
    address = f"rev-{uuid.uuid4().hex[:6]}@x.example"
    first = env.invite(address)
    second = env.invite(address)  # replaces the first
    assert env.accept(first, name="R", password=GOOD).status_code == 410
    [row] = env.client.get("/api/invitations", headers=env.admin()).json()["items"]
    before = len(env.smtp.letters())
    resent = env.client.post(
        f"/api/invitations/{row['id']}/resend", json={"language": "tr"}, headers=env.admin()
    )
    assert resent.status_code == 202 and resent.json()["id"] == row["id"]
    letter = wait_letter(env.smtp.letters, address, after=before)
    assert letter["Subject"] == "SosyoCRM'de acme çalışma alanına davet edildiniz"
    third = token_in(letter, "invite")
    assert env.accept(second, name="R", password=GOOD).status_code == 410
    revoked = env.client.delete(f"/api/invitations/{row['id']}", headers=env.admin())
    assert revoked.status_code == 200
    gone = env.accept(third, name="R", password=GOOD)
    assert gone.status_code == 410 and error_code(gone) == "invitation_invalid"
    again = env.client.delete(f"/api/invitations/{row['id']}", headers=env.admin())
    assert again.status_code == 404
    audit = env.client.get("/api/audit?action=invitation.", headers=env.admin()).json()["items"]
    assert [a["action"] for a in audit][:2] == ["invitation.revoked", "invitation.resent"]

    # Expiry, with a one-second lifetime.
    short = env.settings.with_overrides(invitation_ttl_s=1)
    with TestClient(create_app(short), base_url="https://hub.example") as client:
        before = len(env.smtp.letters())
        late = f"late-{uuid.uuid4().hex[:6]}@x.example"
        client.post("/api/members", json={"email": late}, headers=env.admin())
        token = token_in(wait_letter(env.smtp.letters, late, after=before), "invite")
        time.sleep(1.2)
        expired = client.post(
            "/api/invitations/accept", json={"token": token, "name": "L", "password": GOOD}
        )
        assert expired.status_code == 410 and error_code(expired) == "invitation_invalid"


def test_password_reset_by_email_end_to_end(env: Env) -> None:
    address = f"forgetful-{uuid.uuid4().hex[:6]}@x.example"
    join(env.client, env.admin(), address, "Forgetful Agent", GOOD, letters=env.smtp.letters)
    env.client.cookies.clear()
    old = env.client.post("/api/auth/login", json={"email": address, "password": GOOD})
    old_cookie = old.cookies["hub_session"]
    env.client.cookies.clear()

    before = len(env.smtp.letters())
    answers = [
        env.client.post("/api/password-reset", json={"email": e})
        for e in (address, f"nobody-{uuid.uuid4().hex[:6]}@x.example")
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].content == answers[1].content
    assert set(answers[0].headers) == set(answers[1].headers)
    letter = wait_letter(env.smtp.letters, address, after=before)
    time.sleep(0.3)
    assert [m["To"] for m in env.smtp.letters()[before:]] == [address]  # none to nobody
    assert letter["Subject"] == "Reset your SosyoCRM password"
    first = token_in(letter, "reset")
    assert f"https://hub.example/reset#{first}" in text_of(letter)

    before = len(env.smtp.letters())
    env.client.post("/api/password-reset", json={"email": address.upper(), "language": "tr"})
    letter = wait_letter(env.smtp.letters, address, after=before)
    assert letter["Subject"] == "SosyoCRM parolanızı sıfırlayın"
    second = token_in(letter, "reset")

    weak = env.client.post(
        "/api/password-reset/confirm", json={"token": second, "new_password": "password1234"}
    )
    assert weak.status_code == 400 and error_code(weak) == "weak_password"
    done = env.client.post(
        "/api/password-reset/confirm", json={"token": second, "new_password": BETTER}
    )
    assert done.status_code == 204, done.text
    for token in (second, first):  # used, and every other link of the account spent
        spent = env.client.post(
            "/api/password-reset/confirm", json={"token": token, "new_password": GOOD + "x"}
        )
        assert spent.status_code == 410 and error_code(spent) == "reset_invalid"
    refused = env.client.post("/api/auth/login", json={"email": address, "password": GOOD})
    assert refused.status_code == 401
    env.client.cookies.clear()
    ended = env.client.get("/api/me", headers={"cookie": f"hub_session={old_cookie}"})
    assert ended.status_code == 401  # the session from before the reset has ended
    env.client.cookies.clear()
    assert (
        env.client.post("/api/auth/login", json={"email": address, "password": BETTER}).status_code
        == 200
    )
    audit = env.client.get("/api/audit?action=password.reset", headers=env.admin()).json()
    assert len(audit["items"]) == 1


def test_past_five_requests_for_one_email_the_answer_is_the_same_and_no_letter_goes(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """A stranger cannot shut a person out of asking for their own reset (a refusal would,
    for an hour), nor tell that the limit was reached; the person's inbox still gets at most
    five letters an hour."""
    address = f"flood-{uuid.uuid4().hex[:6]}@x.example"
    join(env.client, env.admin(), address, "Flooded Agent", GOOD, letters=env.smtp.letters)
    env.client.cookies.clear()
    before = len(env.smtp.letters())
    with caplog.at_level(logging.INFO, logger="hub"):
        answers = [
            env.client.post("/api/password-reset", json={"email": address}) for _ in range(5)
        ]
        deadline = time.monotonic() + 10
        while len(env.smtp.letters()) < before + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        sixth = env.client.post("/api/password-reset", json={"email": address.upper()})
        time.sleep(0.5)  # the letter would go out after the answer
    assert [a.status_code for a in answers] == [202] * 5
    assert sixth.status_code == 202 and sixth.content == answers[0].content
    assert set(sixth.headers) == set(answers[0].headers)
    assert [m["To"] for m in env.smtp.letters()[before:]] == [address] * 5
    assert "password-reset letter not sent: over 5 requests" in caplog.text
    assert address not in caplog.text.split("password-reset letter not sent")[1].split("\n")[0]
    bad = env.client.post("/api/password-reset", json={"email": "x", "extra": 1})
    assert bad.status_code == 400


def test_past_thirty_requests_from_one_address_the_answer_is_429_with_retry_after(
    env: Env,
) -> None:
    codes = [
        env.client.post(
            "/api/password-reset", json={"email": f"n{i}-{uuid.uuid4().hex[:6]}@x.example"}
        )
        for i in range(31)
    ]
    assert [a.status_code for a in codes] == [202] * 30 + [429]
    refused = codes[-1]
    assert error_code(refused) == "rate_limited"
    assert 3500 <= int(refused.headers["retry-after"]) <= 3600


def test_a_forged_host_header_never_reaches_a_letter(env: Env) -> None:
    """Whoever asks for a reset writes the Host header: the letter's link comes from
    HUB_PUBLIC_URL alone, or the asker's site would carry the victim's genuine token."""
    address = f"victim-{uuid.uuid4().hex[:6]}@x.example"
    join(env.client, env.admin(), address, "Victim", GOOD, letters=env.smtp.letters)
    env.client.cookies.clear()
    forged = {"host": "evil.example"}
    before = len(env.smtp.letters())
    asked = env.client.post("/api/password-reset", json={"email": address}, headers=forged)
    assert asked.status_code == 202
    letter = wait_letter(env.smtp.letters, address, after=before)
    token = token_in(letter, "reset")
    assert f"https://hub.example/reset#{token}" in text_of(letter)
    assert "evil.example" not in letter.as_string()

    other = f"invited-{uuid.uuid4().hex[:6]}@x.example"
    before = len(env.smtp.letters())
    invited = env.client.post(
        "/api/members", json={"email": other}, headers={**env.admin(), **forged}
    )
    assert invited.status_code == 202
    letter = wait_letter(env.smtp.letters, other, after=before)
    assert f"https://hub.example/invite#{token_in(letter, 'invite')}" in text_of(letter)
    assert "evil.example" not in letter.as_string()


def test_without_a_public_url_no_letter_leads_to_the_host_header(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Real mail and no public URL (settings refuse it from the environment; here made by
    hand): the letter is not sent rather than carry the caller's Host, and the answer is the
    same; the log says which variable is missing."""
    [acme] = prepare(settings, "acme")
    with smtp_server() as smtp:
        bare = smtp_settings(settings, smtp).with_overrides(public_url=None)
        with (
            caplog.at_level(logging.INFO, logger="hub"),
            TestClient(create_app(bare), base_url="http://testserver") as client,
        ):
            forged = {"host": "evil.example"}
            asked = client.post("/api/password-reset", json={"email": acme.email}, headers=forged)
            invited = client.post(
                "/api/members",
                json={"email": f"in-{uuid.uuid4().hex[:6]}@x.example"},
                headers={"authorization": f"Bearer {acme.api_token}", **forged},
            )
            time.sleep(0.5)  # a letter would go out after the answer
    assert (asked.status_code, invited.status_code) == (202, 202)
    assert smtp.letters() == []
    assert "password-reset letter not sent: set HUB_PUBLIC_URL" in caplog.text
    assert "invitation letter not sent: set HUB_PUBLIC_URL" in caplog.text


def test_erasing_a_member_leaves_no_name_or_email_in_any_table(env: Env) -> None:
    address = f"leaver-{uuid.uuid4().hex[:6]}@x.example"
    name = f"Leaving Person {uuid.uuid4().hex[:6]}"
    user_id = join(env.client, env.admin(), address, name, GOOD, letters=env.smtp.letters)
    env.client.cookies.clear()
    login = env.client.post("/api/auth/login", json={"email": address, "password": GOOD})
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    token = env.client.post("/api/tokens", json={"name": "mine"}, headers=csrf).json()["token"]
    env.client.cookies.clear()

    bad = env.client.delete(f"/api/members/{user_id}?erase_account=maybe", headers=env.admin())
    assert bad.status_code == 400
    assert set(tables_naming(env.settings, address)) == {"users", "invitations"}
    erased = env.client.delete(f"/api/members/{user_id}?erase_account=true", headers=env.admin())
    assert erased.status_code == 204
    rows = users_rows(env.settings)
    assert tables_naming(env.settings, address, name) == {}  # nowhere, invitations included
    assert uuid.UUID(user_id) not in {uuid.UUID(str(r["id"])) for r in rows}
    assert (
        env.client.get("/api/me", headers={"authorization": f"Bearer {token}"}).status_code == 401
    )
    assert (
        env.client.post("/api/auth/login", json={"email": address, "password": GOOD}).status_code
        == 401
    )
    audit = env.client.get("/api/audit?action=member.removed", headers=env.admin()).json()
    assert audit["items"][0]["detail"] == {"erase_account": True}
    assert address not in str(audit) and name not in str(audit)

    # A member of two workspaces: only this workspace's traces go.
    both = f"both-{uuid.uuid4().hex[:6]}@x.example"
    both_id = join(env.client, env.admin(), both, "Two Places", GOOD, letters=env.smtp.letters)
    join_token = env.invite(both, tenant=env.globex)
    assert env.accept(join_token, password=GOOD).status_code == 200
    env.client.cookies.clear()
    erased = env.client.delete(f"/api/members/{both_id}?erase_account=true", headers=env.admin())
    assert erased.status_code == 204
    assert both in {str(r["email"]) for r in users_rows(env.settings)}
    invited = every_row(env.settings)["invitations"]
    places = {uuid.UUID(str(r["workspace_id"])) for r in invited if r["email"] == both}
    assert places == {env.globex.workspace_id}  # this workspace's went; the other's stays
    theirs = env.client.get("/api/members", headers=env.admin(env.globex)).json()["items"]
    assert both in {m["email"] for m in theirs}

    # The last admin stays.
    last = env.client.delete(
        f"/api/members/{env.acme.admin_id}?erase_account=true", headers=env.admin()
    )
    assert last.status_code == 409 and error_code(last) == "last_admin"


def test_a_mail_server_failure_changes_no_answer_and_logs_no_secret(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    [acme] = prepare(settings, "acme")
    closed = smtp_settings(
        settings,
        SmtpServer("127.0.0.1", 9),  # nothing listens on the discard port
        smtp_user="hub",
        smtp_password="smtp-secret-never-logged",
    )
    admin = {"authorization": f"Bearer {acme.api_token}"}
    with (
        caplog.at_level(logging.INFO, logger="hub.mail"),
        TestClient(create_app(closed), base_url="http://testserver") as client,
    ):
        answer = client.post("/api/members", json={"email": "a@x.example"}, headers=admin)
        assert answer.status_code == 202
        reset = client.post("/api/password-reset", json={"email": acme.email})
        assert reset.status_code == 202
    assert "smtp-secret-never-logged" not in caplog.text
    assert caplog.text.count("not sent") == 2
    assert "#" not in caplog.text  # no link


def test_log_only_mode_writes_the_letter_to_a_private_file_and_logs_no_link(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    [acme] = prepare(settings, "acme")
    assert settings.smtp_host is None
    admin = {"authorization": f"Bearer {acme.api_token}"}
    with (
        caplog.at_level(logging.INFO, logger="hub.mail"),
        TestClient(create_app(settings), base_url="http://testserver:8123") as client,
    ):
        answer = client.post("/api/members", json={"email": "log@x.example"}, headers=admin)
        assert answer.status_code == 202
        forged = {"host": "evil.example"}
        client.post("/api/password-reset", json={"email": acme.email}, headers=forged)
    letters = outbox(settings.data_dir)
    assert [m["To"] for m in letters] == ["log@x.example", acme.email]
    invite, reset = token_in(letters[0], "invite"), token_in(letters[1], "reset")
    # No public URL: the links lead to the address the connection came to (the server's
    # socket's), never to the Host header the caller wrote.
    assert f"http://testserver:8123/invite#{invite}" in text_of(letters[0])
    assert f"http://testserver:8123/reset#{reset}" in text_of(letters[1])
    assert "evil.example" not in letters[1].as_string()
    folder = settings.data_dir / "mail"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "log@x.example" in caplog.text and "You are invited to acme" in caplog.text
    assert invite not in caplog.text and reset not in caplog.text
    assert "/invite#" not in caplog.text and "/reset#" not in caplog.text


@pytest.mark.unit
def test_where_a_letter_s_link_leads(tmp_path: Path) -> None:
    """HUB_PUBLIC_URL; else, in log-only mail, the connection's own address; else none (no
    letter): never the Host header."""
    from types import SimpleNamespace

    from starlette.applications import Starlette
    from starlette.requests import Request

    from hub.web.http import letter_base
    from tests.conftest import make_settings

    def base(settings: Settings, server: Any, scheme: str = "http") -> str | None:
        app = Starlette()
        app.state.services = SimpleNamespace(settings=settings)
        headers = [(b"host", b"evil.example")]
        scope = {"type": "http", "app": app, "server": server, "scheme": scheme}
        return letter_base(Request({**scope, "headers": headers, "path": "/"}))

    plain = make_settings(tmp_path)
    assert base(plain.with_overrides(public_url="https://hub.example"), None) == (
        "https://hub.example"
    )
    assert base(plain, ("10.0.0.5", 8000)) == "http://10.0.0.5:8000"
    assert base(plain, ("::1", 443), "https") == "https://[::1]"
    assert base(plain, None) is None  # a unix socket: no address of its own
    assert base(plain.with_overrides(smtp_host="smtp.example"), ("10.0.0.5", 80)) is None
