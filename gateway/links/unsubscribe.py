"""The unsubscribe link of opt-out mail (RFC 8058 one-click): a signed token naming the address."""

from __future__ import annotations

from itsdangerous import BadData, URLSafeSerializer

from gateway.config import Config

_UNSUBSCRIBE_SALT = "postdesk-unsubscribe"


def unsubscribe_token(config: Config, email: str) -> str:
    return URLSafeSerializer(config.secret_key(), salt=_UNSUBSCRIBE_SALT).dumps({"e": email.lower()})


def read_unsubscribe_token(config: Config, token: str) -> str | None:
    try:
        data = URLSafeSerializer(config.secret_key(), salt=_UNSUBSCRIBE_SALT).loads(token)
    except BadData:
        return None
    return data.get("e") if isinstance(data, dict) else None


def unsubscribe_link(config: Config, email: str) -> str:
    return f"{config.web.base_url.rstrip('/')}/unsubscribe/{unsubscribe_token(config, email)}"
