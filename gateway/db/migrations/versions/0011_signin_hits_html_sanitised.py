"""Sign-in rate limits in the database, and a mark on HTML that was sanitised when processed

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-01

Sign-in requests were counted in each process's memory: a restart forgot them, and several
daemons counted apart. `signinhit` keeps one row per allowed request (pruned as windows pass).
`message.html_sanitised` says the stored HTML is the sanitiser's own output, made within the
limits when the message was processed, so the web view shows it as it is; rows without the mark
(written before, or by hand) are sanitised when shown.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signinhit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signinhit_scope_key_at", "signinhit", ["scope", "key", "at"])
    op.add_column("message", sa.Column("html_sanitised", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("html_sanitised")
    op.drop_index("ix_signinhit_scope_key_at", table_name="signinhit")
    op.drop_table("signinhit")
