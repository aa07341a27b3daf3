"""`hub demo`: seed a demo workspace once, and remember its credentials in the data directory."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select

from hub import filemodes
from hub.storage.models import Channel
from hub.storage.store import Store

DEMO_EMAIL = "admin@demo.sosyocrm.local"


@dataclass(frozen=True)
class DemoSeed:
    email: str
    password: str
    public_key: str


def demo_password() -> str:
    """Random enough to follow the password rule (hub.accounts.passwords) by a wide margin."""
    return secrets.token_urlsafe(18)


async def seed(store: Store, data_dir: Path, origins: list[str]) -> DemoSeed:
    """Create the demo workspace, admin and web-chat channel on the first run; on later runs
    reuse them, only widening the channel's allowed origins to this run's URLs."""
    path = data_dir / "demo.json"
    if path.exists():
        filemodes.tighten(path, filemodes.PRIVATE_FILE)
        saved = json.loads(path.read_text())
        async with store.sessions() as s, s.begin():
            channel = (
                await s.exec(select(Channel).where(Channel.public_key == saved["public_key"]))
            ).one()
            channel.allowed_origins = sorted(set(channel.allowed_origins) | set(origins))
            s.add(channel)
        return DemoSeed(saved["email"], saved["password"], saved["public_key"])
    password = demo_password()
    workspace, _ = await store.create_workspace_with_admin(
        "Demo workspace", DEMO_EMAIL, password, "Demo admin"
    )
    channel = await store.create_channel(
        workspace.id, "webchat", "Website chat", allowed_origins=origins
    )
    assert channel.public_key is not None
    result = DemoSeed(DEMO_EMAIL, password, channel.public_key)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, filemodes.PRIVATE_FILE)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {"email": result.email, "password": result.password, "public_key": result.public_key}, f
        )
    return result
