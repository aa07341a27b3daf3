"""The recorded platform payloads in ../shared/fixtures (nobody on this team wrote them).

CI lays shared/ beside the clone; HUB_SHARED_FIXTURES points elsewhere if needed. Missing
fixtures fail the tests under CI=true and skip them otherwise.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.base import ChannelContext
from hub.message import ChannelKind

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("HUB_SHARED_FIXTURES") or ROOT.parent / "shared" / "fixtures")


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        message = f"fixture {path} is missing (shared/ should lie beside the repository)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
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
