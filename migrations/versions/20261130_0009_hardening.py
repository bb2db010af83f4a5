"""hardening: idempotency records expire and go with what they answered for

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-30 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resource_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_resource_id"), ["resource_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_resource_id"))
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))
        batch_op.drop_column("resource_id")
