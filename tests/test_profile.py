"""The caller's own profile (hub/accounts/profile_routes.py): reading it, renaming oneself
(validated, audited, seen at once by the session and by API tokens), and what it refuses.
Through the app, on SQLite and on Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import Tenant, backends, prepare
from tests.mailbox import join
from tests.test_api import error_code

URL = "/api/me/profile"


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    settings = backends(request, settings)
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client, acme


def test_a_member_reads_and_renames_themselves_and_it_is_audited(
    env: tuple[TestClient, Tenant],
) -> None:
    client, acme = env
    token = {"authorization": f"Bearer {acme.api_token}"}
    login = client.post("/api/auth/login", json={"email": acme.email, "password": acme.password})
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    mine = client.get(URL)
    assert mine.status_code == 200, mine.text
    assert mine.json()["email"] == acme.email and mine.json()["two_factor"] is False
    renamed = client.patch(URL, json={"name": "  Ayşe Yılmaz "}, headers=csrf)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Ayşe Yılmaz"
    # The session and the API token both act under the new name at once.
    assert client.get("/api/me").json()["user"]["name"] == "Ayşe Yılmaz"
    client.cookies.clear()
    assert client.get("/api/me", headers=token).json()["user"]["name"] == "Ayşe Yılmaz"
    members = client.get("/api/members", headers=token).json()["items"]
    assert [m["name"] for m in members if m["id"] == str(acme.admin_id)] == ["Ayşe Yılmaz"]
    audit = client.get("/api/audit?action=profile.", headers=token).json()["items"]
    assert len(audit) == 1
    assert audit[0]["actor_id"] == audit[0]["target_id"] == str(acme.admin_id)
    assert audit[0]["detail"] == {"fields": ["name"]}  # never the name itself
    # The same name again changes nothing and is not audited again.
    again = client.patch(URL, json={"name": "Ayşe Yılmaz"}, headers=token)
    assert again.status_code == 200
    assert len(client.get("/api/audit?action=profile.", headers=token).json()["items"]) == 1


@pytest.fixture(params=["sqlite", "postgres"])
def two(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, ...]]:
    settings = backends(request, settings)
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client, acme, globex


def test_a_rename_reaches_every_workspace_the_member_is_in(two: tuple[Any, ...]) -> None:
    """On Postgres too, where row-level security shows a request only its own workspace's
    memberships: the other workspace's roster and audit hear of the new name as well."""
    client, acme, globex = two
    globex_token = {"authorization": f"Bearer {globex.api_token}"}
    join(client, globex_token, acme.email, "Acme Admin", acme.password)
    login = client.post("/api/auth/login", json={"email": acme.email, "password": acme.password})
    assert login.status_code == 200, login.text
    assert login.json()["user"]["workspace_id"] == str(acme.workspace_id)
    headers = {"x-csrf-token": login.json()["csrf_token"]}
    renamed = client.patch(URL, json={"name": "Şule Işık"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    client.cookies.clear()
    roster = client.get("/api/members", headers=globex_token).json()["items"]
    assert [m["name"] for m in roster if m["email"] == acme.email] == ["Şule Işık"]
    for tenant in (acme, globex):
        bearer = {"authorization": f"Bearer {tenant.api_token}"}
        audit = client.get("/api/audit?action=profile.", headers=bearer).json()["items"]
        assert [a["actor_id"] for a in audit] == [str(acme.admin_id)], tenant.workspace_id


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "   "}, "bad_request"),
        ({"name": ""}, "bad_request"),
        ({"name": "x" * 201}, "bad_request"),
        ({"name": "Ada\u202eevil"}, "bad_request"),
        ({"name": "Ada\nLovelace"}, "bad_request"),
        ({"name": "Ada", "email": "other@acme.example"}, "bad_request"),
        ({}, "bad_request"),
    ],
)
def test_a_bad_name_is_refused_with_a_code(
    env: tuple[TestClient, Tenant], body: dict[str, str], code: str
) -> None:
    client, acme = env
    token = {"authorization": f"Bearer {acme.api_token}"}
    refused = client.patch(URL, json=body, headers=token)
    assert refused.status_code == 400, refused.text
    assert error_code(refused) == code
    assert client.get(URL, headers=token).json()["name"] != "Ada"


def test_the_profile_needs_a_signed_in_caller_and_csrf(env: tuple[TestClient, Tenant]) -> None:
    client, acme = env
    assert client.get(URL).status_code == 401
    client.post("/api/auth/login", json={"email": acme.email, "password": acme.password})
    refused = client.patch(URL, json={"name": "Without CSRF"})
    assert refused.status_code == 403 and error_code(refused) == "csrf_failed"
