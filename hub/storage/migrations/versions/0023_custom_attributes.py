"""custom attributes: definitions per workspace, and their values on contacts and conversations

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 03:30:00.000000

Values are a table of rows (one per value, typed columns), not a JSON column on contacts and
conversations: ordinary B-tree indexes then serve `attr.<key>=value` filters and number or
date ranges on both SQLite and Postgres, with no JSON operator that only one engine indexes.
Deleting a definition, a contact or a conversation deletes its values (foreign keys).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.storage.migrations.tenant import isolate

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "attribute_definitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("applies_to", sa.String(length=15), nullable=False),
        sa.Column("options", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "key"),
    )
    op.create_table(
        "attribute_values",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("definition_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("value_text", sa.String(length=500), nullable=False),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["definition_id"], ["attribute_definitions.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("definition_id", "contact_id"),
        sa.UniqueConstraint("definition_id", "conversation_id"),
        sa.CheckConstraint(
            "(contact_id IS NULL) <> (conversation_id IS NULL)", name="ck_attribute_values_subject"
        ),
    )
    op.create_index("ix_attribute_values_text", "attribute_values", ["definition_id", "value_text"])
    op.create_index(
        "ix_attribute_values_number", "attribute_values", ["definition_id", "value_number"]
    )
    op.create_index(op.f("ix_attribute_values_contact_id"), "attribute_values", ["contact_id"])
    op.create_index(
        op.f("ix_attribute_values_conversation_id"), "attribute_values", ["conversation_id"]
    )
    isolate("attribute_definitions", "attribute_values")


def downgrade() -> None:
    op.drop_table("attribute_values")
    op.drop_table("attribute_definitions")
