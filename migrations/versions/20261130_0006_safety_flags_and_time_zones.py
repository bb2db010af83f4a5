"""safety flags as records, each account's time zone, and when a dosing session ended

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 00:10:00.000000

Questionnaires already flagged (PHQ-9 item 9 above 0) get their flag record, open: nobody has
acknowledged them, and until now a flag vanished after 14 days, seen or not. Downgrading drops
the records (acknowledgements included; their audit records stay) and the time zones.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PHQ-9 item 9, 1-based, as api.assessments.scoring names it (a migration keeps its own copy).
SAFETY_ITEM = 9
BATCH = 500


def upgrade() -> None:
    op.create_table(
        "safety_flags",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("item_value", sa.Integer(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Uuid(), nullable=True),
        sa.Column("acknowledged_grant_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_safety_flags_assessment_id_assessments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["accounts.id"],
            name=op.f("fk_safety_flags_owner_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_flags")),
        sa.UniqueConstraint("assessment_id", name=op.f("uq_safety_flags_assessment_id")),
    )
    with op.batch_alter_table("safety_flags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_safety_flags_owner_received", ["owner_id", "received_at", "id"], unique=False
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False)
        )
    with op.batch_alter_table("dosing_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
    _flag_what_was_flagged()


def _flag_what_was_flagged() -> None:
    assessments = sa.table(
        "assessments",
        sa.column("id", sa.Uuid()),
        sa.column("owner_id", sa.Uuid()),
        sa.column("answers", sa.JSON()),
        sa.column("completed_at", sa.DateTime(timezone=True)),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("safety_flag", sa.Boolean()),
    )
    flags = sa.table(
        "safety_flags",
        sa.column("id", sa.Uuid()),
        sa.column("owner_id", sa.Uuid()),
        sa.column("assessment_id", sa.Uuid()),
        sa.column("item_value", sa.Integer()),
        sa.column("completed_at", sa.DateTime(timezone=True)),
        sa.column("received_at", sa.DateTime(timezone=True)),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            assessments.c.id,
            assessments.c.owner_id,
            assessments.c.answers,
            assessments.c.completed_at,
            assessments.c.created_at,
        )
        .where(assessments.c.safety_flag.is_(True))
        .order_by(assessments.c.id)
    ).all()
    records = [
        {
            "id": uuid.uuid4(),
            "owner_id": row.owner_id,
            "assessment_id": row.id,
            "item_value": row.answers[SAFETY_ITEM - 1],
            "completed_at": row.completed_at,
            # When the server received it: the row's creation, the best record there is.
            "received_at": row.created_at,
        }
        for row in rows
    ]
    for start in range(0, len(records), BATCH):
        connection.execute(sa.insert(flags), records[start : start + BATCH])


def downgrade() -> None:
    with op.batch_alter_table("dosing_sessions", schema=None) as batch_op:
        batch_op.drop_column("ended_at")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
    with op.batch_alter_table("safety_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_safety_flags_owner_received")
    op.drop_table("safety_flags")
