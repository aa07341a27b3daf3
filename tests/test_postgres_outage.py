"""Postgres stopped for 20 seconds under real `hub serve` and `hub worker` processes, with a
private Postgres (`tests.privateservices`) and a Redis prefix of the test's own: what
docs/operations.md ("When Postgres is down") promises, sentence by sentence.

- A visitor with its token and an agent with an API token or a session cookie reconnect and
  resume (never `unavailable`, 1012), also on a node started during the outage, which never
  read them: what a reconnect needs is the last known copy on the bus.
- A visitor renewing the token it holds gets it renewed; a new visitor token, a login and the
  history answer 503 `unavailable` with `Retry-After`.
- Messages sent meanwhile (a visitor's, an agent's reply) are acknowledged and delivered live,
  then stored exactly once when Postgres is back.
- /readyz says the database is not ready, with one warning line per probe and no traceback.
- A server that answers but refuses connections (held in recovery) is the same outage: 503
  `unavailable`, a warning line, no 500 and no traceback.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests import privateservices
from tests.browserkit import wait_until
from tests.helpers import ORIGIN
from tests.stacks import make_stack
from tests.test_faults import (
    Follower,
    _need_private,
    assert_exactly_once_in_order,
    following,
    messages,
    restarted_on_exit,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

DOWN_S = 20.0


def welcomed(base_ws: str, path: str, token: str, resume_from: str | None = None) -> dict[str, Any]:
    """The first frame a fresh connection gets after its hello (a welcome, or why not)."""
    with connect(base_ws + path, origin=ORIGIN, open_timeout=5) as ws:  # type: ignore[arg-type]
        hello: dict[str, Any] = {"type": "hello", "token": token}
        if resume_from:
            hello["resume_from"] = resume_from
        ws.send(json.dumps(hello))
        return dict(json.loads(ws.recv(timeout=10)))


def refused_for_now(answer: httpx.Response) -> None:
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.json()["error"]["code"] == "unavailable"
    assert int(answer.headers["retry-after"]) > 0


def reconnect(follower: Follower) -> dict[str, Any]:
    """Cut the follower's socket; it reconnects and resumes by itself. Its next welcome."""
    seen = len(follower.welcomes)
    follower.ws.close()
    wait_until(lambda: len(follower.welcomes) > seen, timeout_s=10, what="a new welcome")
    assert follower.live.wait(5)
    return follower.welcomes[-1]


