"""A customer's own time zone: customer.timezone

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-01

Pages and mail show times in the reader's zone. A customer may have one of their own; null
means their organisation's (directory), else `tickets.timezone`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("timezone")
