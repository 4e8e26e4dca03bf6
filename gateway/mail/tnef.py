"""Outlook's winmail.dat (TNEF): unpacked into its files and body, or kept whole when that fails."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.mail.parts import Parts

log = logging.getLogger("gateway.parse")


def expand(data: bytes, name: str, parts: Parts) -> None:
    from gateway.mail.parts import Attachment

    try:
        from tnefparse import TNEF

        tnef = TNEF(data)
    except Exception as exc:  # tnefparse raises bare ValueErrors and struct errors on junk
        log.info("could not unpack %s (%s); kept as an attachment", name, exc)
        parts.attachments.append(Attachment(name, "application/ms-tnef", data, None))
        return
    for item in tnef.attachments:
        filename = item.long_filename() or item.name or "attachment"
        if isinstance(filename, bytes):
            filename = filename.decode("utf-8", "replace")
        parts.attachments.append(Attachment(str(filename).strip("\x00"), "application/octet-stream", item.data, None))
    body = getattr(tnef, "body", None)
    if body:
        parts.add_text("text/plain", body.decode("cp1252", "replace") if isinstance(body, bytes) else str(body))
    html_body = getattr(tnef, "htmlbody", None)
    if html_body:
        html = html_body.decode("utf-8", "replace") if isinstance(html_body, bytes) else str(html_body)
        parts.add_text("text/html", html, alternative=bool(body))  # the same message, in HTML