def test_postgres_down_20s_visitors_and_agents_reconnect_resume_and_all_is_stored_once(
    tmp_path: Path,
) -> None:
    _need_private()
    with (
        privateservices.private_postgres() as pg,
        make_stack(tmp_path, database_url=pg.url, create=pg.sql) as stack,
    ):
        web = stack.web("a")
        stack.worker("w")
        tenant = stack.tenant
        widget = {"origin": ORIGIN}
        issued = httpx.post(
            f"{web.base_url}/api/widget/token",
            json={"channel": tenant.public_key},
            headers=widget,
            timeout=10,
        ).json()
        conversation = issued["conversation_id"]
        logged_in = httpx.post(
            f"{web.base_url}/api/auth/login",
            json={"email": tenant.email, "password": tenant.password},
            timeout=10,
        )
        assert logged_in.status_code == 200, logged_in.text
        csrf = {"x-csrf-token": logged_in.json()["csrf_token"]}
        # The cookie is Secure (HUB_PUBLIC_URL is https): sent by hand over loopback http.
        cookie = {"cookie": f"hub_session={logged_in.cookies['hub_session']}"}
        agent_web = httpx.Client(base_url=web.base_url, headers=cookie, timeout=10)

        visitor = Follower([web.ws_url], issued["token"], visitor=True)
        agent = Follower([web.ws_url], tenant.api_token)
        expected = ["before"]
        with following(visitor, agent), restarted_on_exit(pg):
            visitor.send({"type": "message.send", "client_id": "v-before", "text": "before"})
            wait_until(lambda: "before" in agent.texts(), timeout_s=10, what="the first message")
            cookie_token = agent_web.post("/api/agent/socket-token", headers=csrf).json()["token"]
            assert welcomed(web.ws_url, "/ws/agent", cookie_token)["type"] == "welcome"

            pg.stop()
            down_at = time.monotonic()

            # What needs the database waits for it, and says so.
            refused_for_now(
                httpx.post(
                    f"{web.base_url}/api/auth/login",
                    json={"email": tenant.email, "password": tenant.password},
                    timeout=10,
                )
            )
            refused_for_now(
                httpx.post(
                    f"{web.base_url}/api/widget/history",
                    json={"token": issued["token"]},
                    headers=widget,
                    timeout=10,
                )
            )
            bearer = {"authorization": f"Bearer {tenant.api_token}"}
            refused_for_now(httpx.get(f"{web.base_url}/api/conversations", headers=bearer))
            for _ in range(3):
                ready = httpx.get(f"{web.base_url}/readyz", timeout=10)
                assert ready.status_code == 503 and ready.json()["checks"]["database"] == "error"
            assert httpx.get(f"{web.base_url}/healthz", timeout=10).status_code == 200

            # A visitor renewing the token it holds keeps its visitor and conversation.
            renewed = httpx.post(
                f"{web.base_url}/api/widget/token",
                json={"channel": tenant.public_key, "token": issued["token"]},
                headers=widget,
                timeout=10,
            )
            assert renewed.status_code == 200, renewed.text
            assert renewed.json()["visitor_id"] == issued["visitor_id"]
            assert renewed.json()["conversation_id"] == conversation

            # The agent's browser: a socket token from its session cookie, then a welcome.
            answer = agent_web.post("/api/agent/socket-token", headers=csrf)
            assert answer.status_code == 200, answer.text
            cookie_token = answer.json()["token"]
            assert agent_web.get("/api/me").status_code == 200

            # A node started now never read any of them; the bus's copy is enough.
            fresh = stack.web("b")
            newcomer = httpx.post(
                f"{fresh.base_url}/api/widget/token",
                json={"channel": tenant.public_key},
                headers=widget,
                timeout=10,
            )
            assert newcomer.status_code == 200, newcomer.text
            assert newcomer.json()["visitor_id"] != issued["visitor_id"]
            refused_for_now(  # an identified visitor's check needs the channel's secret
                httpx.post(
                    f"{fresh.base_url}/api/widget/token",
                    json={"channel": tenant.public_key, "user_id": "u1", "user_hash": "0" * 64},
                    headers=widget,
                    timeout=10,
                )
            )
            refused_for_now(
                httpx.get(
                    f"{fresh.base_url}/api/widget/config",
                    params={"channel": tenant.public_key},
                    headers=widget,
                    timeout=10,
                )
            )
            cursor = agent.cursor
            for path, token in (
                ("/ws/visitor", renewed.json()["token"]),
                ("/ws/visitor", newcomer.json()["token"]),
                ("/ws/agent", tenant.api_token),
                ("/ws/agent", cookie_token),
            ):
                frame = welcomed(fresh.ws_url, path, token, cursor)
                assert frame == {"type": "welcome", "cursor": cursor, "resumed": True}, frame

            # Reconnects and resumes while messages go both ways, until the 20 s are up.
            i = 0
            while time.monotonic() - down_at < DOWN_S:
                for follower in (visitor, agent):
                    assert reconnect(follower)["resumed"] is True
                said, reply = f"during {i}", f"reply {i}"
                visitor.send({"type": "message.send", "client_id": f"v-{i}", "text": said})
                wait_until(lambda t=said: t in agent.texts(), timeout_s=10, what=said)  # type: ignore[misc]
                agent.send(
                    {
                        "type": "message.send",
                        "client_id": f"a-{i}",
                        "conversation_id": conversation,
                        "text": reply,
                    }
                )
                wait_until(lambda t=reply: t in visitor.texts(), timeout_s=10, what=reply)  # type: ignore[misc]
                expected += [said, reply]
                i += 1
                time.sleep(1.0)  # within the visitor's 20 messages a minute
            still_down_s = time.monotonic() - down_at
            pg.start()

            with stack.api(web) as api:

                def stored() -> list[dict[str, Any]] | None:
                    try:
                        found = messages(api, conversation)
                    except (AssertionError, httpx.HTTPError):
                        return None
                    return found if len(found) >= len(expected) else None

                rows = wait_until(stored, timeout_s=60, what="everything stored")
        assert i >= 3 and still_down_s >= DOWN_S
        for follower in (visitor, agent):
            assert not [d for d in follower.drops if "unavailable" in d or "1012" in d]
            assert all(w["resumed"] for w in follower.welcomes[1:])
        assert sorted(visitor.acks) == sorted(["v-before", *(f"v-{n}" for n in range(i))])
        assert sorted(agent.acks) == sorted(f"a-{n}" for n in range(i))
        assert_exactly_once_in_order(agent.created(), expected)
        assert_exactly_once_in_order(visitor.created(), expected)
        assert Counter(m["text"] for m in rows) == Counter(expected)
        for process in (web, fresh):
            log = process.output()
            assert "Traceback" not in log, around_traceback(log)
            assert "websocket session failed" not in log
        readiness = [line for line in web.output().splitlines() if "readiness check" in line]
        assert len(readiness) == 3, readiness


def around_traceback(log: str) -> str:
    """The part of a log that shows a traceback's cause: from a little before it."""
    return log[max(0, log.find("Traceback") - 1500) :][:6000]


def test_a_postgres_refusing_connections_while_it_recovers_is_an_outage_not_an_error(
    tmp_path: Path,
) -> None:
    """A server that answers but refuses connections (starting up, shutting down, recovering
    after a crash: SQLSTATE 57P03) is the database away, like one that does not answer: 503
    `unavailable` with Retry-After, one warning line, no traceback; and all is well once it
    accepts connections again."""
    _need_private()
    with (
        privateservices.private_postgres() as pg,
        make_stack(tmp_path, database_url=pg.url, create=pg.sql) as stack,
    ):
        web = stack.web("a")
        tenant = stack.tenant
        login = {"email": tenant.email, "password": tenant.password}
        bearer = {"authorization": f"Bearer {tenant.api_token}"}

        def logged_in() -> bool:
            answer = httpx.post(f"{web.base_url}/api/auth/login", json=login, timeout=10)
            return answer.status_code == 200

        with restarted_on_exit(pg):  # started again as a primary
            pg.stop()
            pg.start_refusing()
            try:
                for _ in range(2):
                    refused_for_now(
                        httpx.post(f"{web.base_url}/api/auth/login", json=login, timeout=10)
                    )
                    refused_for_now(
                        httpx.get(f"{web.base_url}/api/conversations", headers=bearer, timeout=10)
                    )
                ready = httpx.get(f"{web.base_url}/readyz", timeout=10)
                assert ready.status_code == 503 and ready.json()["checks"]["database"] == "error"
            finally:
                pg.stop()
        wait_until(logged_in, timeout_s=30, what="a login once Postgres is back")
        log = web.output()
        assert "Traceback" not in log, around_traceback(log)
        assert "unhandled error" not in log
        assert log.count("POST /api/auth/login: DBAPIError") == 2, log[-3000:]
