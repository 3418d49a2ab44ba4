"""bots, published versions, dialog state; bot pinned on widgets and conversations

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warmline.store.schema

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bots",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", warmline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "bot_versions",
        sa.Column("bot_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("published_at", warmline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"]),
        sa.PrimaryKeyConstraint("bot_id", "version"),
    )
    op.create_table(
        "dialog_states",
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", warmline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    with op.batch_alter_table("widgets") as batch:
        batch.add_column(sa.Column("bot_id", sa.String(length=64), nullable=True))
        batch.create_foreign_key("fk_widgets_bot_id_bots", "bots", ["bot_id"], ["id"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("bot_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("bot_version", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_conversations_bot_id_bots", "bots", ["bot_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("fk_conversations_bot_id_bots", type_="foreignkey")
        batch.drop_column("bot_version")
        batch.drop_column("bot_id")
    with op.batch_alter_table("widgets") as batch:
        batch.drop_constraint("fk_widgets_bot_id_bots", type_="foreignkey")
        batch.drop_column("bot_id")
    op.drop_table("dialog_states")
    op.drop_table("bot_versions")
    op.drop_table("bots")
