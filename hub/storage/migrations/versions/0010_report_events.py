"""report events; messages by workspace and time

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.storage.migrations.tenant import isolate

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_events_workspace_at", "report_events", ["workspace_id", "at"])
    op.create_index("ix_report_events_conversation_id", "report_events", ["conversation_id"])
    op.create_index("ix_messages_workspace_time", "messages", ["workspace_id", "sent_at"])
    isolate("report_events")


def downgrade() -> None:
    op.drop_index("ix_messages_workspace_time", table_name="messages")
    op.drop_index("ix_report_events_conversation_id", table_name="report_events")
    op.drop_index("ix_report_events_workspace_at", table_name="report_events")
    op.drop_table("report_events")
