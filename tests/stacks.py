"""A hub of real processes for a test: `hub serve` and `hub worker` against a database and a
Redis prefix of the test's own, the fake platform with a Telegram bot, and a tenant."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from hub.settings import Settings
from schemas.message import ChannelKind
from tests.conftest import REDIS_URL, _need, forget_redis_prefix
from tests.fakeplatform import Account, FakePlatform, running_fake
from tests.helpers import Tenant, make_tenant
from tests.servers import HubProcess, base_env, free_port

CLAIM_IDLE_MS = 1500  # another worker claims a dead one's entries this soon
DEFAULTS = {"HUB_CLAIM_IDLE_MS": str(CLAIM_IDLE_MS), "HUB_SHUTDOWN_GRACE_S": "2"}


@dataclass
class Stack:
    env: dict[str, str]
    tmp: Path
    tenant: Tenant
    fake: FakePlatform
    bot: Account
    processes: list[HubProcess] = field(default_factory=list)
    channel_id: str = ""
    secret: str = ""

    def web(self, name: str) -> HubProcess:
        port = free_port()
        process = HubProcess(
            ["serve", "--port", str(port)], self.env, port, self.tmp / f"web-{name}.log"
        )
        self.processes.append(process)
        return process.start()

    def worker(self, name: str) -> HubProcess:
        process = HubProcess(["worker"], self.env, log_path=self.tmp / f"worker-{name}.log")
        self.processes.append(process)
        return process.start()

    def api(self, web: HubProcess) -> httpx.Client:
        return httpx.Client(
            base_url=web.base_url,
            headers={"authorization": f"Bearer {self.tenant.api_token}"},
            timeout=10,
        )

    def connect_bot(self, web: HubProcess) -> None:
        with self.api(web) as api:
            connected = api.post(
                "/api/channels",
                json={"kind": "telegram", "name": "Bot", "bot_token": self.bot.token},
            )
        assert connected.status_code == 201, connected.text
        self.channel_id = connected.json()["id"]
        self.secret = connected.json()["webhook"]["secret_token"]

    def webhook(
        self, web: HubProcess, chat: int, message_id: int, text: str, timeout_s: float = 10
    ) -> httpx.Response:
        person = {"id": chat, "first_name": f"Person {chat}"}
        update = {
            "update_id": message_id,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": person | {"type": "private"},
                "from": person,
                "text": text,
            },
        }
        return httpx.post(
            f"{web.base_url}/webhooks/telegram/{self.channel_id}",
            json=update,
            headers={"x-telegram-bot-api-secret-token": self.secret},
            timeout=timeout_s,
        )

    def logs(self) -> str:
        return "\n".join(f"--- {p.args} ---\n{p.output()[-4000:]}" for p in self.processes)


@contextmanager
def make_stack(
    tmp: Path,
    *,
    database_url: str,
    create: Callable[[str], None],
    redis_url: str = REDIS_URL,
    **extra: str,
) -> Iterator[Stack]:
    """A fresh database (created with `create`, an admin SQL runner), a Redis prefix, the fake
    platform with a Telegram bot, migrations and a tenant; every process started through the
    stack is stopped, the database dropped and the prefix forgotten on the way out."""
    name = "hub_fault_" + uuid.uuid4().hex[:12]
    prefix = "test-" + uuid.uuid4().hex[:12]
    database = database_url.rsplit("/", 1)[0] + "/" + name
    bot_id = str(7_400_000_000 + uuid.uuid4().int % 100_000_000)
    bot = Account(ChannelKind.TELEGRAM, bot_id, f"{bot_id}:AAHfake-fault-token")
    if redis_url == REDIS_URL:
        _need("Redis", "127.0.0.1", 6379)  # skipped outside CI, failed under CI=true
    create(f'CREATE DATABASE "{name}"')
    try:
        with running_fake((bot,)) as fake:
            env = base_env(
                DATABASE_URL=database,
                REDIS_URL=redis_url,
                HUB_REDIS_PREFIX=prefix,
                HUB_SECRET_KEY="faults-" + uuid.uuid4().hex + uuid.uuid4().hex,
                HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
                HUB_PUBLIC_URL="https://hub.example",
                HUB_TELEGRAM_API_URL=fake.base_urls().telegram,
                **(DEFAULTS | extra),
            )
            subprocess.run(
                [sys.executable, "-m", "hub.cli", "migrate"],
                env=env,
                check=True,
                timeout=120,
                capture_output=True,
            )
            tenant = asyncio.run(make_tenant(Settings.from_env(env)))
            stack = Stack(env, tmp, tenant, fake, bot)
            try:
                yield stack
            finally:
                for process in stack.processes:
                    process.stop(signal.SIGKILL, timeout_s=10)
    finally:
        try:
            create(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            if redis_url == REDIS_URL:
                forget_redis_prefix(prefix)
