"""The sender's signature beside a message's new text and full body

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

`message.text` is the customer's new words, `message.body` the whole body; the signature that
was taken off the new text (sign-off, name, phone numbers, a phone's footer) is kept here so
that nothing the customer wrote is only in the raw message.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("signature", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("signature")
