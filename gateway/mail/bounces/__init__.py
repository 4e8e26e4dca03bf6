"""Bounces: whether a message is a delivery report, and which recipients failed and why.

The front door of the package. `bounce_hint` is the cheap pre-check (headers and MIME
structure only) that decides whether a message may be a bounce at all; `read_bounce` reads one
that may. The readers live one concept to a module: RFC 3464 delivery-status reports
(`delivery_status`), RFC 5965 feedback reports (`feedback`), the plain-text notices of MTAs
without a machine-readable report (`notices`), with the shared pieces beside them: the result
types (`report`), defensive MIME reading (`mime`), report fields (`fields`), status codes
(`status`), the evidence (`signs`), the returned copy of our mail (`original`) and the whole
reading (`reader`). The envelope sender and the choice between bounce, auto-reply, loop and
customer belong to `gateway.mail.classify`.

Nothing here raises on odd input: headers are read raw and decoded defensively, bodies are
decoded with replacement, MIME trees are walked with a bound, and every pattern is linear (no
nested quantifiers over the same characters), so a hostile message cannot stall the processor.
"""

from __future__ import annotations

from email.message import Message

from gateway.mail.bounces.mime import normalise_line_endings
from gateway.mail.bounces.report import BounceReading, BounceReport, FailedRecipient
from gateway.mail.bounces.signs import bounce_hint, is_mailer_daemon

__all__ = ["BounceReading", "BounceReport", "FailedRecipient", "bounce_hint", "is_mailer_daemon",
           "normalise_line_endings", "parse_bounce", "read_bounce"]


# The readers (and their patterns) are loaded by the first message that may be a bounce: most
# mail is not, and a verb that reads one customer mail need not compile them.
def read_bounce(msg: Message, *, presumed: bool = False) -> BounceReading:
    """Read a message as a bounce (`gateway.mail.bounces.reader.read_bounce`)."""
    from gateway.mail.bounces import reader

    return reader.read_bounce(msg, presumed=presumed)


def parse_bounce(msg: Message) -> BounceReport | None:
    """The bounce this message is, or None if its content does not make it one."""
    return read_bounce(msg).bounce
