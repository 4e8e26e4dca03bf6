"""The SMTP client's address with each inbound message: inbound.peer

Revision ID: 0009
Revises: 0010
Create Date: 2026-12-01

An Authentication-Results header is our MTA's verdict only when our MTA handed the mail over;
the processor needs the SMTP client's IP address to tell. Empty for piped and IMAP mail, and for
rows queued before this revision (their headers are then not trusted).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound") as batch:
        batch.add_column(sa.Column("peer", sa.String(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("inbound") as batch:
        batch.drop_column("peer")
