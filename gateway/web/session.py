"""Browser sessions in a signed cookie, and the CSRF check of the forms.

This module owns the session cookie: who is signed in (`email`), whether the sign-in came from a
ticket link and so covers one ticket only (`scope`), and the CSRF secret of the browser (`csrf`).
The cookie is signed, not encrypted: it holds nothing the holder may not read, and nothing the
holder can change. There is no server-side session table, so signing out clears the cookie;
a stolen cookie stays good until it expires (`SESSION_TTL`), which is why that is hours, not weeks.

CSRF protection is the synchronizer-token pattern with the token kept in the signed cookie: every
form carries the session's `csrf` value, and a POST whose field does not match it is refused.
An `Origin` header from another site is refused as well; SameSite=Lax already keeps the cookie
off cross-site POSTs in current browsers, so this is the second of three locks.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from gateway.links.web import SESSION_TTL, Purpose, Tokens

COOKIE = "postdesk_session"
CSRF_FIELD = "csrf"


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    email: str | None = None
    # A ticket number: the browser came in through a ticket link and sees that ticket only.
    scope: int | None = None
    # Set when the cookie must be (re)written at the end of the request.
    changed: bool = False

    def sign_in(self, email: str, scope: int | None = None) -> None:
        # A fresh CSRF secret on every sign-in: a token learnt before it is worth nothing after.
        self.csrf = secrets.token_urlsafe(24)
        self.email, self.scope, self.changed = email, scope, True


class Sessions:
    """Reads and writes the session cookie of one instance."""

    def __init__(self, tokens: Tokens, *, secure: bool) -> None:
        self.tokens = tokens
        self.secure = secure

    def load(self, request: Request, now: datetime | None = None) -> Session:
        """The request's session, or a new anonymous one (marked changed, so it gets stored)."""
        claims = self.tokens.loads(Purpose.SESSION, request.cookies.get(COOKIE, ""), now)
        if claims is None or not isinstance(claims.get("c"), str):
            return Session(changed=True)
        email = claims.get("e") if isinstance(claims.get("e"), str) else None
        scope = claims.get("s") if isinstance(claims.get("s"), int) else None
        return Session(csrf=claims["c"], email=email, scope=scope)

    def store(self, response: Response, session: Session) -> None:
        if not session.changed:
            return
        claims = {"c": session.csrf, "e": session.email, "s": session.scope}
        response.set_cookie(
            COOKIE,
            self.tokens.dumps(Purpose.SESSION, claims, SESSION_TTL),
            max_age=int(SESSION_TTL.total_seconds()),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax")


def same_origin(request: Request, base_url: str) -> bool:
    """False when the browser says the form was posted from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        # Older browsers and privacy settings omit Origin; the token still decides.
        return True
    ours = {_origin(base_url), f"{request.url.scheme}://{request.headers.get('host', '')}"}
    return origin.rstrip("/") in ours


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def csrf_ok(request: Request, session: Session, submitted: object, base_url: str) -> bool:
    """The form's token matches the session's, and the post did not come from another site."""
    if not isinstance(submitted, str) or not submitted or session.changed:
        # A session created by this very request has no form out yet: nothing can match it.
        return False
    return hmac.compare_digest(submitted, session.csrf) and same_origin(request, base_url)
