"""who connected each channel (the app-scoped id Meta's callbacks name), and what a
workspace erases when Meta asks for that person's data to be deleted

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("connected_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("connected_via", sa.String(length=20), nullable=True))
    op.create_index("ix_channels_connected_by", "channels", ["connected_by"])
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column(
                "platform_deletion_erases",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("platform_deletion_erases")
    op.drop_index("ix_channels_connected_by", table_name="channels")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("connected_via")
        batch.drop_column("connected_by")
