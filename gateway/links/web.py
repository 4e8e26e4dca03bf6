"""Signed tokens for the web history: sign-in links, ticket links, feedback links, sessions.

This module owns the token formats and their lifetimes. Every token is an HMAC-signed JSON
payload (itsdangerous) under the instance secret (`Config.secret_key`), with a salt per purpose so
that a token made for one use is refused for every other (a feedback link never signs anybody in).
The expiry is a field of the signed payload rather than the signer's timestamp, so that callers
(and tests) pass "now" explicitly.

Single use is not decided here: a sign-in token carries a random id (`jti`) that
`gateway.web.auth` records in the `Once` table when the link is used.

`ticket_link` and `feedback_links` are what mail templates put into notifications.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from gateway.config import Config

# A sign-in link is read within minutes of asking for it; a short life limits a leaked mailbox.
SIGNIN_TTL = timedelta(minutes=20)
# Links in notifications must outlive the ticket's active life; they open one ticket only.
TICKET_LINK_TTL = timedelta(days=90)
# The resolution mail's rating links: a customer may answer after a holiday.
FEEDBACK_TTL = timedelta(days=60)
SESSION_TTL = timedelta(hours=12)
SCORES = (1, 2, 3, 4, 5)


class Purpose(StrEnum):
    SIGNIN = "signin"
    TICKET = "ticket"
    FEEDBACK = "feedback"
    SESSION = "session"


@dataclass(frozen=True)
class SigninClaim:
    email: str
    jti: str
    next: str


@dataclass(frozen=True)
class TicketClaim:
    number: int
    email: str


@dataclass(frozen=True)
class FeedbackClaim:
    number: int
    score: int


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


class Tokens:
    """Makes and checks the signed tokens of one instance secret."""

    def __init__(self, secret: bytes) -> None:
        self._serializers = {
            purpose: URLSafeSerializer(secret, salt=f"postdesk.web.{purpose.value}") for purpose in Purpose
        }

    def dumps(self, purpose: Purpose, claims: dict[str, Any], ttl: timedelta, now: datetime | None = None) -> str:
        expires = int((_now(now) + ttl).timestamp())
        return str(self._serializers[purpose].dumps({**claims, "x": expires}))

    def loads(self, purpose: Purpose, token: str, now: datetime | None = None) -> dict[str, Any] | None:
        """The claims of a valid, unexpired token of this purpose; None for anything else."""
        try:
            claims = self._serializers[purpose].loads(token)
        except BadData:
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("x"), int):
            return None
        if claims["x"] <= _now(now).timestamp():
            return None
        return claims

    # -- sign-in links ---------------------------------------------------------------------

    def signin(self, email: str, next_path: str = "", now: datetime | None = None) -> str:
        claims = {"e": email, "j": secrets.token_urlsafe(12), "n": next_path}
        return self.dumps(Purpose.SIGNIN, claims, SIGNIN_TTL, now)

    def read_signin(self, token: str, now: datetime | None = None) -> SigninClaim | None:
        claims = self.loads(Purpose.SIGNIN, token, now)
        if claims is None or not all(isinstance(claims.get(k), str) for k in ("e", "j", "n")):
            return None
        return SigninClaim(claims["e"], claims["j"], claims["n"])

    # -- ticket links ----------------------------------------------------------------------

    def ticket(self, number: int, email: str, now: datetime | None = None) -> str:
        return self.dumps(Purpose.TICKET, {"t": number, "e": email.lower()}, TICKET_LINK_TTL, now)

    def read_ticket(self, token: str, now: datetime | None = None) -> TicketClaim | None:
        claims = self.loads(Purpose.TICKET, token, now)
        if claims is None or not isinstance(claims.get("t"), int) or not isinstance(claims.get("e"), str):
            return None
        return TicketClaim(claims["t"], claims["e"])

    # -- feedback links --------------------------------------------------------------------

    def feedback(self, number: int, score: int, now: datetime | None = None) -> str:
        if score not in SCORES:
            raise ValueError(f"a rating is 1 to 5, got {score}")
        return self.dumps(Purpose.FEEDBACK, {"t": number, "s": score}, FEEDBACK_TTL, now)

    def read_feedback(self, token: str, now: datetime | None = None) -> FeedbackClaim | None:
        claims = self.loads(Purpose.FEEDBACK, token, now)
        if claims is None or not isinstance(claims.get("t"), int) or claims.get("s") not in SCORES:
            return None
        return FeedbackClaim(claims["t"], claims["s"])


def _base(config: Config) -> str:
    return config.web.base_url.rstrip("/")


@lru_cache(maxsize=4)
def tokens_of(secret: bytes) -> Tokens:
    """One `Tokens` per secret: a confirmation's link need not build a serializer per purpose."""
    return Tokens(secret)


def ticket_link(config: Config, ticket_number: int, email: str) -> str:
    """A link for a notification to `email`: opens that ticket without a separate sign-in."""
    return f"{_base(config)}/t/{tokens_of(config.secret_key()).ticket(ticket_number, email)}"


def feedback_links(config: Config, ticket_number: int) -> dict[int, str]:
    """The five one-click rating links (score -> URL) for a resolution mail."""
    tokens = tokens_of(config.secret_key())
    return {score: f"{_base(config)}/feedback/{tokens.feedback(ticket_number, score)}" for score in SCORES}


def signin_link(config: Config, token: str) -> str:
    return f"{_base(config)}/signin/{token}"
