"""a comment's hidden state, and the one private reply each comment may have

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.storage.migrations.tenant import isolate

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("hidden", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "comment_replies",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("comment_id", sa.String(length=200), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", "comment_id"),
    )
    op.create_index("ix_comment_replies_workspace_id", "comment_replies", ["workspace_id"])
    op.create_index("ix_comment_replies_reserved_at", "comment_replies", ["reserved_at"])
    isolate("comment_replies")


def downgrade() -> None:
    op.drop_index("ix_comment_replies_reserved_at", table_name="comment_replies")
    op.drop_index("ix_comment_replies_workspace_id", table_name="comment_replies")
    op.drop_table("comment_replies")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("hidden")
