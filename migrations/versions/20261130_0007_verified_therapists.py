"""verified therapists: invitations, pairing codes, read-token revocation, stray requests

Existing therapist accounts become unverified (the column's default): they keep their grants and
receive no new ones until the operator verifies them. Each grant takes its patient's current name.

Revision ID: 0007
Revises: 0008
Create Date: 2026-11-29 23:48:44.932220
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_read_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_read_tokens")),
    )
    op.create_table(
        "stray_requests",
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("resource", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stray_requests")),
    )
    with op.batch_alter_table("stray_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stray_requests_therapist_at", ["therapist_id", "at"], unique=False
        )

    op.create_table(
        "therapist_invitations",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("clinic", sa.String(length=100), nullable=True),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_therapist_invitations")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_therapist_invitations_code_hash")),
    )
    with op.batch_alter_table("therapist_invitations", schema=None) as batch_op:
        batch_op.create_index("ix_therapist_invitations_email", ["email"], unique=False)

    op.create_table(
        "pairing_codes",
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["accounts.id"],
            name=op.f("fk_pairing_codes_therapist_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pairing_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_pairing_codes_code_hash")),
    )
    with op.batch_alter_table("pairing_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pairing_codes_therapist_id"), ["therapist_id"], unique=False
        )

    # Not in batch mode: on SQLite that copies `accounts` into a new table and drops the old one,
    # and with foreign keys on, dropping it deletes every row that points at an account (grants,
    # journals, logins...) by cascade. A plain ADD COLUMN touches no row.
    op.add_column(
        "accounts", sa.Column("verified", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("accounts", sa.Column("clinic", sa.String(length=100), nullable=True))
    op.add_column(
        "accounts", sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True)
    )

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_name", sa.String(length=100), nullable=True))
    op.execute(
        "UPDATE grants SET patient_name = "
        "(SELECT display_name FROM accounts WHERE accounts.id = grants.patient_id)"
    )
    # Batch mode is safe here: no table points at grants, so dropping the old copy cascades to
    # nothing.
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.alter_column("patient_name", existing_type=sa.String(length=100), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("patient_name")

    # Plain DROP COLUMN (SQLite 3.35+), for the reason given in upgrade().
    for column in ("deactivated_at", "clinic", "verified"):
        op.execute(f"ALTER TABLE accounts DROP COLUMN {column}")

    with op.batch_alter_table("pairing_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pairing_codes_therapist_id"))

    op.drop_table("pairing_codes")
    with op.batch_alter_table("therapist_invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_therapist_invitations_email")

    op.drop_table("therapist_invitations")
    with op.batch_alter_table("stray_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_stray_requests_therapist_at")

    op.drop_table("stray_requests")
    op.drop_table("revoked_read_tokens")
