"""Redis away under a real `hub serve`: requests and sockets are answered `unavailable` (HTTP
503, close 1012: docs/protocol.md), the answers that tell a client to retry and resume, not
`internal_error` (500, 1011) with a traceback in the log for each."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from hub.accounts.auth import Signer, VisitorClaims
from hub.settings import Settings
from tests import privateservices
from tests.conftest import IN_CI
from tests.helpers import ORIGIN, make_tenant
from tests.servers import HubProcess, base_env, free_port


@pytest.mark.redis  # a private Redis, stopped and started again
def test_redis_away_is_unavailable_over_rest_and_sockets(tmp_path: Path) -> None:
    problem = privateservices.available()
    if problem is not None:
        if IN_CI:
            pytest.fail(problem + " (CI=true: fault tests fail instead of skipping)")
        pytest.skip(problem)
    with privateservices.private_redis() as redis_server:
        env = base_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
            REDIS_URL=redis_server.url,
            HUB_SECRET_KEY="outage-" + uuid.uuid4().hex + uuid.uuid4().hex,
            HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        )
        subprocess.run(
            [sys.executable, "-m", "hub.cli", "migrate"], env=env, check=True, timeout=120
        )
        settings = Settings.from_env(env)
        tenant = asyncio.run(make_tenant(settings))
        port = free_port()
        web = HubProcess(["serve", "--port", str(port)], env, port, tmp_path / "web.log").start()
        try:
            redis_server.stop()
            bearer = {"authorization": f"Bearer {tenant.api_token}"}
            sent = httpx.post(
                f"{web.base_url}/api/conversations/{uuid.uuid4()}/messages",
                json={"client_id": "c1", "text": "Hello"},
                headers=bearer,
                timeout=10,
            )
            assert sent.status_code == 503, sent.text
            assert sent.json()["error"]["code"] == "unavailable"
            assert int(sent.headers["retry-after"]) > 0

            # What only needs the database still answers (docs/operations.md).
            me = httpx.get(f"{web.base_url}/api/me", headers=bearer, timeout=10)
            assert me.status_code == 200, me.text
            listed = httpx.get(f"{web.base_url}/api/conversations", headers=bearer, timeout=10)
            assert listed.status_code == 200, listed.text
            ready = httpx.get(f"{web.base_url}/readyz", timeout=10)
            assert ready.status_code == 503 and ready.json()["checks"]["redis"] != "ok"
            assert httpx.get(f"{web.base_url}/healthz", timeout=10).status_code == 503

            claims = VisitorClaims(tenant.workspace_id, tenant.channel_id, uuid.uuid4().hex)
            for path, token in (
                ("/ws/visitor", Signer(settings).visitor_token(claims)),
                ("/ws/agent", tenant.api_token),
            ):
                with connect(web.ws_url + path, origin=ORIGIN, open_timeout=10) as socket:  # type: ignore[arg-type]
                    socket.send(json.dumps({"type": "hello", "token": token}))
                    frame = json.loads(socket.recv(timeout=10))
                    assert frame["type"] == "error" and frame["code"] == "unavailable", frame
                    with pytest.raises(ConnectionClosed):
                        socket.recv(timeout=10)
                    assert socket.close_code == 1012, (path, socket.close_code)
        finally:
            web.stop()
        log = web.output()
        assert "Traceback" not in log, log[-3000:]
        assert "unhandled error" not in log and "websocket session failed" not in log
        assert "/messages 503" in log  # the access log says what the client got
