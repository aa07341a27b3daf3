"""WhatsApp message templates, per channel

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 21:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.storage.migrations.tenant import isolate

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "whatsapp_templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("waba_id", sa.String(length=100), nullable=False),
        sa.Column("template_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("parameter_format", sa.String(length=20), nullable=False),
        sa.Column("components", _JSON, nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "name", "language"),
    )
    op.create_index("ix_whatsapp_templates_workspace_id", "whatsapp_templates", ["workspace_id"])
    op.create_index("ix_whatsapp_templates_waba", "whatsapp_templates", ["waba_id", "template_id"])
    isolate("whatsapp_templates")


def downgrade() -> None:
    op.drop_index("ix_whatsapp_templates_waba", table_name="whatsapp_templates")
    op.drop_index("ix_whatsapp_templates_workspace_id", table_name="whatsapp_templates")
    op.drop_table("whatsapp_templates")
