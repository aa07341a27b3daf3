"""The column types and field helpers the tables share (`hub.storage.models` and
`hub.storage.agentmodels`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from schemas.message import utc_now

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
# The marker of a column that holds sealed secrets (Fernet tokens, `hub.storage.vault`):
# `sa_column_kwargs={"info": SEALED}`. `hub rotate-keys` re-encrypts every column so marked
# (`hub.storage.rotation`), and tests/test_sealed.py fails on a Fernet token in a column without it.
SEALED: dict[str, Any] = {"sealed": True}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both engines (SQLite keeps no zone; we store UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            from datetime import UTC

            return value.replace(tzinfo=UTC)
        return value


def timestamp(**kw: Any) -> Any:
    return Field(default_factory=utc_now, sa_type=UTCDateTime, **kw)


def json_field(default: Any) -> Any:
    return Field(default_factory=default, sa_type=JSONType)


def json_or_none() -> Any:
    return Field(default=None, sa_type=JSONType, nullable=True)


def trigram_index(name: str, column: str) -> sa.Index:
    """A Postgres trigram index (pg_trgm) that answers `column LIKE '%...%'`: search's
    (hub.search). SQLite has none (migration 0025 says why)."""
    index = sa.Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
    return index.ddl_if(dialect="postgresql")
