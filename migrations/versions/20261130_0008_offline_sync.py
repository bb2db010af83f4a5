"""offline sync: entries stored at receipt time when a phone's clock ran ahead are flagged

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("dosing_sessions", "intentions", "reflections", "checkins", "assessments")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            # Existing entries were never adjusted: false for every row already there.
            batch_op.add_column(
                sa.Column("clock_adjusted", sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("clock_adjusted")
