"""changes that wait for their message

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 21:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.storage.migrations.tenant import isolate

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "waiting_changes",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=45), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("platform_message_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "event_id"),
    )
    op.create_index(
        "ix_waiting_changes_message", "waiting_changes", ["channel_id", "platform_message_id"]
    )
    op.create_index("ix_waiting_changes_received", "waiting_changes", ["received_at"])
    op.create_index(
        op.f("ix_waiting_changes_conversation_id"), "waiting_changes", ["conversation_id"]
    )
    isolate("waiting_changes")


def downgrade() -> None:
    op.drop_index(op.f("ix_waiting_changes_conversation_id"), table_name="waiting_changes")
    op.drop_index("ix_waiting_changes_received", table_name="waiting_changes")
    op.drop_index("ix_waiting_changes_message", table_name="waiting_changes")
    op.drop_table("waiting_changes")
