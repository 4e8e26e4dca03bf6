"""Message body and mailbox: the full text beside the new text, and which of our addresses a copy is for

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("message", sa.Column("body", sa.Text(), nullable=False, server_default=""))
    op.add_column("message", sa.Column("mailbox", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False,
                                       server_default=""))


def downgrade() -> None:
    op.drop_column("message", "mailbox")
    op.drop_column("message", "body")
