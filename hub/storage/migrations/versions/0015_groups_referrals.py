"""group titles, standby, stories, referrals and searchable captions

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title", sa.String(length=200), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_chat", JSON, nullable=True))
        batch_op.add_column(
            sa.Column("standby", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("story", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("referral", JSON, nullable=True))
        batch_op.add_column(sa.Column("captions", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("captions")
        batch_op.drop_column("referral")
        batch_op.drop_column("story")
        batch_op.drop_column("standby")
        batch_op.drop_column("group_chat")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("title")
