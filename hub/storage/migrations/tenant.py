"""Row-level security for a workspace table made after migration 0007: the same grant and
policy as 0007 gave the first ones (see hub/storage/tenancy.py). Postgres only."""

from __future__ import annotations

from alembic import op

ROLE = "hub_tenant"
CURRENT = "NULLIF(current_setting('hub.workspace_id', true), '')::uuid"


def isolate(*tables: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(tables)} TO {ROLE}")
    for table in tables:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY workspace_isolation ON {table} TO {ROLE} "
            f"USING (workspace_id = {CURRENT}) WITH CHECK (workspace_id = {CURRENT})"
        )
