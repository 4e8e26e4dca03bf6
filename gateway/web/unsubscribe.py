"""Opting out of status mail: the link in every opt-out notification, and RFC 8058 one-click.

GET shows what the link does and a button; POST does it. The signed token in the path is the
whole authorisation (it names one address and cannot be forged), so the POST needs no session
or CSRF token: RFC 8058 mail clients POST `List-Unsubscribe=One-Click` with no cookies at all.
Opting out stops only opt-out mail; questions from an agent and the resolution still arrive.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.db.tables import CUSTOMER
from gateway.links.unsubscribe import read_unsubscribe_token
from gateway.web.context import Visit, Web

log = logging.getLogger("gateway.web")


def _opt_out(web: Web, email: str) -> bool:
    with web.writer.begin() as conn:
        changed = conn.execute(update(CUSTOMER).where(CUSTOMER.c.email == email).values(notifications_off=True))
        return bool(changed.rowcount)


async def confirm_form(request: Request) -> Response:
    visit = Visit.of(request)
    email = read_unsubscribe_token(visit.web.config, request.path_params["token"])
    if email is None:
        return visit.bad_link()
    return visit.page("unsubscribe", email=email, done=False)


async def unsubscribe(request: Request) -> Response:
    visit = Visit.of(request)
    email = read_unsubscribe_token(visit.web.config, request.path_params["token"])
    if email is None:
        return visit.bad_link()
    await run_in_threadpool(_opt_out, visit.web, email)
    log.info("%s opted out of status mail", email)
    return visit.page("unsubscribe", email=email, done=True)
