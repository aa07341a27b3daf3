"""Redis restarted empty under real processes (`hub serve`, `hub worker`, a private Redis and
the shared Postgres): a backlog of accepted, unpersisted events is lost with it, and then

- the loss is reported: one log line, `/metrics`, `/readyz` (still ready) until an operator runs
  `hub bus acknowledge-loss`;
- the sockets that were live are told 4409 and a resume from a cursor of before the loss gets
  4409, so clients reload over REST instead of trusting a stream that is gone;
- a worker started after the restart, or one that ran through it, finds the streams by itself,
  and everything acknowledged after the restart (webhooks answered 200, visitors' sends acked)
  is stored exactly once, within seconds; no process is restarted for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests import privateservices
from tests.browserkit import wait_until
from tests.conftest import admin_sql
from tests.helpers import ORIGIN
from tests.stacks import make_stack
from tests.test_faults import _need_private, first_conversation, messages, stored_texts

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

LOSS_LINE = "Redis lost the hub's data"


def hello(ws: ClientConnection, token: str, resume_from: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "hello", "token": token}
    if resume_from is not None:
        frame["resume_from"] = resume_from
    ws.send(json.dumps(frame))
    answer: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return answer


def until_closed(ws: ClientConnection, timeout_s: float) -> list[dict[str, Any]]:
    """Every frame up to the close (which must come within `timeout_s`)."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    with pytest.raises(ConnectionClosed):
        while True:
            frames.append(json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01))))
    return frames


def readiness(base_url: str) -> dict[str, Any]:
    answer = httpx.get(base_url + "/readyz", timeout=10)
    assert answer.status_code == 200, answer.text  # a past loss does not fail the probe
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("worker", ["started-afterwards", "kept-running"])
def test_redis_restarted_empty_the_loss_is_reported_and_persistence_resumes(
    tmp_path: Path, postgres_database: str, worker: str
) -> None:
    _need_private()
    with (
        privateservices.private_redis() as redis_server,
        make_stack(
            tmp_path, database_url=postgres_database, create=admin_sql, redis_url=redis_server.url
        ) as stack,
    ):
        web = stack.web("a")
        first_worker = stack.worker("w1")
        stack.connect_bot(web)
        chat = 5600
        conversation = first_conversation(stack, web, chat)
        token = stack.tenant.api_token
        with connect(web.ws_url + "/ws/agent", open_timeout=10) as agent:
            assert hello(agent, token)["type"] == "welcome"
            if worker == "started-afterwards":
                # A backlog: accepted and delivered live, not yet stored (no worker runs).
                first_worker.stop()
            backlog = [f"backlog {i}" for i in range(2, 12)]
            for i, text in enumerate(backlog, start=2):
                assert stack.webhook(web, chat, i, text).status_code == 200
            cursor, seen = "", ""
            while seen != backlog[-1]:
                frame = json.loads(agent.recv(timeout=10))
                if frame["type"] == "event" and frame["name"] == "message.created":
                    cursor, seen = frame["id"], frame["data"]["message"]["text"]
            assert "bus_loss" not in readiness(web.base_url)
            redis_server.restart_empty(down_s=1.0)
            # The live socket is told to reload over REST.
            frames = until_closed(agent, timeout_s=20)
            assert frames[-1]["type"] == "error" and frames[-1]["code"] == "cursor_too_old"
            assert agent.close_code == 4409, (agent.close_code, frames)

        # Reported on /readyz (ready all the same), in /metrics and in the log, once.
        loss = wait_until(
            lambda: readiness(web.base_url).get("bus_loss"), timeout_s=15, what="/readyz report"
        )
        assert set(loss) == {"detected_at", "node"}
        assert readiness(web.base_url)["ready"] is True
        scraped = httpx.get(web.base_url + "/metrics", timeout=10).text
        assert "hub_bus_data_losses_total 1.0" in scraped
        with stack.api(web) as api:  # the admins' status page
            assert api.get("/api/status").json()["bus_loss"] == loss
        assert "hub_bus_data_loss_unacknowledged 1.0" in scraped

        # A resume from before the loss: cursor too old, never a silent resume from nothing.
        with connect(web.ws_url + "/ws/agent", open_timeout=10) as again:
            refused = hello(again, token, resume_from=cursor)
            assert refused["type"] == "error" and refused["code"] == "cursor_too_old", refused
            until_closed(again, timeout_s=10)
            assert again.close_code == 4409

        if worker == "started-afterwards":  # it finds the work by itself
            stack.worker("w2")
        accepted: list[str] = []
        for i in range(100, 130):
            text = f"after {i}"
            assert stack.webhook(web, chat, i, text).status_code == 200
            accepted.append(text)
        issued = httpx.post(
            web.base_url + "/api/widget/token",
            json={"channel": stack.tenant.public_key},
            headers={"origin": ORIGIN},
            timeout=10,
        ).json()
        acked: list[str] = []
        with connect(web.ws_url + "/ws/visitor", origin=ORIGIN, open_timeout=10) as visitor:  # type: ignore[arg-type]
            assert hello(visitor, issued["token"])["type"] == "welcome"
            for j in range(10):
                visitor.send(
                    json.dumps({"type": "message.send", "client_id": f"v{j}", "text": f"v {j}"})
                )
                while (frame := json.loads(visitor.recv(timeout=10)))["type"] != "ack":
                    pass
                assert frame["client_id"] == f"v{j}"
                acked.append(f"v {j}")
        with stack.api(web) as api:
            stored = stored_texts(
                api,
                conversation,
                accepted,
                timeout_s=15,
                what="every webhook accepted after the restart stored",
            )
            talk = stored_texts(
                api,
                issued["conversation_id"],
                acked,
                timeout_s=15,
                what="every visitor message acked after the restart stored",
            )
            time.sleep(1.0)  # a second copy would be stored by now
            stored = [m["text"] for m in messages(api, conversation)]
            talk = [m["text"] for m in messages(api, issued["conversation_id"])]
        counts = Counter(stored)
        assert all(counts[t] == 1 for t in accepted), counts
        assert Counter(talk) == Counter(acked)
        if worker == "started-afterwards":
            # The backlog went with Redis: that is the loss the hub reported.
            assert not set(backlog) & set(stored)

        # An operator acknowledges it; every node stops reporting it within seconds.
        done = subprocess.run(
            [sys.executable, "-m", "hub.cli", "bus", "acknowledge-loss"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "Acknowledged" in done.stdout and loss["detected_at"] in done.stdout
        wait_until(
            lambda: "bus_loss" not in readiness(web.base_url), timeout_s=10, what="acknowledged"
        )
        scraped = httpx.get(web.base_url + "/metrics", timeout=10).text
        assert "hub_bus_data_loss_unacknowledged 0.0" in scraped
        with stack.api(web) as api:
            assert api.get("/api/status").json()["bus_loss"] is None
        assert web.output().count(LOSS_LINE) == 1, stack.logs()
