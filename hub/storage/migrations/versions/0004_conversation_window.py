"""conversation window

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:44:52.309504
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel_kind", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("conversation_reads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("up_to_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("picture_url", sa.Text(), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("private_reply", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("note", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("private_reply")
    with op.batch_alter_table("conversation_reads", schema=None) as batch_op:
        batch_op.drop_column("up_to_at")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("picture_url")
        batch_op.drop_column("username")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("last_inbound_at")
        batch_op.drop_column("channel_kind")
