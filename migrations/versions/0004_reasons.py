"""why they left: contact reasons, reason-shaped follow-ups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailer.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contact_reasons",
        sa.Column("id", BigId, nullable=False),
        sa.Column("store_id", BigId, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", mailer.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_contact_reasons_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_contact_reasons_contact_id_contacts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_contact_reasons_message_id_messages"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_contact_reasons_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_reasons")),
        sa.UniqueConstraint("message_id", "reason", name=op.f("uq_contact_reasons_message_id_reason")),
    )
    op.create_index("ix_contact_reasons_store_time", "contact_reasons", ["store_id", "created_at"], unique=False)
    op.create_index(op.f("ix_contact_reasons_contact_id"), "contact_reasons", ["contact_id"], unique=False)
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reason_at", mailer.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("discount_override", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("template_override", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("subject_override", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("subject_override")
        batch_op.drop_column("template_override")
        batch_op.drop_column("discount_override")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("reason_at")
        batch_op.drop_column("reason")
    op.drop_index(op.f("ix_contact_reasons_contact_id"), table_name="contact_reasons")
    op.drop_index("ix_contact_reasons_store_time", table_name="contact_reasons")
    op.drop_table("contact_reasons")
