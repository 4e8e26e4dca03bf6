"""The inbound queue knows each message's Message-ID and how often it waited for its parent

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01

A reply that reaches one daemon while its parent is still in another daemon's batch must wait
for the parent rather than open a ticket of its own: the processor looks the reply's
In-Reply-To and References up among the queued Message-IDs. `deferrals` bounds the waiting.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound") as batch:
        batch.add_column(sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=998), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("deferrals", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_inbound_message_id", "inbound", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_inbound_message_id", table_name="inbound")
    with op.batch_alter_table("inbound") as batch:
        batch.drop_column("deferrals")
        batch.drop_column("message_id")
