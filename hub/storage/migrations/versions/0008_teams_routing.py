"""teams, routing state on memberships and conversations

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 20:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.storage.migrations.tenant import isolate

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("assignment", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    op.create_index("ix_teams_workspace_id", "teams", ["workspace_id"])
    op.create_table(
        "team_members",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
    )
    op.create_index("ix_team_members_workspace_id", "team_members", ["workspace_id"])
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("capacity", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_conversations_team_id_teams", "teams", ["team_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(
            "ix_conversations_assignee", ["workspace_id", "assignee_id", "status"]
        )
    isolate("teams", "team_members")


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_assignee")
        batch_op.drop_constraint("fk_conversations_team_id_teams", type_="foreignkey")
        batch_op.drop_column("team_id")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("last_assigned_at")
        batch_op.drop_column("capacity")
    op.drop_index("ix_team_members_workspace_id", table_name="team_members")
    op.drop_table("team_members")
    op.drop_index("ix_teams_workspace_id", table_name="teams")
    op.drop_table("teams")
