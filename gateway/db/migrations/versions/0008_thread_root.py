"""Outlook's Thread-Index root on messages, so a reply carrying nothing else threads

Revision ID: 0008
Revises: 0011
Create Date: 2026-12-01

Outlook answers with a `Thread-Index` whose first 22 bytes are the conversation's; some of its
replies carry no In-Reply-To or References. Our mail to customers carries one per ticket and
keeps its root (hex) on the outbound message, so such a reply finds its ticket. Deferred mail needs no column: an outbox
row's `next_attempt_at` is already its not-before time.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.add_column(sa.Column("thread_root", sa.String(length=64), nullable=False, server_default=""))
        batch_op.create_index("ix_message_thread_root", ["thread_root"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_index("ix_message_thread_root")
        batch_op.drop_column("thread_root")
