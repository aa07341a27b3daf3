"""search that works in Turkish: a folded `search` column on messages and contacts

Revision ID: 0025
Revises: 0023
Create Date: 2026-12-05 03:30:00.000000

The column holds what `hub.search.folding.folded` makes of the row (a message's text and
its attachments' captions and file names; a contact's name, e-mail and username), and
search matches the folded query in it. Existing rows are folded here, a batch at a time, by
the same Python function the application writes with.

On Postgres the column gets a trigram GIN index (pg_trgm), which answers the substring
match `search LIKE '%...%'` without reading every row. pg_trgm ships with Postgres and is a
trusted extension (a database owner may create it); where it cannot be created the index is
left out and search still answers, only slower. LIKE is marked LEAKPROOF in this database so
that the index serves the tenant role under row-level security (`_leakproof_like` says why).
SQLite has no such index: the embedded default scans (docs/performance.md gives the figures).
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.search.folding import folded

revision: str = "0025"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000
log = logging.getLogger("alembic.runtime.migration")

SOURCES = {
    "messages": ("text", "captions"),
    "contacts": ("name", "email", "username"),
}


def upgrade() -> None:
    for table in SOURCES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("search", sa.Text(), nullable=True))
    bind = op.get_bind()
    for table, columns in SOURCES.items():
        _backfill(bind, table, columns)
    if bind.dialect.name == "postgresql" and _trigrams(bind):
        for table in SOURCES:
            op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (search gin_trgm_ops)")
        _leakproof_like(bind)


def _backfill(bind: sa.Connection, table: str, columns: tuple[str, ...]) -> None:
    """Fold every row, BATCH at a time in id order (keyset, so each batch is one index read)."""
    rows = sa.table(table, sa.column("id", sa.Uuid()), sa.column("search", sa.Text()))
    sources = [sa.column(c, sa.Text()) for c in columns]
    update = (
        sa.update(rows)
        .where(rows.c.id == sa.bindparam("row_id"))
        .values(search=sa.bindparam("folded"))
    )
    last = None
    while True:
        query = sa.select(rows.c.id, *sources).select_from(rows).order_by(rows.c.id).limit(BATCH)
        if last is not None:
            query = query.where(rows.c.id > last)
        batch = bind.execute(query).all()
        if not batch:
            return
        changed = [
            {"row_id": row[0], "folded": value}
            for row in batch
            if (value := folded(*row[1:])) is not None
        ]
        if changed:
            bind.execute(update, changed)
        last = batch[-1][0]


def _trigrams(bind: sa.Connection) -> bool:
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as error:
        log.warning("search: no trigram index (pg_trgm: %s); search scans instead", error.orig)
        return False
    return True


def _leakproof_like(bind: sa.Connection) -> None:
    """Let the planner use an index for LIKE under row-level security.

    The hub's queries run in the tenant role, under a policy (migration 0007). Postgres
    evaluates a condition that is not marked LEAKPROOF only after the policy's, so it will not
    use an index for it: `search LIKE '%...%'` read every row of the table, the trigram index
    unused (2.4 s for a rare word in a million messages against under 10 ms). LIKE's function,
    `textlike`, can only fail on a malformed pattern (its own argument, never a row's value),
    and the tenant role runs nothing but the hub's own statements, so this database marks it
    LEAKPROOF. Only a superuser may; without one the index is still there for the owner's
    role, and search answers correctly, only slower."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text("ALTER FUNCTION textlike(text, text) LEAKPROOF"))
    except sa.exc.DBAPIError as error:
        log.warning("search: LIKE not marked leakproof (%s); search scans instead", error.orig)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _not_leakproof_like(op.get_bind())
    for table in SOURCES:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
        with op.batch_alter_table(table) as batch:
            batch.drop_column("search")


def _not_leakproof_like(bind: sa.Connection) -> None:
    try:
        with bind.begin_nested():
            bind.execute(sa.text("ALTER FUNCTION textlike(text, text) NOT LEAKPROOF"))
    except sa.exc.DBAPIError:
        pass  # it was never marked (no superuser): nothing to undo
