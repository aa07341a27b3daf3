"""contact merges: a merged-away contact, the contact it went into, and what moved

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.storage.migrations.tenant import isolate

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "contact_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("from_contact_id", sa.Uuid(), nullable=False),
        sa.Column("into_contact_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("conversation_ids", JSON, nullable=False),
        sa.Column("identity_ids", JSON, nullable=False),
        sa.Column("message_ids", JSON, nullable=False),
        sa.Column("by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["into_contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "from_contact_id"),
    )
    op.create_index("ix_contact_merges_into_contact_id", "contact_merges", ["into_contact_id"])
    isolate("contact_merges")


def downgrade() -> None:
    op.drop_table("contact_merges")
