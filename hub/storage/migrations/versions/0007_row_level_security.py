"""row-level security on every workspace table (Postgres)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 10:50:00.000000

The role `hub_tenant` sees and writes only the rows of the workspace named by the
transaction-local setting `hub.workspace_id` (see hub/storage/tenancy.py). The connecting role owns
the tables and is not subject to the policies; it takes `hub_tenant` for work done for one
workspace. Creating the role needs CREATEROLE once per cluster; a role made beforehand by a
database administrator is used as it is. `users` holds accounts, which may belong to several
workspaces, so it has no workspace and no policy: members are reached through `memberships`.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "hub_tenant"
CURRENT = "NULLIF(current_setting('hub.workspace_id', true), '')::uuid"
WORKSPACE_TABLES = (
    "memberships",
    "api_tokens",
    "channels",
    "channel_accounts",
    "contacts",
    "contact_identities",
    "conversations",
    "conversation_reads",
    "conversation_labels",
    "messages",
    "audit_events",
    "deletion_requests",
)
GRANTED = ("workspaces", "users", *WORKSPACE_TABLES)


def _policies() -> list[tuple[str, str]]:
    keyed = [(table, f"workspace_id = {CURRENT}") for table in WORKSPACE_TABLES]
    return [("workspaces", f"id = {CURRENT}"), *keyed]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Roles belong to the cluster: another database (or a concurrent migration) may have
    # made it already.
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN
                EXECUTE format('GRANT {ROLE} TO %I', current_user);
            END IF;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(GRANTED)} TO {ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE audit_events_id_seq TO {ROLE}")
    for table, condition in _policies():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY workspace_isolation ON {table} TO {ROLE} "
            f"USING ({condition}) WITH CHECK ({condition})"
        )
    # The audit chain is one over the whole table: its head is read past the policy, and
    # nothing but the head's id and hash.
    op.execute(
        """
        CREATE FUNCTION audit_chain_head() RETURNS TABLE (id integer, hash varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION audit_chain_head() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION audit_chain_head() TO {ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION audit_chain_head()")
    for table, _ in reversed(_policies()):
        op.execute(f"DROP POLICY workspace_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON SEQUENCE audit_events_id_seq FROM {ROLE}")
    op.execute(f"REVOKE ALL ON {', '.join(GRANTED)} FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ROLE}")
