"""The SMTP intake: an aiosmtpd handler that only accepts our mailboxes and answers 250 after commit.

The handler is deliberately thin (aiosmtpd's own model): MAIL and RCPT check the address (553
with the reason for one no relay or database would take), DATA hands the raw bytes to the group
writer and waits for the commit. Size limits are aiosmtpd's
`data_size_limit` (552 on excess); relaying is refused with 550.

Screening at DATA time (the `reject` rules, `gateway.screen`) is injected by the daemon as a
`Screen` and runs in a worker thread: it parses the whole message, which must not hold up the
loop that answers the other clients and feeds the systemd watchdog.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import AnyStr, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway import metrics
from gateway.config import Config
from gateway.intake.data import LeanData
from gateway.intake.envelope import QuickAddresses
from gateway.intake.mailboxes import Mailboxes
from gateway.intake.writer import GroupWriter, InboundItem
from gateway.validate import address_problem

log = logging.getLogger("gateway.smtp")

REFUSED_RELAY = "550 5.7.1 Relaying denied: not a mailbox served here"
BAD_ADDRESS = "553 5.1.3 Bad {what} address syntax: {problem}"
TEMP_FAILURE = "451 4.3.0 Temporary failure storing the message, try again later"
NO_RECIPIENTS = "554 5.5.1 No valid recipients"


class PostdeskSMTP(QuickAddresses, LeanData):
    """aiosmtpd's protocol with room for long lines, reading DATA into one buffer and plain
    envelope addresses without the header parser.

    RFC 5321 limits a line to 1,000 octets, but real clients send longer ones (HTML on one
    line, unwrapped 8-bit text) and MTAs such as Postfix accept them; refusing them would
    bounce a customer's mail over a formality.
    """

    line_length_limit = 64 * 1024

    async def push(self, status: AnyStr) -> None:
        # aiosmtpd refuses oversize mail itself (SIZE= on MAIL FROM, or too much DATA) without
        # asking the handler; its 552 replies pass through here, where they can be counted.
        if status[:3] in ("552", b"552"):
            metrics.refused("size")
        await super().push(status)


class Screen(Protocol):
    """A check of a whole message before it is accepted (the daemon passes `gateway.screen.RejectRules`)."""

    def active(self) -> bool:
        """Cheap, asked on the loop: whether the check could refuse anything at all."""

    def __call__(self, raw: bytes, rcpt_to: list[str], mail_from: str) -> str | None:
        """Why the message is refused, or None; called in a worker thread."""


class IntakeHandler:
    """aiosmtpd's handler: which envelopes we take, and 250 only once the message is committed."""

    def __init__(self, mailboxes: Mailboxes, writer: GroupWriter, stats: dict[str, int],
                 screen: Screen | None = None) -> None:
        self.mailboxes = mailboxes
        self.writer = writer
        self.stats = stats
        self.screen = screen

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        # The null sender (bounces) is fine; anything else must be an address we could store
        # and answer.
        problem = address_problem(address) if address not in ("", "<>") else None
        if problem:
            metrics.refused("bad_address")
            log.info("refused MAIL FROM %r from %s: %s", address, session.peer, problem)
            return BAD_ADDRESS.format(what="sender", problem=problem)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        # Checked before the mailbox: a NUL in a plus tag reached the database and failed the
        # group commit of every message waiting with it.
        problem = address_problem(address, need_domain=False)
        if problem:
            metrics.refused("bad_address")
            log.info("refused RCPT %r from %s: %s", address, session.peer, problem)
            return BAD_ADDRESS.format(what="recipient", problem=problem)
        if not self.mailboxes.accepts(address):
            self.stats["refused_relay"] = self.stats.get("refused_relay", 0) + 1
            metrics.refused("relay")
            log.info("refused RCPT %s from %s: not our mailbox", address, session.peer)
            return REFUSED_RELAY
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not envelope.rcpt_tos:
            metrics.refused("no_recipients")
            return NO_RECIPIENTS
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        refusal = await self._rejected(raw, envelope)
        if refusal is not None:
            self.stats["rejected_by_rule"] = self.stats.get("rejected_by_rule", 0) + 1
            metrics.refused("rule")
            log.info("refused DATA from %s to %s by rule: %s", envelope.mail_from, envelope.rcpt_tos, refusal)
            return f"550 5.7.1 {refusal}"
        item = InboundItem(
            source="smtp",
            mail_from=envelope.mail_from or "<>",
            rcpt_to=",".join(address.lower() for address in envelope.rcpt_tos),
            raw=raw,
            # Whose Authentication-Results may be believed depends on who handed the mail over.
            peer=peer_address(session),
        )
        try:
            inbound_id = await self.writer.submit(item)
        except Exception:
            self.stats["temp_failure"] = self.stats.get("temp_failure", 0) + 1
            metrics.refused("temp_failure")
            return TEMP_FAILURE
        self.stats["accepted"] = self.stats.get("accepted", 0) + 1
        metrics.accepted()
        return f"250 2.0.0 Queued as {inbound_id}"

    async def _rejected(self, raw: bytes, envelope: Envelope) -> str | None:
        """The screen's refusal, found in a worker thread while the loop serves the others."""
        if self.screen is None or not self.screen.active():
            return None
        try:
            return await asyncio.to_thread(self.screen, raw, list(envelope.rcpt_tos), envelope.mail_from or "")
        except Exception:
            # Unreadable mail is not refused here: it is accepted and quarantined with the reason.
            log.exception("could not check reject rules; accepting the message")
            return None


def peer_address(session: Session) -> str:
    """The SMTP client's IP address (aiosmtpd gives (host, port) for TCP)."""
    peer = session.peer
    return str(peer[0])[:64] if isinstance(peer, tuple) and peer else ""


def tls_context(config: Config) -> ssl.SSLContext | None:
    if config.smtp.tls_cert is None or config.smtp.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.smtp.tls_cert), str(config.smtp.tls_key))
    return context


async def start_server(config: Config, handler: IntakeHandler) -> asyncio.Server:
    """Listen on `smtp.listen`; with `smtp.reuse_port` several processes can share the port."""
    loop = asyncio.get_running_loop()
    context = tls_context(config)
    host, port = config.smtp.host_port

    def factory() -> PostdeskSMTP:
        return PostdeskSMTP(
            handler,
            data_size_limit=config.smtp.max_message_size,
            enable_SMTPUTF8=True,
            hostname=config.smtp.hostname,
            ident="Postdesk ESMTP",
            tls_context=context,
            loop=loop,
        )

    server = await loop.create_server(factory, host, port, reuse_port=config.smtp.reuse_port or None)
    log.info("SMTP intake listening on %s:%d%s", host, port, " (STARTTLS offered)" if context else "")
    return server
