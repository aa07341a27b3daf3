"""Every table is either a workspace's (a `workspace_id` under row-level security, proved on
Postgres by tests/test_tenancy.py) or global by a decision written down with its reason
(`hub.storage.tenancy.GLOBAL_TABLES`, docs/privacy.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import SQLModel

from hub.storage import models  # noqa: F401  (every table mapped)
from hub.storage.tenancy import GLOBAL_TABLES

pytestmark = pytest.mark.unit
PRIVACY = Path(__file__).resolve().parent.parent / "docs" / "privacy.md"


def test_every_table_is_a_workspaces_or_listed_as_global() -> None:
    for name, table in SQLModel.metadata.tables.items():
        if name in GLOBAL_TABLES:
            assert "workspace_id" not in table.columns, f"{name} is a workspace's, not global"
            continue
        assert name == "workspaces" or "workspace_id" in table.columns, (
            f"{name} has no workspace_id: give it one (and a policy, hub.storage.migrations."
            "tenant.isolate), or list it in hub.storage.tenancy.GLOBAL_TABLES with why"
        )


def test_every_global_table_is_documented_with_its_reason() -> None:
    privacy = PRIVACY.read_text()
    section = privacy.split("### Global tables", 1)[1].split("\n## ", 1)[0]
    for name, why in GLOBAL_TABLES.items():
        assert f"`{name}`" in section, f"docs/privacy.md does not say why {name} is global"
        assert len(why) > 20
