"""The recorded platform payloads in tests/fixtures/ (public payloads recorded elsewhere; where
each came from is tests/fixtures/SOURCES.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from adapters.base import ChannelContext
from schemas.message import ChannelKind

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), f"no recorded payload {name} under tests/fixtures"
    return path


def load(name: str) -> Any:
    return json.loads(fixture_path(name).read_text())


def raw(name: str) -> bytes:
    return fixture_path(name).read_bytes()


def every(folder: str) -> list[str]:
    """The names of all fixture files of a folder, so a test can check none is left untested."""
    return sorted(p.name for p in (FIXTURES / folder).glob("*.json"))


def context(kind: ChannelKind, account_id: str = "ACCOUNT") -> ChannelContext:
    return ChannelContext(
        workspace_id=uuid.UUID("11111111-1111-4111-8111-111111111111"),
        channel_id=uuid.UUID("22222222-2222-4222-8222-222222222222"),
        kind=kind,
        account_id=account_id,
    )
