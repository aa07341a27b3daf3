"""Access control (issue 6, item 10): sign-in lockout, password change ending other sessions,
revocable API tokens, security headers on pages and private answers."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from hub.accounts import lockout
from hub.accounts.passwords import check_new_password
from hub.services import Services
from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import Tenant, prepare


@pytest.fixture
def env(settings: Settings) -> Iterator[tuple[TestClient, Tenant, Tenant]]:
    settings = settings.with_overrides(public_url="https://hub.example")
    acme, globex = prepare(settings, "acme", "globex")
    app = create_app(settings, run_worker=True)
    with TestClient(app, base_url="https://hub.example") as client:
        yield client, acme, globex


def sign_in(client: TestClient, email: str, password: str) -> httpx.Response:
    client.cookies.clear()
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_repeated_failures_lock_sign_in_for_that_email(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, globex = env
    for _ in range(5):
        assert sign_in(client, acme.email, "wrong").status_code == 401
    locked = sign_in(client, acme.email, acme.password)  # even the right password now
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_attempts"
    # Retry-After: the seconds left on the lock, just set for the 15-minute window.
    assert lockout.WINDOW_S - 30 <= int(locked.headers["retry-after"]) <= lockout.WINDOW_S
    assert sign_in(client, acme.email.upper(), acme.password).status_code == 429  # same person
    assert sign_in(client, globex.email, globex.password).status_code == 200  # others go on
    audit = client.get(
        "/api/audit",
        params={"action": "login.failed"},
        headers={"authorization": f"Bearer {globex.api_token}"},
    )
    assert acme.email not in audit.text  # failures are logged without what was typed


async def test_the_lockout_counts_under_keyed_digests_only(settings: Settings) -> None:
    """The counters' keys are HMACs under the secret key: neither the e-mail, nor the client's
    address, nor a plain hash of the e-mail (found again by hashing a list of e-mails)."""
    email, ip = "Someone@Example.com", "203.0.113.9"
    svc = Services.build(settings)
    await svc.bus.start()
    try:
        for _ in range(lockout.LOCK_AFTER):
            await lockout.note_failure(svc.bus, settings.secret_key, email, ip)
        by_email, by_ip = lockout.keys(settings.secret_key, email, ip)
        until = await svc.bus.recall("auth", "lock:" + by_email)  # when the lock ends
        assert until is not None and 0 < int(until) - time.time() <= lockout.WINDOW_S
        unkeyed = hashlib.sha256(email.lower().encode()).hexdigest()[:32]
        for key in (by_email, by_ip):
            assert email.lower() not in key and ip not in key and unkeyed not in key
        other = lockout.keys("another-secret-key-" + "x" * 32, email, ip)
        assert set(other).isdisjoint((by_email, by_ip))  # the secret key makes the digest
        with pytest.raises(lockout.TooManyAttempts):
            await lockout.refuse_if_locked(
                svc.bus, settings.secret_key, email.upper(), "198.51.100.1"
            )
    finally:
        await svc.close()


def test_a_new_password_ends_every_other_session(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, _ = env
    first = sign_in(client, acme.email, acme.password)
    other_cookie = first.cookies["hub_session"]
    second = sign_in(client, acme.email, acme.password)
    csrf = second.json()["csrf_token"]
    new = "new-pw-" + uuid.uuid4().hex
    changed = client.post(
        "/api/me/password",
        json={"current_password": acme.password, "new_password": new},
        headers={"x-csrf-token": csrf},
    )
    assert changed.status_code == 200, changed.text
    assert client.get("/api/me").status_code == 200  # this browser got a new cookie
    client.cookies.clear()
    client.cookies.set("hub_session", other_cookie)
    gone = client.get("/api/me")
    assert gone.status_code == 401 and "password changed" in gone.json()["error"]["message"]
    assert sign_in(client, acme.email, acme.password).status_code == 401
    assert sign_in(client, acme.email, new).status_code == 200
    bearer = {"authorization": f"Bearer {acme.api_token}"}
    actions = [e["action"] for e in client.get("/api/audit", headers=bearer).json()["items"]]
    assert "password.changed" in actions
    short = client.post(
        "/api/me/password",
        json={"current_password": new, "new_password": "short"},
        headers={"x-csrf-token": sign_in(client, acme.email, new).json()["csrf_token"]},
    )
    assert short.status_code == 400


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("short-pw", "at least 12 characters"),
        ("aaaaaaaaaaaa", "too easy to guess"),  # the review's example: length alone
        ("password1234", "too easy to guess"),  # a common password with a number
        ("qwertyuiop12", "too easy to guess"),  # a keyboard walk
        ("", "at least 12 characters"),
    ],
)
def test_a_new_password_follows_the_password_rule(
    env: tuple[TestClient, Tenant, Tenant], weak: str, reason: str
) -> None:
    client, acme, _ = env
    csrf = {"x-csrf-token": sign_in(client, acme.email, acme.password).json()["csrf_token"]}
    change = {"current_password": acme.password, "new_password": weak}
    refused = client.post("/api/me/password", json=change, headers=csrf)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == ("weak_password" if weak else "bad_request")
    assert weak == "" or reason in error["message"]
    assert sign_in(client, acme.email, acme.password).status_code == 200  # unchanged


def test_a_password_made_of_the_users_own_email_or_name_is_refused(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, _ = env
    csrf = {"x-csrf-token": sign_in(client, acme.email, acme.password).json()["csrf_token"]}
    # tests.helpers names the admin "<workspace> admin"; the e-mail is admin-<hex>@acme.example
    own_name, local_part = "Acme Admin 2024", acme.email.split("@")[0].split("-")[1]
    for personal in (acme.email, acme.email.upper(), own_name, local_part + "acme"):
        change = {"current_password": acme.password, "new_password": personal}
        refused = client.post("/api/me/password", json=change, headers=csrf)
        assert refused.status_code == 400, personal
        assert refused.json()["error"]["code"] == "weak_password"
    # The same characters are fine for someone else: the rule knows whose password it is.
    check_new_password(acme.email, email="someone@else.example", name="Someone Else")
    strong = "Tangerine-" + uuid.uuid4().hex[:10] + "-Orbit"
    changed = client.post(
        "/api/me/password", json={"current_password": acme.password, "new_password": strong},
        headers=csrf,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert sign_in(client, acme.email, strong).status_code == 200


def test_api_tokens_are_listed_without_their_value_and_revocable(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, globex = env
    bearer = {"authorization": f"Bearer {acme.api_token}"}
    made = client.post("/api/tokens", json={"name": "ci"}, headers=bearer).json()
    second = {"authorization": f"Bearer {made['token']}"}
    assert client.get("/api/me", headers=second).status_code == 200
    listed = client.get("/api/tokens", headers=bearer)
    assert made["token"] not in listed.text and acme.api_token not in listed.text
    assert {t["name"] for t in listed.json()["items"]} == {"tests", "ci"}
    foreign = client.delete(
        f"/api/tokens/{made['id']}", headers={"authorization": f"Bearer {globex.api_token}"}
    )
    assert foreign.status_code == 404  # another workspace's token does not exist for it
    revoked = client.delete(f"/api/tokens/{made['id']}", headers=bearer)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/api/me", headers=second).status_code == 401
    assert client.get("/api/me", headers=bearer).status_code == 200


def test_security_headers_and_cookie_flags(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    for page in ("/", "/admin"):
        answer = client.get(page)
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    login = sign_in(client, acme.email, acme.password)
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert login.headers["cache-control"] == "no-store"
    assert client.get("/api/conversations").headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/widget.js").headers["cache-control"]
