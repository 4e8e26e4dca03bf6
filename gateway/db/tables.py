"""The SQLAlchemy Core table of each model, for the code that skips the ORM on hot paths.

SQLModel types `Model.__table__` loosely; these names are typed once here instead of in every
module that writes prebuilt statements.
"""

from __future__ import annotations

from sqlalchemy import Table

from gateway.db import models

CUSTOMER: Table = models.Customer.__table__  # type: ignore[assignment]
TICKET: Table = models.Ticket.__table__  # type: ignore[assignment]
PARTICIPANT: Table = models.Participant.__table__  # type: ignore[assignment]
MESSAGE: Table = models.Message.__table__  # type: ignore[assignment]
INBOUND: Table = models.Inbound.__table__  # type: ignore[assignment]
OUTBOX: Table = models.Outbox.__table__  # type: ignore[assignment]
QUARANTINE: Table = models.Quarantine.__table__  # type: ignore[assignment]
EVENT: Table = models.TicketEvent.__table__  # type: ignore[assignment]
ATTACHMENT: Table = models.Attachment.__table__  # type: ignore[assignment]
MESSAGE_ATTACHMENT: Table = models.MessageAttachment.__table__  # type: ignore[assignment]
SUPPRESSION: Table = models.Suppression.__table__  # type: ignore[assignment]
BOUNCE: Table = models.Bounce.__table__  # type: ignore[assignment]
BUDGET: Table = models.Budget.__table__  # type: ignore[assignment]
RATING: Table = models.Rating.__table__  # type: ignore[assignment]
ONCE: Table = models.Once.__table__  # type: ignore[assignment]
SIGNIN_HIT: Table = models.SignInHit.__table__  # type: ignore[assignment]
