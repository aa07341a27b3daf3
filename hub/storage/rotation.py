"""`hub rotate-keys`: every sealed secret re-encrypted under the newest key of
HUB_ENCRYPTION_KEYS, while the hub keeps running; afterwards the older keys may be dropped.

Which columns hold sealed secrets is read from the models, not kept in a list here: a column
declared with `info=SEALED` (in SQLModel `sa_column_kwargs={"info": SEALED}`) holds Fernet
tokens, and every such column of every mapped table is rotated. Fernet's rotation works on the
token whatever it wraps, so a column may seal any format. `tests/test_sealed.py` fails when a
column holds Fernet tokens without the marker.

Rows are taken in small batches in primary-key order, each batch in a short transaction of
its own that locks its rows (`FOR UPDATE` on Postgres; SQLite has a single writer anyway). A
value is written only if it still holds what was read, so a token the hub refreshed meanwhile
is never put back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from hub.storage import models  # every table mapped before the metadata is read
from hub.storage.store import Store
from hub.storage.vault import SecretUnreadable, Vault

BATCH_ROWS = 100
SEALED = models.SEALED  # the column marker: `sa_column_kwargs={"info": SEALED}`


def sealed_columns(metadata: sa.MetaData | None = None) -> Iterator[sa.Column[Any]]:
    """Every column marked sealed, in a stable order (tables by dependency, then columns)."""
    for table in (metadata or SQLModel.metadata).sorted_tables:
        for column in table.columns:
            if column.info.get("sealed"):
                yield column


@dataclass(frozen=True, slots=True)
class ColumnRotation:
    table: str
    column: str
    rotated: int
    current: int  # already under the newest key
    unreadable: tuple[str, ...]  # primary keys of rows whose value no configured key opens

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True, slots=True)
class Rotation:
    columns: tuple[ColumnRotation, ...]

    @property
    def rotated(self) -> int:
        return sum(c.rotated for c in self.columns)

    @property
    def current(self) -> int:
        return sum(c.current for c in self.columns)

    @property
    def unreadable(self) -> tuple[str, ...]:
        return tuple(f"{c.name} {key}" for c in self.columns for key in c.unreadable)


async def rotate_secrets(store: Store, vault: Vault, *, batch_rows: int = BATCH_ROWS) -> Rotation:
    """Rotate every sealed column; audited as `secrets.rotated` with the counts."""
    done = tuple([await _rotate_column(store, vault, c, batch_rows) for c in sealed_columns()])
    rotation = Rotation(done)
    detail = {
        "count": rotation.rotated,
        "unreadable": len(rotation.unreadable),
        "columns": {c.name: c.rotated for c in done},
    }
    await store.audit(None, "system", None, "secrets.rotated", detail=detail)
    return rotation


async def _rotate_column(
    store: Store, vault: Vault, column: sa.Column[Any], batch_rows: int
) -> ColumnRotation:
    table = column.table
    assert isinstance(table, sa.Table)
    key = list(table.primary_key.columns)
    rotated = current = 0
    unreadable: list[str] = []
    after: tuple[Any, ...] | None = None
    while True:
        query = sa.select(*key, column).where(column.is_not(None))
        if after is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*after))
        query = query.order_by(*key).limit(batch_rows).with_for_update()
        async with store.sessions() as s, s.begin():
            conn = await s.connection()
            rows = list((await conn.execute(query)).all())
            for row in rows:
                ids, sealed = tuple(row[: len(key)]), row[len(key)]
                if not sealed or vault.is_current(sealed):
                    current += 1
                    continue
                try:
                    fresh = vault.rotate(sealed)
                except SecretUnreadable:
                    unreadable.append("/".join(str(v) for v in ids))
                    continue
                same_row = [c == v for c, v in zip(key, ids, strict=True)]
                written = await conn.execute(
                    sa.update(table).where(*same_row, column == sealed).values({column.name: fresh})
                )
                rotated += written.rowcount
        if len(rows) < batch_rows:
            break
        after = tuple(rows[-1][: len(key)])
    return ColumnRotation(table.name, column.name, rotated, current, tuple(unreadable))
