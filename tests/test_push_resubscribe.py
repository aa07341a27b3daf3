"""A browser subscribing the same push endpoint again, even many times at once, keeps one
subscription and never meets an error (an upsert on the workspace's endpoint). On SQLite and
on Postgres, where concurrent transactions race on the unique key."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import Tenant, backends, prepare
from tests.test_notify import Browser

URL = "/api/me/push-subscriptions"


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    settings = backends(request, settings)
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings), base_url="https://hub.example") as client:
        client.headers["authorization"] = f"Bearer {acme.api_token}"
        yield client, acme


def test_subscribing_the_same_endpoint_again_is_idempotent(
    env: tuple[TestClient, Tenant],
) -> None:
    client, _ = env
    body = {"endpoint": "https://push.example.com/send/same", "keys": Browser().keys()}
    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            codes = [
                a.status_code for a in pool.map(lambda _: client.post(URL, json=body), range(8))
            ]
        assert codes == [201] * 8, codes
    gone = client.request("DELETE", URL, json={"endpoint": body["endpoint"]})
    assert gone.status_code in (200, 204), gone.text
    again = client.request("DELETE", URL, json={"endpoint": body["endpoint"]})
    assert again.status_code == 404  # one subscription was kept, not several
