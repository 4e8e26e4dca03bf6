"""Lifecycle, attachments, bounces, budgets, ratings: the tables issues 3-8 build on

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_attachment()
    _create_budget()
    _create_once()
    _create_suppression()
    _create_bounce()
    _create_rating()
    _create_ticketevent()
    _create_messageattachment()
    _extend_customer()
    _extend_message()
    _extend_ticket()


def _create_attachment() -> None:
    """The `attachment` table and its indexes."""
    op.create_table('attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_sha256'), ['sha256'], unique=True)


def _create_budget() -> None:
    """The `budget` table and its indexes."""
    op.create_table('budget',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('tripped_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )


def _create_once() -> None:
    """The `once` table and its indexes."""
    op.create_table('once',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def _create_suppression() -> None:
    """The `suppression` table and its indexes."""
    op.create_table('suppression',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('suppression', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppression_email'), ['email'], unique=True)


def _create_bounce() -> None:
    """The `bounce` table and its indexes."""
    op.create_table('bounce',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('hard', sa.Boolean(), nullable=False),
    sa.Column('diagnostic', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('original_message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bounce', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bounce_inbound_id'), ['inbound_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_recipient'), ['recipient'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_ticket_id'), ['ticket_id'], unique=False)


def _create_rating() -> None:
    """The `rating` table and its indexes."""
    op.create_table('rating',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('agent', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id')
    )
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rating_agent'), ['agent'], unique=False)


def _create_ticketevent() -> None:
    """The `ticketevent` table and its indexes."""
    op.create_table('ticketevent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ticketevent', schema=None) as batch_op:
        batch_op.create_index('ix_ticketevent_ticket_at', ['ticket_id', 'at'], unique=False)


def _create_messageattachment() -> None:
    """The `messageattachment` table and its indexes."""
    op.create_table('messageattachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('attachment_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content_id', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachment.id'], ),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('messageattachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messageattachment_message_id'), ['message_id'], unique=False)


def _extend_customer() -> None:
    """The new columns and indexes of `customer`."""
    op.add_column('customer', sa.Column('organisation', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    op.add_column('customer', sa.Column('notifications_off', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_customer_organisation', 'customer', ['organisation'], unique=False)


def _extend_message() -> None:
    """The new columns and indexes of `message`."""
    op.add_column('message', sa.Column('visibility', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='public'))
    op.add_column('message', sa.Column('html', sa.Text(), nullable=False, server_default=''))
    op.add_column('message', sa.Column('trace', sa.Text(), nullable=False, server_default='{}'))


def _extend_ticket() -> None:
    """The new columns and indexes of `ticket`."""
    op.add_column('ticket', sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    op.add_column('ticket', sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='normal'))
    op.add_column('ticket', sa.Column('sla_plan', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.add_column('ticket', sa.Column('assignee', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
    op.add_column('ticket', sa.Column('organisation', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    op.add_column('ticket', sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
    op.add_column('ticket', sa.Column('tags', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default=''))
    op.add_column('ticket', sa.Column('fields', sa.Text(), nullable=False, server_default='{}'))
    op.add_column('ticket', sa.Column('missing_fields', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default=''))
    op.add_column('ticket', sa.Column('linked_ticket_id', sa.Integer(), nullable=True))
    op.add_column('ticket', sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column('ticket', sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index('ix_ticket_assignee', 'ticket', ['assignee'], unique=False)
    op.create_index('ix_ticket_department', 'ticket', ['department'], unique=False)
    op.create_index('ix_ticket_organisation', 'ticket', ['organisation'], unique=False)
    op.create_index('ix_ticket_updated_at', 'ticket', ['updated_at'], unique=False)
    # SQLite cannot add a constraint to an existing table without rebuilding it.
    if op.get_bind().dialect.name != 'sqlite':
        op.create_foreign_key('fk_ticket_linked_ticket', 'ticket', 'ticket', ['linked_ticket_id'], ['id'])


def downgrade() -> None:
    for index, table in (("ix_ticket_assignee", "ticket"), ("ix_ticket_department", "ticket"),
                         ("ix_ticket_organisation", "ticket"), ("ix_ticket_updated_at", "ticket"),
                         ("ix_customer_organisation", "customer")):
        op.drop_index(index, table_name=table)
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_ticket_linked_ticket", "ticket", type_="foreignkey")
    # SQLite has had a native DROP COLUMN since 3.35, so no table rebuild is needed here.
    for table, columns in (
        ("ticket", ("closed_at", "resolved_at", "linked_ticket_id", "missing_fields", "fields", "tags",
                    "language", "organisation", "assignee", "sla_plan", "priority", "topic")),
        ("message", ("trace", "html", "visibility")),
        ("customer", ("notifications_off", "organisation")),
    ):
        for column in columns:
            op.drop_column(table, column)
    for table in ("messageattachment", "ticketevent", "rating", "bounce", "suppression", "once", "budget",
                  "attachment"):
        op.drop_table(table)
