"""What an agent's or a third party's mail does to its ticket, in the pipeline's transaction.

The pipeline has already stored the mail itself on the ticket (internal: the customer never
sees an agent's own mail). Here the agent's reply goes to the customer and their commands are
carried out, all or nothing, with a short answer to the agent; a third party's answer wakes the
ticket; and mail that names an agent without proof is logged and reported to the admin. What
mail all this causes is added as events (`gateway.tickets.events`) for the notify step.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.agents.commands import Command, CommandFailed, Scope, build, run_steps, split
from gateway.agents.proof import Proof
from gateway.clock import utcnow
from gateway.config import Agent, Config
from gateway.db.ignore import insert_ignore
from gateway.db.rows import TicketRow
from gateway.db.tables import ONCE
from gateway.mail.known import internal_words
from gateway.mail.parse import Attachment
from gateway.routing.directory import Directory
from gateway.tickets import actions, store
from gateway.tickets.events import AdminNotice, AgentResult, Events, TellStaff
from gateway.tickets.lifecycle import Status

log = logging.getLogger("gateway.agents")
REDACTED = "[address removed]"


def redact(text: str, address: str) -> str:
    """The agent's own address out of text bound for a customer (a signature the strip missed)."""
    return re.sub(re.escape(address), REDACTED, text, flags=re.I) if address else text


@dataclass
class Desk:
    config: Config
    directory: Callable[[], Directory]

    def agent_mail(self, conn: Connection, events: Events, ticket: TicketRow, agent: Agent, *, text: str,
                   message_id: str | None, files: Sequence[Attachment] = ()) -> str:
        """Reply to the customer and run the commands; every part or none. Returns the outcome."""
        commands, body = split(text)
        scope = Scope(agent, self.config, self.directory())
        sendable, dropped = self._sendable(files)
        steps, errors = build(commands, redact(body, agent.address), scope, sendable)
        errors += self._unsendable(conn, ticket.id, commands, body)
        done: list[str] = []
        if not errors:
            # The steps' mail is kept only when every step is done, as their writes are.
            attempt = Events(self.config)
            try:
                with conn.begin_nested():
                    ticket, done = run_steps(conn, attempt, ticket, steps)
                events.items.extend(attempt.items)
            except CommandFailed as exc:
                errors = [str(exc)]
        ticket = store.load(conn, ticket.id)
        if errors:
            log.info("agent %s on ticket %d: nothing applied: %s", agent.address, ticket.number, "; ".join(errors))
            events.add(AgentResult(ticket, agent, ok=False, lines=errors, in_reply_to=message_id))
            return f"agent mail from {agent.address} refused: {'; '.join(errors)}"
        if commands or dropped:
            events.add(AgentResult(ticket, agent, ok=True, lines=done + dropped, in_reply_to=message_id))
        return f"agent mail from {agent.address}: {'; '.join(done) or 'stored, nothing to do'}"

    def _sendable(self, files: Sequence[Attachment]) -> tuple[list[Attachment], list[str]]:
        """The agent's files that go to the customer, and a line for each that does not."""
        limit = self.config.attachments.max_size
        sendable, dropped = [], []
        for item in files:
            if item.content_id:
                continue  # an image inside the agent's HTML (a logo in the signature): not a file they sent
            if len(item.payload) > limit:
                dropped.append(f"{item.filename or 'a file'} ({len(item.payload)} bytes) not sent to the customer: "
                               f"over the limit of {limit} bytes")
            else:
                sendable.append(item)
        return sendable, dropped

    def _unsendable(self, conn: Connection, ticket_id: int, commands: list[Command], body: str) -> list[str]:
        """The last guard before text leaves: nothing at all to do, or an internal note in it."""
        if not commands and not body:
            return ["nothing to send: once the quoted mail was removed, your mail had no text of its own "
                    "(write above or below the quote, or use a command)"]
        if not body or any(command.verb == "note" for command in commands):
            return []
        leak = internal_words(store.note_texts(conn, ticket_id), body)
        if leak is not None:
            return [f"your text contains an internal note of this ticket ({leak[:80]!r}); nothing was sent. "
                    f"Remove it (and the quoted notice) and send again"]
        return []

    def third_party_mail(self, conn: Connection, events: Events, ticket: TicketRow, sender: str, text: str) -> str:
        """A third party answered the question an agent sent them (`#cc`)."""
        if ticket.status == Status.WAITING_THIRD_PARTY.value:
            ticket = actions.set_status(conn, events, ticket, Status.IN_PROGRESS, actor=sender,
                                        why="the third party answered", notify=False)
        events.add(TellStaff(ticket, "third_party_replied", f"{sender} answered:\n\n{text}"))
        return f"third-party answer from {sender}"

    def report_forgery(self, conn: Connection, events: Events, proof: Proof, sender: str, subject: str,
                       inbound_id: int) -> None:
        """Mail from an agent's address without proof: logged always, the admin told once an hour."""
        why = proof.why_not
        log.warning("inbound %d: mail from agent address %s without proof (%s); handled as a customer's, "
                    "no commands run", inbound_id, sender, why)
        if not self.config.agent_mail.report_forgeries:
            return
        key = f"forged:{sender}:{utcnow():%Y-%m-%dT%H}"
        if insert_ignore(conn, ONCE, {"key": key, "created_at": utcnow()}) != 1:
            return
        events.add(AdminNotice(
            f"Mail from agent address {sender} without proof",
            f"A mail with From: {sender} (subject {subject!r}, inbound {inbound_id}) had neither a valid reply "
            f"token nor a DKIM signature or trusted Authentication-Results for its domain:\n  {why}\n\n"
            f"It was handled as a customer's mail: no command in it was run and nothing was relayed to a "
            f"customer. If {sender} did send it, their mail client or server lost the proof; otherwise "
            f"someone is posing as them. Further such mail from this address this hour is only logged.\n"))
